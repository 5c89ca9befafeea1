"""A closer look at the head: the model run on a crop around the top of the person, of its input's
shape at 1.75x the detail (0.57 of the frame each way at 16:9), and fused into the frame's probability
grid.

At the full view the model is least sure at the ears, the top of the hair and the shoulders' outline
(P of 0.1-0.3 at ears against a light wall on video_gt); closer up it is much surer there. The chain
alternates the two views (full frame, head) rather than running both, so the model runs no more
often than before; the inference gate (vbg/matting/gate.py) picks the view whose part of the picture moved.
"""

from __future__ import annotations

import cv2
import numpy as np

from vbg.matting.regions import GridToFrame

FULL, HEAD = "full", "head"


class HeadFocus:
    """Where the head crop goes, and the frame's probability with the head view fused in.

    Per frame, `frame` says the frame's and the grid's size. `crop` says where the head view goes (in
    grid cells, from the last fused probability), `look` runs the model there and keeps its
    probability on the crop's cells, and `fuse` lays that over a full view's, ramped in over `ramp`
    cells along the crop's sides that lie inside the frame.
    """

    REACH = 2  # grid cells the head view may move the full view's outline by
    REACH_UP = 4  # further cells it may raise the outline above the head: hair the full view sees faintly
    RAISE_FROM = 0.1  # the head view may raise a cell fully only where the full view saw this much there
    ZOOM = 1.75  # the head view's detail over the full view's (1.5 to 2.5 measured: docs/quality.md)

    def __init__(self, margin: int = 4, top_rows: int = 30, ramp: int = 4, slack: int = 4, fill: float = 0.75,
                 widest: float = 0.8):
        self.margin = margin        # grid rows kept above the top of the person
        self.top_rows = top_rows    # grid rows below the top that say where the head is, left to right
        self.ramp = ramp
        self.slack = slack          # the crop stays put until it would move by more cells than this
        self.fill = fill            # the head takes at most this share of the crop's width...
        self.widest = widest        # ...which widens for it up to this share of the frame's (1.25x detail at 16:9)
        self._reach_kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * self.REACH + 1,) * 2)
        # spreads the full view by REACH cells, and by REACH_UP more upwards (a cell takes the most of
        # those up to REACH + REACH_UP below it)
        self._raise_kernel = np.ones((2 * self.REACH + 1 + self.REACH_UP, 2 * self.REACH + 1), np.uint8)
        self._rect: tuple[int, int, int, int] | None = None   # y0, y1, x0, x1 of the stored head view
        self._head: np.ndarray | None = None
        self._weight: np.ndarray | None = None
        self._weight_key = None
        self._person: np.ndarray | None = None
        self.enabled = True
        self._mapping: GridToFrame | None = None
        self._size: tuple[int, int] | None = None

    def frame(self, grid: tuple[int, int], frame: tuple[int, int], model: tuple[int, int]) -> None:
        """This frame's (rows, cols) of grid, (h, w) of pixels, and the model input's (h, w)."""
        m = self._mapping
        if m is None or m.grid != grid or m.frame != frame:
            self._mapping = GridToFrame(grid, frame)
            self._size = self.crop_size(grid, frame, model)

    def crop(self, prob: np.ndarray, moved: bool = True) -> tuple[int, int, int, int] | None:
        """The cells of the next head view, placed on `prob` (the last fused probability); `moved`
        False: the last head view's while there is one (placing it is for head runs). None when
        there is no head view: off, nobody, a head too wide even for the widest crop."""
        if not self.enabled or self._size is None:
            self.reset()
            return None
        if not moved and self._rect is not None:
            return self._rect
        period = tuple(p if p <= 2 else 1 for p in self._mapping.period)  # exact where that is cheap
        rect = self.place(prob, self._size, period)
        if rect is None:
            self.reset()
        return rect

    def look(self, image: np.ndarray, rect: tuple[int, int, int, int], segmenter) -> None:
        """Runs the model (a vbg.matting.segment.Segmenter) on the crop `rect` of `image` and keeps the result."""
        m = self._mapping
        y0, y1, x0, x1 = rect
        self.store(segmenter.infer_view(image[m.pixel_y(y0):m.pixel_y(y1), m.pixel_x(x0):m.pixel_x(x1)]), rect)

    @property
    def mapping(self) -> GridToFrame | None:
        return self._mapping

    def reset(self) -> None:
        self._rect = self._head = None

    @property
    def rect(self) -> tuple[int, int, int, int] | None:
        """The cells the stored head view covers (None: none stored)."""
        return self._rect

    @classmethod
    def crop_size(cls, grid: tuple[int, int], frame: tuple[int, int], model: tuple[int, int]) -> tuple[int, int]:
        """The head crop's (rows, cols) of grid cells: the model input's shape at ZOOM times the full
        view's detail, or as near as the frame allows (a portrait frame: its whole width, 3.2x). A crop
        with fewer pixels than the model input (a 320x240 camera, a small photo) is enlarged to fit it:
        the model still sees the head 1.75x larger than in the full view, and scores much better for it
        (docs/quality.md)."""
        (rows, cols), (fh, fw), (mh, mw) = grid, frame, model
        scale = min(mw / fw, mh / fh)                     # the full view's input pixels per frame pixel
        ch, cw = mh / (cls.ZOOM * scale), mw / (cls.ZOOM * scale)
        shrink = min(1.0, fw / cw, fh / ch)
        ch, cw = ch * shrink, cw * shrink
        return max(1, round(ch * rows / fh)), max(1, round(cw * cols / fw))

    def place(self, prob: np.ndarray, size: tuple[int, int],
              period: tuple[int, int] = (1, 1)) -> tuple[int, int, int, int] | None:
        """The head crop for the next head view: `size` cells (`crop_size`), `margin` rows above the top of
        the person (the largest region over P 0.5), centred on its cells in the `top_rows` below; its
        corner on the grid's pixel `period`. A head wider than `fill` of the crop (someone leaning in)
        gets a wider crop of the same shape, up to `widest` of the frame's width; a crop across the
        whole width (a portrait frame) cuts nothing at the sides that the frame does not. None when
        nobody is in the picture, or when the head is too wide even so."""
        rows, cols = prob.shape
        cv2.compare(prob, 0.5, cv2.CMP_GT, dst=self._person_buffer(prob.shape))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(self._person, connectivity=8)
        if count < 2:
            return None
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))  # not a stray blob of the room
        top = int(stats[largest, cv2.CC_STAT_TOP])
        h, w = size
        xs = np.nonzero(labels[top:top + self.top_rows] == largest)[1]
        span = int(xs.max() - xs.min())
        if w < cols and span > self.fill * w:  # a crop this narrow would cut the head at its sides
            wider = int(np.ceil(span / self.fill))
            if wider > self.widest * cols:
                return None  # the head fills most of the frame: the full view sees it as well
            h, w = min(rows, round(h * wider / w)), wider  # the same shape, less detail
        centre = round(float(xs.mean()))
        py, px = period
        y0 = min(max(0, top - self.margin), rows - h) // py * py
        x0 = min(max(0, centre - w // 2), cols - w) // px * px
        if self._rect is not None and self._rect[1] - self._rect[0] == h and self._rect[3] - self._rect[2] == w \
                and abs(self._rect[0] - y0) <= self.slack and abs(self._rect[2] - x0) <= self.slack:
            return self._rect  # the model sees the same crop of a still picture: no jitter from moving it
        return y0, y0 + h, x0, x0 + w

    def _person_buffer(self, shape) -> np.ndarray:
        if self._person is None or self._person.shape != shape:
            self._person = np.empty(shape, np.uint8)
        return self._person

    def store(self, prob: np.ndarray, rect: tuple[int, int, int, int]) -> None:
        """Keeps a head view's probability (grid-shaped, over the crop `rect`) on the crop's cells."""
        y0, y1, x0, x1 = rect
        if self._head is None or self._head.shape != (y1 - y0, x1 - x0):
            self._head = np.empty((y1 - y0, x1 - x0), np.float32)
        cv2.resize(prob, (x1 - x0, y1 - y0), dst=self._head, interpolation=cv2.INTER_AREA)
        self._rect = rect

    def fuse(self, full: np.ndarray, out: np.ndarray) -> None:
        """`out` = the full view's probability with the stored head view laid over its crop."""
        np.copyto(out, full)
        if self._rect is None or self._head is None:
            return
        y0, y1, x0, x1 = self._rect
        rows, cols = full.shape
        if y1 > rows or x1 > cols:  # another frame size since it was stored
            self.reset()
            return
        w = self._ramp_weight(self._rect, full.shape)
        target = out[y0:y1, x0:x1]
        # the head view may move the outline (ears, hair) by REACH cells, but neither add a person the
        # full view has not near (a lamp or a picture beside the jaw seen closer up) nor erase one it
        # has (the far cup of a pair of headphones): it stays between the full view spread and shrunk by
        # REACH cells, and raises a cell fully only where the full view saw RAISE_FROM there. Above the
        # head it may raise REACH_UP cells further: hair rises where the full view is least sure, while
        # what stands beside the head (the picture by the jaw) stays at REACH (docs/quality.md)
        cv2.dilate(target, self._raise_kernel, dst=self._blend, anchor=(self.REACH, self.REACH))
        cv2.min(self._blend, self._head, dst=self._blend)
        cv2.multiply(target, 1.0 / self.RAISE_FROM, self._floor)
        cv2.min(self._blend, self._floor, dst=self._blend)
        cv2.erode(target, self._reach_kernel, dst=self._floor)
        cv2.max(self._blend, self._floor, dst=self._blend)
        cv2.subtract(self._blend, target, self._blend)   # full + w (head - full)
        cv2.multiply(self._blend, w, self._blend)
        cv2.add(target, self._blend, target)

    def _ramp_weight(self, rect, shape) -> np.ndarray:
        key = (rect, shape)
        if self._weight_key != key:
            y0, y1, x0, x1 = rect
            rows, cols = shape
            h, w = y1 - y0, x1 - x0
            steps = (np.arange(self.ramp, dtype=np.float32) + 0.5) / self.ramp
            down, across = np.ones(h, np.float32), np.ones(w, np.float32)
            n = min(self.ramp, h // 2, w // 2)
            if y0 > 0:
                down[:n] = steps[:n]
            if y1 < rows:
                down[h - n:] = np.minimum(down[h - n:], steps[:n][::-1])
            if x0 > 0:
                across[:n] = steps[:n]
            if x1 < cols:
                across[w - n:] = np.minimum(across[w - n:], steps[:n][::-1])
            self._weight = np.minimum(down[:, None], across[None, :])
            self._blend, self._floor = np.empty((h, w), np.float32), np.empty((h, w), np.float32)
            self._weight_key = key
        return self._weight
