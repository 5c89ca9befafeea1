"""A webcam's MJPG frames, decoded by vbg itself so that a damaged one never reaches the model or the call.

USB webcams send damaged MJPG frames when the bus is short of bandwidth (hubs, several cameras). Decoded
as they are, they show grey or coloured blocks and streaks from the damage down to the bottom of the
frame, and the temporal smoothing carries the mask of such a frame into the next ones. A frame is
damaged when:

1. OpenCV's decoder returns nothing (cut short: no end-of-image marker), or
2. it decodes, but from some point on it is off: a bit error desynchronises the entropy decoder, and
   as each block's DC level is coded as a difference from the block before, every block after the
   error in raster order comes out wrong, the whole width of the frame down to the bottom. Compared
   with the last good frame at one value per 16x16 block (the 4:2:0 MCU), that is a run of mostly
   changed blocks to the end of the frame, the whole width, with the rows above it unchanged (from the
   first row when the damage is in the header's tables). Motion changes a region, never that: on every
   clip in ../shared, also seen at a quarter of its frame rate, no frame is dropped.

A scene that really changes in that shape (a light switched on below the desk) is taken from its third
frame: three frames in a row that agree with each other are the scene, where damage differs frame by
frame (except frames cut short, which all end in flat colour, so a flat end is never taken as a scene).
For the same reason the first frames after the camera opens are taken once three agree.

When vbg reads a camera's frames with gaps (a loaded machine falls behind and takes the newest), the last
good frame grows old and real motion can make good frames look damaged against it. After `MAX_DROPS` in
a row, a frame that agrees with the frame just before it is taken as the scene (damage differs frame by
frame, so two damaged frames do not agree); only after `LAST_RESORT` is any frame shown, so that a camera
whose every frame looks damaged is never frozen.
"""

from __future__ import annotations

import cv2
import numpy as np

BLOCK = 16
CHANGED = 12         # a block's mean moved by more than this many levels in some channel
RUN_CHANGED = 0.5    # ... in at least this share of the blocks from the damage to the end (a desync that
                     # resynchronises leaves some blocks right)
ABOVE_CHANGED = 0.3  # ... and in less than this share of the blocks above it
MAX_DROPS = 15       # after this many in a row, two frames that agree are taken as the scene
LAST_RESORT = 60     # a camera whose every frame looks damaged is shown after this many, not frozen


class MjpgDecoder:
    """`decode(data)`: the BGR image, or None for a damaged frame (counted in `damaged`)."""

    def __init__(self):
        self.damaged = 0
        self._good: np.ndarray | None = None  # the last good frame's block means
        self._recent: list[np.ndarray] = []    # the last two decoded frames', good or not
        self._drops = 0

    def decode(self, data: np.ndarray) -> np.ndarray | None:
        image = cv2.imdecode(data.reshape(-1), cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            return self._drop()
        h, w = image.shape[:2]
        blocks = cv2.resize(image, (max(1, w // BLOCK), max(1, h // BLOCK)), interpolation=cv2.INTER_AREA)
        recent, self._recent = self._recent, [*self._recent[-1:], blocks]
        good = self._good is not None and _agree(blocks, self._good)
        scene = len(recent) == 2 and all(_agree(blocks, other) for other in recent) and not _flat_tail(blocks)
        pair = (self._drops >= MAX_DROPS and len(recent) > 0 and _agree(blocks, recent[-1])
                and not _flat_tail(blocks))
        if not (good or scene or pair) and self._drops < LAST_RESORT:
            return self._drop()
        self._good, self._drops = blocks, 0
        return image

    def _drop(self) -> None:
        self._drops += 1
        if self._good is not None:  # the first frames, held back until three agree, are not damage
            self.damaged += 1
        return None


def _flat_tail(blocks: np.ndarray) -> bool:
    """Whether the frame ends in flat colour: what a frame cut short, then given its end marker, decodes to
    (libjpeg repeats the last block's level to the end), the same in every such frame."""
    tail = blocks[-2:]
    return int(tail.max()) - int(tail.min()) <= 2


def _agree(blocks: np.ndarray, other: np.ndarray) -> bool:
    return blocks.shape == other.shape and not _cut(blocks, other)


def _cut(blocks: np.ndarray, other: np.ndarray) -> bool:
    """Whether the blocks that differ between two frames form a run to the end of the frame below
    unchanged rows (see the module's note)."""
    changed = (cv2.absdiff(blocks, other).max(axis=2) > CHANGED).ravel()
    n, width = changed.size, blocks.shape[1]
    to_end = np.cumsum(changed[::-1])[::-1] / np.arange(n, 0, -1)  # share changed from each block on
    above = np.concatenate(([0.0], np.cumsum(changed)[:-1] / np.arange(1, n)))  # share changed before it
    start = np.arange(n)
    return bool(np.any((to_end >= RUN_CHANGED) & (above < ABOVE_CHANGED)
                       & (n - start >= 0.75 * width)))
