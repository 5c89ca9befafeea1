"""Cut-out quality measures: IoU, boundary F, alpha error, dtSSD and flicker. Alphas are float in [0, 1]."""

from __future__ import annotations

import cv2
import numpy as np


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    p, t = pred >= 0.5, truth >= 0.5
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else 1.0


def _boundary(binary: np.ndarray) -> np.ndarray:
    b = binary.astype(np.uint8)
    return (b - cv2.erode(b, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)) > 0


def boundary_f(pred: np.ndarray, truth: np.ndarray, tolerance: float = 0.005) -> float:
    """F-measure of boundary pixels matched within `tolerance` x the image diagonal."""
    h, w = truth.shape
    d = max(1, int(np.ceil(tolerance * np.hypot(h, w))))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * d + 1, 2 * d + 1))
    bp, bt = _boundary(pred >= 0.5), _boundary(truth >= 0.5)
    if not bp.any() and not bt.any():
        return 1.0
    if not bp.any() or not bt.any():
        return 0.0
    near_t = cv2.dilate(bt.astype(np.uint8), disk) > 0
    near_p = cv2.dilate(bp.astype(np.uint8), disk) > 0
    precision = (bp & near_t).sum() / bp.sum()
    recall = (bt & near_p).sum() / bt.sum()
    return float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0


def mad(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(pred - truth).mean())


class TemporalScores:
    """Accumulates dtSSD and flicker over a video, frame by frame.

    dtSSD (Erofeev et al., 2015): per frame, the root mean square of the difference between the
    predicted and true alpha changes; averaged over frames. Flicker: mean |predicted alpha change|
    over pixels whose true alpha did not change; with no ground truth, over all pixels.
    """

    def __init__(self):
        self._prev_pred = self._prev_truth = None
        self.dtssd: list[float] = []
        self.flicker: list[float] = []

    def add(self, pred: np.ndarray, truth: np.ndarray | None = None) -> None:
        if self._prev_pred is not None:
            dp = pred - self._prev_pred
            if truth is not None:
                dt = truth - self._prev_truth
                self.dtssd.append(float(np.sqrt(np.mean((dp - dt) ** 2))))
                still = dt == 0
                self.flicker.append(float(np.abs(dp[still]).mean()) if still.any() else 0.0)
            else:
                self.flicker.append(float(np.abs(dp).mean()))
        self._prev_pred, self._prev_truth = pred, truth

    def result(self) -> dict[str, float]:
        out = {"flicker": float(np.mean(self.flicker)) if self.flicker else 0.0}
        if self.dtssd:
            out["dtssd"] = float(np.mean(self.dtssd))
        return out


def edge_band(truth: np.ndarray, radius: int = 6) -> np.ndarray:
    """Pixels within `radius` px of the true alpha's 0.5 contour (where halos and fringes show)."""
    contour = _boundary(truth >= 0.5)
    if not contour.any():
        return np.zeros(truth.shape, bool)
    distance = cv2.distanceTransform((~contour).astype(np.uint8), cv2.DIST_L2, 5)
    return distance <= radius


def composite_over(foreground: np.ndarray, alpha: np.ndarray, colour: float) -> np.ndarray:
    """What the viewer sees over a solid colour: foreground * alpha + colour * (1 - alpha), 0-255 float."""
    a = alpha[..., None]
    return foreground.astype(np.float32) * a + np.float32(colour) * (1.0 - a)


def true_composite(image: np.ndarray, plate: np.ndarray, truth: np.ndarray, colour: float) -> np.ndarray:
    """The truth over a new colour C from input I, plate B and true alpha: I + (C - B)(1 - alpha)."""
    out = image.astype(np.float32) + (np.float32(colour) - plate.astype(np.float32)) * (1.0 - truth[..., None])
    return np.clip(out, 0, 255, out=out)


def composite_errors(seen: np.ndarray, truth: np.ndarray, band: np.ndarray) -> tuple[float, float, float]:
    """Mean |seen - truth| in 8-bit levels over all pixels and channels, over the edge band, and beyond
    it (room kept far from the person, trails, ghosts)."""
    diff = np.abs(seen - truth).mean(axis=2)
    beyond = ~band
    return (float(diff.mean()), float(diff[band].mean()) if band.any() else 0.0,
            float(diff[beyond].mean()) if beyond.any() else 0.0)
