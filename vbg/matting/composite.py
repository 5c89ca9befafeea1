"""Compositing at full resolution, region by region (vbg/matting/regions.py): the room and the person are
copies; only the edge band is refined (vbg/matting/refine.py) and blended, with the fine edge the person's
own colour pasted at it. The blend is done in 8-bit with preallocated buffers.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from vbg.backgrounds import Background, Passthrough
from vbg.matting.kernels import COMPILE_WAIT_S, KERNELS, SOFT
from vbg.matting.refine import EdgeRefiner
from vbg.matting.regions import EDGE, PERSON, ROOM, Region


log = logging.getLogger(__name__)
_NO_COLOURS = np.zeros((1, 1, 3), np.uint8)  # the local colours' place when the edge keeps the camera's


class Compositor:
    """frame + mask -> output image, at the frame's full size. Not thread-safe: one thread composes;
    `background` may be swapped from another thread between frames.

    Region by region (vbg/matting/regions.py): the room and the person are copies, and only the edge band is
    refined and blended (with `decontaminate`, with the person's own colour at the edge)."""

    SOFT = SOFT  # nearer 0 or 1 the pasted colour hardly shows: left as the camera's

    def __init__(self, refiner: EdgeRefiner, background: Background, mirror: bool = False, compositor: str = "auto"):
        self.refiner = refiner  # the refine stage: each frame it plans the regions and refines the edge band
        self.compositor = compositor  # settings.COMPOSITORS: which path does the edge band
        self.kernels = KERNELS
        # every frame on one path: wait for the compile instead of starting on OpenCV (offline renders,
        # lossless test runs, whose output must not depend on how fast the machine compiled)
        self.one_path = False
        self._one_path_compiled: bool | None = None
        self.frames_by_path = {"compiled": 0, "opencv": 0}
        self.background = background
        self.mirror = mirror
        self._next_background: Background | None = None
        self._shape = None
        self._outputs = None
        self._turn = 0
        self._image: np.ndarray | None = None   # the last frame composed
        self._colour: np.ndarray | None = None  # its colour with the person's own at the edge (offline)

    def _buffers(self, shape):
        if self._shape != shape:
            self._alpha3 = np.empty(shape, np.uint8)
            self._inv3 = np.empty(shape, np.uint8)
            self._fg = np.empty(shape, np.uint8)
            self._blend = np.empty(shape, np.uint8)
            self._estimate_buffers = None  # the colour estimate's, made on its first use
            # two outputs, so the previous one stays valid while the next is composed (preview, vcam)
            self._outputs = (np.empty(shape, np.uint8), np.empty(shape, np.uint8))
            # per buffer (the two outputs, then the mirror's `_blend`): the grid cells whose pixels in it
            # are the background's, and which background pixels (its array and generation)
            self._room_kept: list[tuple[np.ndarray, tuple] | None] = [None, None, None]
            self._held: np.ndarray | None = None  # this frame's: the room cells its buffer holds already
            self._spare_cells: np.ndarray | None = None
            # the compiled pass's rows: the filter's value, and the alpha per channel
            self._trow, self._row3 = np.empty(shape[1], np.float32), np.empty(3 * shape[1], np.uint8)
            self._rows_shape = None
            self._shape = shape

    def _decontaminate(self, image: np.ndarray, region: Region, alpha: np.ndarray, alpha3: np.ndarray,
                       fg: np.ndarray, colours: tuple[np.ndarray, np.ndarray]) -> None:
        """The person's own colour at the soft edge instead of the camera pixel, which there is part old
        room (the halo of the old wall, the colour fringe): blur-fusion foreground estimation (Germer et
        al., 2021), F = F^ + a (I - a F^ - (1 - a) B^), with the local colours F^ and B^ from the grid.
        Writes F a into `fg` where 0 < alpha < 1 (and F into the kept colour, offline)."""
        soft_buffer, paste_buffer, est_buffer, tmp_buffer, f_buffer, b_buffer = \
            self._estimate_buffers or self._colour_buffers()
        y0, y1, x0, x1 = region.pixels
        rh, rw = y1 - y0, x1 - x0
        soft = soft_buffer[:rh, :rw]
        cv2.inRange(alpha, *self.SOFT, dst=soft)
        sx, sy, rw, rh = cv2.boundingRect(soft)  # often much less than the region: work only there
        if not rw:
            return
        within = (slice(sy, sy + rh), slice(sx, sx + rw))
        alpha3, fg, soft = alpha3[within], fg[within], soft[within]
        y0, x0 = y0 + sy, x0 + sx
        y1, x1 = y0 + rh, x0 + rw
        mapping = self.refiner.mapping
        cover = mapping.covering((y0, y1, x0, x1))
        inside = (slice(y0 - cover.pixels[0], y1 - cover.pixels[0]), slice(x0 - cover.pixels[2], x1 - cover.pixels[2]))
        f_hat = mapping.upsample(colours[0], cover, f_buffer)[inside]
        b_hat = mapping.upsample(colours[1], cover, b_buffer)[inside]
        # in 16-bit integers (a level of rounding per step, a quarter of the float traffic)
        est, tmp, paste = est_buffer[:rh, :rw], tmp_buffer[:rh, :rw], paste_buffer[:rh, :rw]
        cv2.subtract(f_hat, b_hat, tmp, dtype=cv2.CV_16S)
        cv2.multiply(tmp, alpha3, tmp, 1.0 / 255.0, dtype=cv2.CV_16S)          # a (F^ - B^)
        cv2.subtract(image[y0:y1, x0:x1], b_hat, est, dtype=cv2.CV_16S)
        cv2.subtract(est, tmp, est)                                           # I - a F^ - (1 - a) B^
        cv2.multiply(est, alpha3, est, 1.0 / 255.0, dtype=cv2.CV_16S)
        cv2.add(f_hat, est, paste, dtype=cv2.CV_8U)                           # F, within 0-255
        if self._colour is not None:
            cv2.copyTo(paste, soft, self._colour[y0:y1, x0:x1])
        cv2.multiply(paste, alpha3, paste, 1.0 / 255.0)
        cv2.copyTo(paste, soft, fg)

    def _colour_buffers(self) -> tuple[np.ndarray, ...]:
        shape = self._shape
        self._estimate_buffers = (np.empty(shape[:2], np.uint8), np.empty(shape, np.uint8),
                                  np.empty(shape, np.int16), np.empty(shape, np.int16),
                                  np.empty(shape, np.uint8), np.empty(shape, np.uint8))
        return self._estimate_buffers

    @property
    def foreground(self) -> np.ndarray | None:
        """The colour pasted where the person is, last frame (with the person's own colour at the
        edge when it was estimated)."""
        return self._colour if self._colour is not None else self._image

    def set_background(self, background: Background) -> None:
        """Takes effect at the next frame, on the composing thread (which then closes the old one)."""
        self._next_background = background

    @property
    def upcoming_background(self) -> Background:
        """The background of the next frame."""
        return self._next_background or self.background

    def compose(self, image: np.ndarray, small: np.ndarray, mask: np.ndarray, need_alpha: bool = False,
                small_gray: np.ndarray | None = None) -> np.ndarray:
        """Returns the composited frame: always an internal buffer, valid until the call after next,
        never `image` (a pooled camera frame that capture overwrites once it is released). `small_gray`:
        `small` in grey, when the chain made it already."""
        if self._next_background is not None:
            old, self.background, self._next_background = self.background, self._next_background, None
            if old is not self.background:
                old.close()
        background = self.background
        passthrough = isinstance(background, Passthrough)
        self._buffers(image.shape)
        self._image, self._colour = image, None
        if passthrough and not need_alpha:
            return self._passthrough(image)
        refiner = self.refiner
        # the compiled kernels solve the grid too on the frames whose edge they do: one path a frame
        wanted = refiner.settings
        ready = not passthrough and not (need_alpha and wanted.decontaminate and wanted.enabled) and self._ready()
        regions = refiner.prepare(image, small, mask, small_gray, self.kernels if ready else None)
        frame = refiner.frame_settings  # read once: `refiner.settings` may change meanwhile
        estimate = frame.decontaminate and frame.enabled
        colours = (refiner.local_colours.person8, refiner.local_colours.room8) if estimate else None
        if estimate and need_alpha:  # offline: the colour a cut-out would carry
            self._colour = image.copy()
        if passthrough:
            for region in regions:
                alpha = refiner.refine(image, region)
                if estimate and region.kind == EDGE:
                    rh, rw = alpha.shape
                    a3 = self._alpha3[:rh, :rw]
                    cv2.cvtColor(alpha, cv2.COLOR_GRAY2BGR, dst=a3)
                    self._decontaminate(image, region, alpha, a3, self._fg[:rh, :rw], colours)
            refiner.finish()
            return self._passthrough(image)
        bg = background.render(image.shape, small, mask, steady=refiner.steady)
        out = self._blend if self.mirror else self._next_output()
        slot = 2 if self.mirror else self._turn
        self._held = self._room_held(slot, bg, background.generation)
        if refiner.post_processed:  # the alpha is complete only after every region is refined
            for region in regions:
                refiner.refine(image, region)
            alpha = refiner.finish()
            for region in regions:
                y0, y1, x0, x1 = region.pixels
                self._blend_region(image, bg, alpha[y0:y1, x0:x1], region, out, colours)
        else:
            compiled = ready and self._takes(image, bg)
            self.frames_by_path["compiled" if compiled else "opencv"] += 1
            for region in regions:
                if compiled and region.kind == EDGE:
                    self._edge_compiled(image, bg, region, out, colours)
                else:
                    self._blend_region(image, bg, refiner.refine(image, region), region, out, colours)
            refiner.finish()
        self._keep_room_cells(slot, bg, background.generation, regions)
        if self.mirror:
            flipped = self._next_output()
            cv2.flip(out, 1, dst=flipped)
            self._room_kept[self._turn] = None
            return flipped
        return out

    def _room_held(self, slot: int, bg: np.ndarray, generation: int | None) -> np.ndarray | None:
        """The grid cells whose pixels output buffer `slot` holds from this very background (the same
        array, not drawn anew since), which a room region need not copy again; None if none. The
        buffer's note is dropped until the frame is composed (`_keep_room_cells`): a frame that fails
        halfway leaves no note about pixels it may have overwritten."""
        kept, self._room_kept[slot] = self._room_kept[slot], None
        if kept is None:
            return None
        cells, (array, drawn) = kept
        self._spare_cells = cells
        return cells if generation is not None and array is bg and drawn == generation else None

    def _keep_room_cells(self, slot: int, bg: np.ndarray, generation: int | None, regions: list[Region]) -> None:
        """Notes which cells of buffer `slot` now hold the background's pixels: this frame's room."""
        self._held = None
        if generation is None:
            return
        cells, grid = self._spare_cells, self.refiner.mapping.grid
        if cells is None or cells.shape != grid:
            cells = np.empty(grid, np.uint8)
        self._spare_cells = None
        cells.fill(0)
        for region in regions:
            if region.kind == ROOM:
                cy0, cy1, cx0, cx1 = region.cells
                cells[cy0:cy1, cx0:cx1] = 1
        self._room_kept[slot] = (cells, (bg, generation))

    def _ready(self) -> bool:
        """Whether the compiled kernels are chosen and compiled for this frame (starting the compile
        after the first frame)."""
        kernels = self.kernels
        if self.compositor == "opencv" or not kernels.available:
            return False
        if self.one_path:
            if self._one_path_compiled is None:  # decided at the first frame, kept for the run
                self._one_path_compiled = kernels.wait(COMPILE_WAIT_S)
            return self._one_path_compiled
        if self.frames_by_path["opencv"]:
            kernels.start()  # after the first frame: importing numba and loading its cache hold the GIL
        return kernels.ready.is_set()

    def _takes(self, image: np.ndarray, bg: np.ndarray) -> bool:
        """Whether the compiled pass can do what this frame asks of the edge band: a refined edge (and,
        offline, not the cut-out's colour, which the OpenCV path keeps)."""
        return (self.refiner.refines and self._colour is None
                and image.flags.c_contiguous and bg.flags.c_contiguous and bg.shape == image.shape)

    def _edge_compiled(self, image, bg, region: Region, out, colours) -> None:
        refiner = self.refiner
        terms = refiner.grid_terms(image, region)
        hold = refiner.hold
        if hold.active:
            gray, prev_gray, keep, motion, trail, shimmer = hold.pass_params()
        else:
            gray = prev_gray = refiner.alpha  # not read: nothing is kept
            keep, motion, trail, shimmer = 0.0, 0, 0, 0
        person, room = colours if colours is not None else (_NO_COLOURS, _NO_COLOURS)
        try:
            self.kernels.edge_pass(*region.pixels, terms.a, terms.b, terms.cap, terms.guide, gray, prev_gray,
                                   refiner.alpha, image, bg, out, *self._grid_rows(terms.b.shape), self._trow,
                                   self._row3, np.float32(keep), np.int32(motion), np.int32(trail),
                                   np.int32(shimmer), colours is not None, person, room, refiner.tracking,
                                   refiner.shown, region.cells, *refiner.mapping.taps)
        except TypeError as e:  # refused before it touched a pixel: never compiled on a frame's time
            log.warning("the compiled compositor does not take this frame (%s); compositing with OpenCV", e)
            self.compositor = "opencv"
            self._blend_region(image, bg, refiner.refine(image, region), region, out, colours)

    def _grid_rows(self, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The compiled pass's scratch: the grid's rows upsampled along x (a's, b's, cap's)."""
        if self._rows_shape != grid:
            w = self._shape[1]
            self._rows = (np.empty((grid[0], 3 * w), np.float32), np.empty((grid[0], w), np.float32),
                          np.empty((grid[0], w), np.int32))
            self._rows_shape = grid
        return self._rows

    def _next_output(self) -> np.ndarray:
        self._turn ^= 1
        return self._outputs[self._turn]

    def _passthrough(self, image: np.ndarray) -> np.ndarray:
        out = self._next_output()
        self._room_kept[self._turn] = None
        if self.mirror:
            cv2.flip(image, 1, dst=out)
        else:
            np.copyto(out, image)
        return out

    def _blend_region(self, image, bg, alpha, region: Region, out, colours) -> None:
        y0, y1, x0, x1 = region.pixels
        target = out[y0:y1, x0:x1]
        if region.kind == ROOM:
            held = self._held
            cy0, cy1, cx0, cx1 = region.cells
            if held is None or not held[cy0:cy1, cx0:cx1].all():
                np.copyto(target, bg[y0:y1, x0:x1])
        elif region.kind == PERSON:
            np.copyto(target, image[y0:y1, x0:x1])
        else:
            rh, rw = y1 - y0, x1 - x0
            a3, inv3, fg = self._alpha3[:rh, :rw], self._inv3[:rh, :rw], self._fg[:rh, :rw]
            cv2.cvtColor(alpha, cv2.COLOR_GRAY2BGR, dst=a3)
            cv2.bitwise_not(a3, inv3)
            cv2.multiply(image[y0:y1, x0:x1], a3, fg, 1.0 / 255.0)
            if colours is not None:
                self._decontaminate(image, region, alpha, a3, fg, colours)
            cv2.multiply(bg[y0:y1, x0:x1], inv3, a3, 1.0 / 255.0)
            cv2.add(fg, a3, target)
