"""The edge hold: the grid's temporal smoothing (vbg/matting/smooth.py) carried to full size, on the
refined edge, where the frame itself did not change."""

from __future__ import annotations

import math

import cv2
import numpy as np


class EdgeHold:
    """The same idea at full size, on the refined edge: where the (denoised) full-size frame did not
    change since the last frame, the alpha keeps `strength` of its previous value.

    The guided filter snaps the edge to the image, so the edge's sub-pixel jitter from frame to frame
    is otherwise the largest source of shimmer left (79% of it on video_gt); moving pixels pass through.
    Works one rectangle at a time (vbg/matting/regions.py): outside the edge band the alpha is 0 or 1 and
    nothing is held.

    What counts as motion is a grey change of `motion_levels` or more, raised to `NOISE_SIGMAS` times
    the camera's own noise where that is higher (a dim room, a cheap sensor). The noise of the change
    between frames is measured every `NOISE_EVERY` frames on every 4th row, from the median change
    (most of a picture is still). A low threshold lets the edge follow small movements at once (on
    video_gt 8 levels beat 10 in dtSSD and edge error); in a noisy picture it would take the noise
    for motion and let it through as shimmer (docs/quality.md).
    """

    NOISE_SIGMAS = 4.0
    NOISE_EVERY = 8
    _NOISE_CAP = 16  # a median change this large is motion, not noise
    # A slow edge over a background of its own brightness changes the grey by about a level a frame
    # and reads as still: held, the alpha trails it (a band of the old room along a turning jaw, holed
    # where single pixels pass). So the held alpha stays within this of the new one; on video_gt that
    # leaves the flicker as it was (docs/quality.md).
    TRAIL_LEVELS = 40
    # Where the frame is still and the new alpha is within this of the held one, the held one stays as
    # it is: the filter's answer to sensor noise and the model's small doubts, which at the hold's
    # share would still show, a level a frame (a 0.85 hold lets any change over 3 levels through).
    # On video_gt it takes office08's flicker from 6.3e-5 to 5.6e-5 and moves the edge error by 0.03
    # at most (docs/quality.md).
    SHIMMER_LEVELS = 6

    def __init__(self, strength: float = 0.0, motion_levels: int = 8):
        self.strength = strength
        self.motion_levels = motion_levels
        self._shape = None
        self.active = False                     # holding this frame (set by `frame_gray`)
        self._slack_of = np.empty(256, np.uint8)  # how far the held alpha may trail, by grey change (__call__)
        self._measured = False                  # this frame's noise is measured (or not due)
        self.reset()

    def reset(self) -> None:
        self._has_prev = False
        self.noise = 0.0                        # the estimated sigma of the grey's change between frames
        self._since_noise = self.NOISE_EVERY    # measured on the next frame held

    def frame_gray(self, shape: tuple[int, int]) -> np.ndarray | None:
        """Starts a frame of this (h, w): returns the buffer for its denoised grey, to fill before the
        first call (kept as the next frame's reference), or None while the hold is off."""
        if self.strength <= 0:
            self._has_prev = self.active = False
            return None
        if self._shape != shape:
            self._gray, self._prev_gray = np.empty(shape, np.uint8), np.empty(shape, np.uint8)
            self._slack, self._bound = np.empty(shape, np.uint8), np.empty(shape, np.uint8)
            self._moved, self._blend = np.empty(shape, np.uint8), np.empty(shape, np.uint8)
            self._shape = shape
            self.reset()
        self._gray, self._prev_gray = self._prev_gray, self._gray
        self.active, self._has_prev = self._has_prev, True
        self._measured = not self.active
        return self._gray

    @property
    def levels(self) -> float:
        """The grey change that counts as motion now: `motion_levels`, or more in a noisy picture."""
        return max(float(self.motion_levels), self.NOISE_SIGMAS * self.noise)

    def _measure_noise(self) -> None:
        """Updates `noise` from this frame's grey against the last (both filled by now)."""
        self._measured = True
        self._since_noise += 1
        if self._since_noise < self.NOISE_EVERY:
            return
        self._since_noise = 0
        change = self._slack[::4]  # scratch rows, free until the first rectangle is held
        cv2.absdiff(self._gray[::4], self._prev_gray[::4], change)
        counts = cv2.calcHist([change], [0], None, [256], [0, 256]).ravel()
        # the median change, read between the integer levels: motion moves it only where it covers
        # much of the picture, and then by less than it moves the mean
        below, half = np.cumsum(counts), 0.5 * change.size
        k = int(np.searchsorted(below, half))
        if k >= self._NOISE_CAP:
            return  # mostly motion (a cut, a camera pan): nothing to learn about the noise
        start = 0.0 if k == 0 else k - 0.5
        width = 0.5 if k == 0 else 1.0
        median = start + width * (half - (below[k - 1] if k else 0.0)) / counts[k]
        sigma = float(median) / 0.674  # the median of |N(0, s)| is 0.674 s
        self.noise = sigma if self.noise == 0.0 else 0.7 * self.noise + 0.3 * sigma

    def slack_table(self) -> np.ndarray:
        """This frame's grey change -> how far the held alpha may stay from the new one (0 where it is
        motion), a 256-entry table; the noise is measured on its first call in a frame."""
        if not self._measured:
            self._measure_noise()
            self._slack_of.fill(self.TRAIL_LEVELS)
            self._slack_of[math.ceil(self.levels):] = 0
        return self._slack_of

    def pass_params(self) -> tuple[np.ndarray, np.ndarray, float, int, int, int]:
        """The hold as the compiled edge pass takes it (vbg/matting/kernels.py), while `active`: this frame's grey
        and the last's, the share of the old alpha kept, the grey change that is motion, the trail, the
        alpha change that is shimmer."""
        self.slack_table()
        return (self._gray, self._prev_gray, self.strength, math.ceil(self.levels), self.TRAIL_LEVELS,
                self.SHIMMER_LEVELS)

    def __call__(self, alpha: np.ndarray, previous: np.ndarray, pixels: tuple[int, int, int, int]) -> None:
        """Steadies the new `alpha` (uint8) of the rectangle `pixels` into `previous`, last frame's
        alpha there: still pixels keep it where the new one is within `SHIMMER_LEVELS`, else keep
        `strength` of it, but no further than `TRAIL_LEVELS` from the new value; moving ones take the
        new value."""
        self.slack_table()
        y0, y1, x0, x1 = pixels
        h, w = alpha.shape
        slack, bound, moved, blend = self._slack[:h, :w], self._bound[:h, :w], self._moved[:h, :w], self._blend[:h, :w]
        cv2.absdiff(self._gray[y0:y1, x0:x1], self._prev_gray[y0:y1, x0:x1], slack)
        cv2.LUT(slack, self._slack_of, dst=slack)
        cv2.absdiff(previous, alpha, moved)
        cv2.compare(moved, self.SHIMMER_LEVELS, cv2.CMP_GT, dst=moved)
        cv2.addWeighted(previous, self.strength, alpha, 1.0 - self.strength, 0.0, dst=blend)
        cv2.copyTo(blend, moved, previous)
        cv2.min(alpha, slack, bound)
        cv2.add(alpha, bound, bound)  # at most twice the new alpha: nothing is held where it fell to 0
        cv2.min(previous, bound, previous)
        cv2.subtract(alpha, slack, bound)
        cv2.max(previous, bound, previous)
