"""Temporal smoothing of the model's soft mask, on the model grid.

A plain EMA trades flicker for lag: a moving hand leaves a ghost. Here the previous value is kept
only where the image itself did not change (a change in the mask there is model noise, not motion).
Where the image changed, the new value passes straight through, so motion never trails. (Holding
more where the model is unsure, i.e. p near 0.5, was measured on video_gt and gave more flicker, not
less: the model's noise is not confined to its unsure pixels.)
"""

from __future__ import annotations


import cv2
import numpy as np


class MaskSmoother:
    def __init__(self, strength: float = 0.9, motion_levels: float = 8.0):
        """strength: 0 = off, 1 = hold still pixels completely. motion_levels: the grey-level change on
        the model grid (area-averaged, so sensor noise is mostly gone) that counts as full motion."""
        self.strength = float(strength)
        self.motion_levels = float(motion_levels)
        self._prev: np.ndarray | None = None
        self._prev_gray: np.ndarray | None = None
        self._diff = self._keep = self._tmp = None

    def reset(self) -> None:
        self._prev = None

    def _buffers(self, shape):
        if self._prev is None or self._prev.shape != shape:
            self._prev = np.zeros(shape, np.float32)
            self._prev_gray = np.zeros(shape, np.uint8)
            self._diff = np.zeros(shape, np.uint8)
            self._keep = np.zeros(shape, np.float32)
            self._tmp = np.zeros(shape, np.float32)
            return True
        return False

    def __call__(self, prob: np.ndarray, small_gray: np.ndarray, out: np.ndarray) -> None:
        """Writes the smoothed mask for `prob` (P(person), model grid) into `out`; `small_gray` is the
        frame on the same grid, in grey (vbg/matting/gate.py: grid_gray)."""
        fresh = self._buffers(prob.shape)
        if fresh or self.strength <= 0:
            out[:] = prob
        else:
            keep, tmp = self._keep, self._tmp
            # motion in [0, 1], spread one pixel so edges next to a moving region update too
            cv2.absdiff(small_gray, self._prev_gray, self._diff)
            cv2.dilate(self._diff, None, dst=self._diff)
            cv2.multiply(self._diff, 1.0 / self.motion_levels, keep, dtype=cv2.CV_32F)
            np.minimum(keep, 1.0, out=keep)
            np.subtract(1.0, keep, out=keep)                       # stillness
            np.multiply(keep, self.strength, out=keep)
            # what the model drops goes with it: a fall to a share r of the last value keeps only r of
            # the hold (a blob of room the model saw for a few frames does not linger once it is gone,
            # while the model's small dips are held much as before)
            np.add(self._prev, 1e-6, out=tmp)
            np.divide(prob, tmp, out=tmp)
            np.minimum(tmp, 1.0, out=tmp)
            np.multiply(keep, tmp, out=keep)
            # out = prob + keep * (prev - prob)
            np.subtract(self._prev, prob, out=tmp)
            np.multiply(tmp, keep, out=tmp)
            np.add(prob, tmp, out=out)
        self._prev[:] = out
        np.copyto(self._prev_gray, small_gray)


class EmaSmoother:
    """A plain exponential moving average: the baseline most apps ship, kept for `vbg eval`."""

    def __init__(self, keep: float = 0.5):
        self.keep = keep
        self._prev: np.ndarray | None = None

    def reset(self) -> None:
        self._prev = None

    def __call__(self, prob: np.ndarray, small_bgr: np.ndarray, out: np.ndarray) -> None:
        if self._prev is None or self._prev.shape != prob.shape:
            out[:] = prob
            self._prev = np.empty_like(prob)
        else:
            cv2.addWeighted(self._prev, self.keep, prob, 1.0 - self.keep, 0.0, dst=out)
        self._prev[:] = out
