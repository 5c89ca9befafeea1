"""Compositing at full resolution: refine the mask's edge against the frame, then blend.

Refinement is a fast guided filter (He & Sun, 2015): the filter's linear coefficients are solved on
the mask grid against the frame's grey levels there, upsampled, and applied to the full-resolution
grey frame, so the outline follows the real edges of hair and shoulders rather than the blocky
256x144 grid. The blend is done in 8-bit with preallocated buffers; nothing per frame is allocated.
"""

from __future__ import annotations

import cv2
import numpy as np

from vbg.backgrounds import Background, Passthrough
from vbg.settings import MatteSettings, SmoothSettings


class EdgeRefiner:
    """Mask-grid probability -> full-resolution 8-bit alpha.

    With `hold` > 0 it also steadies the refined edge over time: where the (denoised) full-size
    frame did not change since the last frame, the alpha keeps `hold` of its previous value. The
    guided filter snaps the edge to the image, so the edge's sub-pixel jitter from frame to frame is
    otherwise the largest source of shimmer left (measured on video_gt); moving pixels pass through.
    """

    def __init__(self, settings: MatteSettings, hold: float = 0.0,
                 motion_levels: int = SmoothSettings.edge_motion_levels):
        self.settings = settings
        self.hold = hold
        self.motion_levels = motion_levels
        self._grid_shape = None
        self._full_shape = None
        self._has_prev = False

    def reset(self) -> None:
        self._has_prev = False

    def _grid_buffers(self, shape):
        if self._grid_shape != shape:
            self._gi = np.empty(shape, np.float32)
            self._mi, self._mp, self._mip, self._mii = (np.empty(shape, np.float32) for _ in range(4))
            self._a, self._b, self._t = (np.empty(shape, np.float32) for _ in range(3))
            self._ggray = np.empty(shape, np.uint8)
            self._grid_shape = shape

    def _full_buffers(self, shape):
        if self._full_shape != shape:
            self.gray = np.empty(shape, np.uint8)
            self._A, self._B = np.empty(shape, np.float32), np.empty(shape, np.float32)
            self.alpha = np.empty(shape, np.uint8)
            self._prev_alpha, self._prev_gray = np.empty(shape, np.uint8), np.empty(shape, np.uint8)
            self._still, self._held = np.empty(shape, np.uint8), np.empty(shape, np.uint8)
            self._kernels = {}
            self._full_shape = shape
            self._has_prev = False

    def __call__(self, image: np.ndarray, small: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Returns the full-size alpha (uint8, an internal buffer reused next call)."""
        h, w = image.shape[:2]
        self._full_buffers((h, w))
        s = self.settings
        if s.refine:
            self._guided(image, small, mask)
            if self.hold > 0:
                self._hold_still_pixels()
        else:
            cv2.resize(mask, (w, h), dst=self._A, interpolation=cv2.INTER_LINEAR)
            cv2.multiply(self._A, 255.0, self.alpha, dtype=cv2.CV_8U)
        if s.threshold is not None:
            cv2.threshold(self.alpha, s.threshold * 255, 255, cv2.THRESH_BINARY, dst=self.alpha)
        if s.erode > 0:
            cv2.erode(self.alpha, self._kernel(s.erode), dst=self.alpha)
        if s.feather > 0:
            k = 2 * s.feather + 1
            cv2.GaussianBlur(self.alpha, (k, k), 0, dst=self.alpha)
        return self.alpha

    def _hold_still_pixels(self) -> None:
        if self._has_prev:
            cv2.absdiff(self.gray, self._prev_gray, self._still)
            cv2.compare(self._still, self.motion_levels, cv2.CMP_LT, dst=self._still)
            cv2.addWeighted(self._prev_alpha, self.hold, self.alpha, 1.0 - self.hold, 0.0, dst=self._held)
            cv2.copyTo(self._held, self._still, self.alpha)
        np.copyto(self._prev_alpha, self.alpha)
        self._prev_gray, self.gray = self.gray, self._prev_gray
        self._has_prev = True

    def _kernel(self, px):
        k = self._kernels.get(px)
        if k is None:
            k = self._kernels[px] = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
        return k

    def _guided(self, image, small, mask):
        self._grid_buffers(mask.shape)
        h, w = image.shape[:2]
        r = (2 * self.settings.radius + 1,) * 2
        gi, mi, mp, mip, mii, a, b = self._gi, self._mi, self._mp, self._mip, self._mii, self._a, self._b
        cv2.cvtColor(small, cv2.COLOR_BGR2GRAY, dst=self._ggray)
        cv2.multiply(self._ggray, 1.0 / 255.0, gi, dtype=cv2.CV_32F)
        cv2.boxFilter(gi, -1, r, dst=mi)
        cv2.boxFilter(mask, -1, r, dst=mp)
        cv2.multiply(gi, mask, mip)
        cv2.boxFilter(mip, -1, r, dst=mip)
        cv2.multiply(gi, gi, mii)
        cv2.boxFilter(mii, -1, r, dst=mii)
        # a = cov(I, p) / (var(I) + eps); b = mean(p) - a mean(I)
        t = self._t
        np.subtract(mip, np.multiply(mi, mp, out=t), out=mip)
        np.subtract(mii, np.multiply(mi, mi, out=t), out=mii)
        np.add(mii, self.settings.eps, out=mii)
        np.divide(mip, mii, out=a)
        np.subtract(mp, np.multiply(a, mi, out=t), out=b)
        cv2.boxFilter(a, -1, r, dst=a)
        cv2.boxFilter(b, -1, r, dst=b)
        # snap: alpha' = (alpha - snap) / (1 - 2 snap), folded into a and b; then
        # alpha'*255 = a * grey + 255 b at full size; grey stays 8-bit, alpha saturates into 8-bit
        gain = 1.0 / (1.0 - 2.0 * self.settings.snap)
        np.multiply(a, gain, out=a)
        np.subtract(b, self.settings.snap, out=b)
        np.multiply(b, 255.0 * gain, out=b)
        cv2.resize(a, (w, h), dst=self._A, interpolation=cv2.INTER_LINEAR)
        cv2.resize(b, (w, h), dst=self._B, interpolation=cv2.INTER_LINEAR)
        cv2.cvtColor(image, cv2.COLOR_BGR2GRAY, dst=self.gray)
        # The coefficients carry the edge's gain to every full-size pixel, sensor noise included; a
        # 3x3 box on the guide halves the edge shimmer that causes (measured on video_gt).
        cv2.blur(self.gray, (3, 3), dst=self.gray)
        cv2.multiply(self.gray, self._A, self._A, dtype=cv2.CV_32F)
        cv2.add(self._A, self._B, self.alpha, dtype=cv2.CV_8U)


class Compositor:
    """frame + mask -> output image, at the frame's full size. Not thread-safe: one thread composes;
    `background` may be swapped from another thread between frames."""

    def __init__(self, matte: MatteSettings, background: Background, mirror: bool = False, hold: float = 0.0,
                 motion_levels: int = SmoothSettings.edge_motion_levels):
        self.refiner = EdgeRefiner(matte, hold, motion_levels)
        self.background = background
        self.mirror = mirror
        self._next_background: Background | None = None
        self._shape = None
        self._outputs = None
        self._turn = 0

    def _buffers(self, shape):
        if self._shape != shape:
            self._alpha3 = np.empty(shape, np.uint8)
            self._inv3 = np.empty(shape, np.uint8)
            self._fg = np.empty(shape, np.uint8)
            self._blend = np.empty(shape, np.uint8)
            # two outputs, so the previous one stays valid while the next is composed (preview, vcam)
            self._outputs = (np.empty(shape, np.uint8), np.empty(shape, np.uint8))
            self._shape = shape

    def set_background(self, background: Background) -> None:
        """Takes effect at the next frame, on the composing thread (which then closes the old one)."""
        self._next_background = background

    def compose(self, image: np.ndarray, small: np.ndarray, mask: np.ndarray, need_alpha: bool = False) -> np.ndarray:
        """Returns the composited frame: always an internal buffer, valid until the call after next,
        never `image` (a pooled camera frame that capture overwrites once it is released)."""
        if self._next_background is not None:
            old, self.background, self._next_background = self.background, self._next_background, None
            if old is not self.background:
                old.close()
        background = self.background
        if isinstance(background, Passthrough):
            if need_alpha:
                self.refiner(image, small, mask)
            self._buffers(image.shape)
            if self.mirror:
                result = image
            else:
                self._turn ^= 1
                result = self._outputs[self._turn]
                np.copyto(result, image)
        else:
            self._buffers(image.shape)
            alpha = self.refiner(image, small, mask)
            bg = background.render(image.shape, small, mask)
            cv2.cvtColor(alpha, cv2.COLOR_GRAY2BGR, dst=self._alpha3)
            cv2.bitwise_not(self._alpha3, self._inv3)
            cv2.multiply(image, self._alpha3, self._fg, 1.0 / 255.0)
            cv2.multiply(bg, self._inv3, self._blend, 1.0 / 255.0)
            result = self._blend
            if not self.mirror:
                self._turn ^= 1
                result = self._outputs[self._turn]
            cv2.add(self._fg, self._blend, result)
        if self.mirror:
            self._buffers(image.shape)
            self._turn ^= 1
            out = self._outputs[self._turn]
            cv2.flip(result, 1, dst=out)
            return out
        return result
