"""A webcam's MJPG frames, decoded by vbg itself so that a damaged one never reaches the model or the call.

USB webcams send damaged MJPG frames when the bus is short of bandwidth (hubs, several cameras). Decoded
as they are, they show grey or coloured blocks and streaks from the damage down to the bottom of the
frame, and the temporal smoothing carries the mask of such a frame into the next ones. A frame is
damaged when:

1. OpenCV's decoder returns nothing (cut short: no end-of-image marker), or
2. it decodes, but from some point on it is off: a bit error desynchronises the entropy decoder, and
   as each block's DC level is coded as a difference from the block before, every block after the
   error in raster order comes out wrong, the whole width of the frame down to the bottom. Compared
   with the last good frame at one value per 16x16 block (the 4:2:0 MCU), that is a run of changed
   blocks to the end of the frame with the rows above it unchanged. Motion changes a region, and an
   exposure change the whole frame, never that.

A scene that really changes in that shape is accepted after `MAX_DROPS` frames in a row.
"""

from __future__ import annotations

import cv2
import numpy as np

BLOCK = 16
CHANGED = 12        # a block's mean moved by more than this many levels in some channel
RUN_CHANGED = 0.85  # ... in at least this share of the blocks from the damage to the end
ABOVE_CHANGED = 0.3  # ... and in less than this share of the blocks above it
MAX_DROPS = 3


class MjpgDecoder:
    """`decode(data)`: the BGR image, or None for a damaged frame (counted in `damaged`)."""

    def __init__(self):
        self.damaged = 0
        self._last: np.ndarray | None = None  # the last good frame's block means
        self._drops = 0

    def decode(self, data: np.ndarray) -> np.ndarray | None:
        image = cv2.imdecode(data.reshape(-1), cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            return self._drop()
        h, w = image.shape[:2]
        blocks = cv2.resize(image, (max(1, w // BLOCK), max(1, h // BLOCK)), interpolation=cv2.INTER_AREA)
        last, self._last = self._last, blocks
        if last is not None and last.shape == blocks.shape and self._drops < MAX_DROPS and _cut(blocks, last):
            self._last = last
            return self._drop()
        self._drops = 0
        return image

    def _drop(self) -> None:
        self.damaged += 1
        self._drops += 1
        return None


def _cut(blocks: np.ndarray, last: np.ndarray) -> bool:
    """Whether the blocks that changed since `last` form a run to the end of the frame below unchanged
    rows (see the module's note)."""
    changed = (cv2.absdiff(blocks, last).max(axis=2) > CHANGED).ravel()
    n, width = changed.size, blocks.shape[1]
    to_end = np.cumsum(changed[::-1])[::-1] / np.arange(n, 0, -1)  # share changed from each block on
    above = np.concatenate(([0.0], np.cumsum(changed)[:-1] / np.arange(1, n)))  # share changed before it
    start = np.arange(n)
    return bool(np.any((to_end >= RUN_CHANGED) & (above < ABOVE_CHANGED) & (start >= width)
                       & (n - start >= 2 * width)))
