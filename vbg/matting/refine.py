"""The edge: the model's soft mask on its 256x144 grid -> a full-resolution 8-bit alpha.

Refinement is a fast guided filter (He & Sun, 2015): the filter's linear coefficients are solved on
the mask grid against the frame there (its grey levels, or its colour for the fine edge), upsampled,
and applied to the full-resolution frame, so the outline follows the real edges of hair and
shoulders rather than the blocky grid. Before that, the mask's unsure edge is pulled toward what the
local colours say (`ColourUnmixing`). The grid's solution also says where the alpha can only be 0 or
1, which is where the compositor copies instead of refining (vbg/matting/regions.py); it is reused while the
grid holds still (`SteadyGrid`). Buffers are allocated once per frame size.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from vbg.matting.gate import changed_cells, grid_gray
from vbg.matting.hold import EdgeHold
from vbg.matting.kernels import solve_planes
from vbg.matting.regions import EDGE, PERSON, ROOM, SOFT_LEVELS, GridToFrame, Region, cell_kinds, plan
from vbg.settings import RefineSettings

_SUM3 = np.ones((1, 3), np.float32)  # cv2.transform with it sums the channels
_MARK = np.full(256, 128, np.uint8)  # an alpha's mark for EdgeRefiner._track_shown
_MARK[:SOFT_LEVELS[0]], _MARK[SOFT_LEVELS[1] + 1:] = 0, 255
_KIND = np.full(256, EDGE, np.uint8)  # a cell's average mark -> its kind
_KIND[0], _KIND[255] = ROOM, PERSON


class LocalColours:
    """The local person and room colours around each grid cell, F^ and B^: the frame's colours on the
    grid averaged over a 7x7 window, weighted by the mask and by its complement. Kept buffers.

    The room colour the person's own colour is estimated against (`room8`) is the surest room's only:
    over a 5x5 window, weighted by (1 - P)^ROOM_POWER. Weighted by 1 - P, the average takes in the
    edge's own mixed cells, so the estimate leans back to the camera pixel and leaves the old room's
    tint in the hair (office08 over white 13.27 -> 13.08, nature02 7.33 -> 7.22: docs/quality.md)."""

    ROOM_POWER, ROOM_WINDOW = 16.0, 5

    def __init__(self):
        self.person = self.room = np.empty((0, 0, 3), np.float32)

    def __call__(self, small: np.ndarray, mask: np.ndarray, eight_bit: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(F^, B^) in float; with `eight_bit` also kept as `person8` and `room8` (the colour estimate's)."""
        if self.person.shape[:2] != mask.shape:
            self.person, self.room, self._share, self._weight = (
                np.empty(mask.shape + (3,), np.float32) for _ in range(4))
            self._plane = np.empty(mask.shape, np.float32)
            self.person8, self.room8 = np.empty(mask.shape + (3,), np.uint8), np.empty(mask.shape + (3,), np.uint8)
            self._room_sum, self._sure_room = np.empty(mask.shape + (3,), np.float32), np.empty(mask.shape, np.float32)
        f_hat, b_hat, share, weight = self.person, self.room, self._share, self._weight
        r = (7, 7)
        cv2.cvtColor(mask, cv2.COLOR_GRAY2BGR, dst=share)
        cv2.multiply(small, share, f_hat, dtype=cv2.CV_32F)
        cv2.boxFilter(small, cv2.CV_32F, r, dst=b_hat)
        cv2.boxFilter(f_hat, -1, r, dst=f_hat)
        cv2.subtract(b_hat, f_hat, b_hat)                                     # box(small * (1 - mask))
        cv2.boxFilter(mask, -1, r, dst=self._plane)
        cv2.cvtColor(self._plane, cv2.COLOR_GRAY2BGR, dst=share)              # the person's share
        np.add(share, 1e-4, out=weight)
        cv2.divide(f_hat, weight, f_hat)
        np.subtract(1.0 + 2e-4, weight, out=weight)                           # the room's, + 1e-4
        cv2.divide(b_hat, weight, b_hat)
        if eight_bit:
            cv2.convertScaleAbs(f_hat, self.person8)
            self._surest_room(small, mask)
        return f_hat, b_hat

    def _surest_room(self, small: np.ndarray, mask: np.ndarray) -> None:
        """`room8`: the room's colour from its surest cells; B^ where none is near (inside the person)."""
        total, sure, share = self._room_sum, self._sure_room, self._share
        r, eps = (self.ROOM_WINDOW, self.ROOM_WINDOW), 1e-3
        np.subtract(1.0, mask, out=sure)
        cv2.pow(sure, self.ROOM_POWER, sure)
        cv2.cvtColor(sure, cv2.COLOR_GRAY2BGR, dst=share)
        cv2.multiply(small, share, total, dtype=cv2.CV_32F)
        cv2.boxFilter(total, -1, r, dst=total)
        cv2.scaleAdd(self.room, eps, total, total)                            # + eps B^
        cv2.boxFilter(sure, -1, r, dst=sure)
        cv2.cvtColor(sure, cv2.COLOR_GRAY2BGR, dst=share)
        np.add(share, eps, out=share)
        cv2.divide(total, share, total)
        cv2.convertScaleAbs(total, self.room8)


class ColourUnmixing:
    """Pulls the model's unsure edge towards what the colours say, on the grid.

    The model is unsure (and mostly too low) at ears and hair over light walls. Where the local person
    and room colours differ, a cell's own colour tells how much of it is person: its position on the
    line from the room colour B^ to the person colour F^. Where the mask is unsure (4 p (1 - p)) and
    the two colours are far enough apart to trust (`trust_levels`), p moves that way by `strength`.
    Done on the grid, whose colours are area averages, so sensor noise does not become flicker (per
    pixel at full size it did, docs/quality.md)."""

    def __init__(self, trust_levels: tuple[float, float] = (20.0, 60.0)):
        self.trust_levels = trust_levels
        self._shape = None

    def __call__(self, small: np.ndarray, mask: np.ndarray, colours: tuple[np.ndarray, np.ndarray],
                 strength: float) -> np.ndarray:
        """The adjusted mask (a kept buffer)."""
        if self._shape != mask.shape:
            self._d, self._x = np.empty(mask.shape + (3,), np.float32), np.empty(mask.shape + (3,), np.float32)
            self._n2, self._t, self._w, self._out = (np.empty(mask.shape, np.float32) for _ in range(4))
            self._shape = mask.shape
        f_hat, b_hat = colours
        d, x, n2, t, w, out = self._d, self._x, self._n2, self._t, self._w, self._out
        cv2.subtract(f_hat, b_hat, d)
        cv2.multiply(d, d, x)
        cv2.transform(x, _SUM3, n2)                                   # |F^ - B^|^2
        cv2.subtract(small, b_hat, x, dtype=cv2.CV_32F)
        cv2.multiply(x, d, x)
        cv2.transform(x, _SUM3, t)                                    # (I - B^) . (F^ - B^)
        np.add(n2, 1e-3, out=w)
        np.divide(t, w, out=t)
        np.clip(t, 0.0, 1.0, out=t)                                   # where I lies on B^ -> F^
        lo, span = self.trust_levels
        np.sqrt(n2, out=w)
        np.subtract(w, lo, out=w)
        np.multiply(w, strength / (span - lo), out=w)
        np.clip(w, 0.0, strength, out=w)                              # trust in the colours
        np.subtract(1.0, mask, out=n2)
        np.multiply(n2, mask, out=n2)
        np.multiply(n2, 4.0, out=n2)                                  # how unsure the mask is
        np.multiply(w, n2, out=w)
        np.subtract(t, mask, out=t)
        np.multiply(t, w, out=t)
        np.add(mask, t, out=out)
        return out


class SteadyGrid:
    """Whether the grid's inputs (the frame on the grid, the smoothed mask, the settings) are still
    those the edge filter was last solved for, near enough to reuse the solution: at most `share` of
    the cells moved by more than `levels` grey levels or `mask_step` in the mask, for at most
    `max_reuse` frames in a row. About half the frames of a talking head qualify; on video_gt the
    scores do not move (docs/quality.md)."""

    def __init__(self, levels: int = 12, share: float = 0.002, mask_step: float = 0.05, max_reuse: int = 4):
        self.levels, self.share, self.mask_step, self.max_reuse = levels, share, mask_step, max_reuse
        self._settings = None
        self._shape = None
        self._reused = 0

    def reset(self) -> None:
        self._settings = None

    def holds(self, small_gray: np.ndarray, mask: np.ndarray, settings) -> bool:
        if self._shape != mask.shape:
            self._ref_gray, self._diff = np.empty(mask.shape, np.uint8), np.empty(mask.shape, np.uint8)
            self._ref_mask, self._mask_diff = np.empty_like(mask), np.empty_like(mask)
            self._shape, self._settings = mask.shape, None
        if self._settings is settings and self._reused < self.max_reuse:
            allowed = self.share * mask.size
            if changed_cells(small_gray, self._ref_gray, self.levels, self._diff) <= allowed and \
                    changed_cells(mask, self._ref_mask, self.mask_step, self._mask_diff) <= allowed:
                self._reused += 1
                return True
        np.copyto(self._ref_gray, small_gray)
        np.copyto(self._ref_mask, mask)
        self._settings, self._reused = settings, 0
        return False


class EdgeTerms(NamedTuple):
    """An edge rectangle's filter: alpha*255 = a . guide + b, at most `cap`. From `terms`, all upsampled
    into frame-sized buffers, valid over the rectangle; from `grid_terms`, a, b and cap on the grid
    (the compiled pass upsamples them itself) and the guide frame-sized."""
    a: np.ndarray       # float32 (h, w, 1 or 3): 1 channel with the grey guide, 3 with the colour guide
    guide: np.ndarray   # uint8 (h, w, 1 or 3): the frame through a 3x3 box
    b: np.ndarray       # float32 (h, w)
    cap: np.ndarray     # uint8 (h, w)


class EdgeRefiner:
    """Mask-grid probability -> full-resolution 8-bit alpha, steadied over time by `hold`
    (vbg/matting/hold.py).

    Per frame: `prepare` solves the filter on the grid and cuts the frame into regions (vbg/matting/regions.py);
    `refine` then fills one region of `alpha`, computing pixels only in the edge band. Calling the
    refiner does both for the whole frame.
    """

    STRIP_PX, MIN_RUN_PX = 80, 32
    INSIDE_CELLS = 3  # grid cells: a mask over 0.5 this far in all round is the person's inside
    BOUND_CELLS = 1   # grid cells beyond the model's sure person where the edge may go anywhere (`_bound`)
    BOUND_UP_CELLS = 1  # further cells above it where the edge may reach BOUND_UP_GAIN x the model's P
    BOUND_UP_GAIN = 3.0
    SURE_P = 0.5      # the model's P over which it is sure of the person, for `_bound`

    def __init__(self, settings: RefineSettings, hold: EdgeHold | None = None):
        self.settings = settings
        self.frame_settings = settings  # the settings of the frame being refined (`prepare`)
        self.hold = hold or EdgeHold()
        self._grid_shape = None
        self._full_shape = None
        self._cshape = None  # grid buffers of the colour guide
        self._lifted: np.ndarray | None = None
        self._firm: np.ndarray | None = None
        self._solid: np.ndarray | None = None
        self._solve_key = None  # the compiled solve's scratch is for this grid, guide and radius
        self._up_kernel = np.ones((self.BOUND_UP_CELLS + 1, 1), np.uint8)  # with anchor (0, 0): the cells below
        self._a: np.ndarray | None = None  # alpha*255 = a . guide + b, guide in 8-bit levels (None: a = 0)
        self._track = False
        self.alpha = np.empty((0, 0), np.uint8)
        self.local_colours = LocalColours()
        self._unmixing = ColourUnmixing()
        self._steady = SteadyGrid()
        self.steady = False  # this frame reuses the last solution (and may reuse a background drawn from it)

    def reset(self) -> None:
        self.hold.reset()
        self._steady.reset()
        if self._grid_shape is not None:
            self._shown.fill(EDGE)

    def _grid_buffers(self, shape):
        if self._grid_shape != shape:
            self._gi = np.empty(shape, np.float32)
            self._mi, self._mp, self._mip, self._mii = (np.empty(shape, np.float32) for _ in range(4))
            self._ga, self._b, self._t, self._above = (np.empty(shape, np.float32) for _ in range(4))
            self._ac = np.empty(shape + (3,), np.float32)  # the colour guide's coefficients
            self._ggray = np.empty(shape, np.uint8)
            self._cap, self._capped = np.empty(shape, np.uint8), np.empty(shape, np.uint8)
            self._room, self._person = np.empty(shape, np.uint8), np.empty(shape, np.uint8)
            self._kinds, self._base_kinds = np.empty(shape, np.uint8), np.empty(shape, np.uint8)
            self._planned, self._regions = np.empty(shape, np.uint8), None  # the last plan, and its kinds
            self._shown = np.full(shape, EDGE, np.uint8)  # each cell's kind as last frame's alpha shows it
            self._cells = np.empty(shape, np.uint8)
            self._grid_shape, self._full_shape = shape, None

    def _full_buffers(self, shape):
        if self._full_shape != shape:
            h, w = shape
            self._held_alpha = np.zeros(shape, np.uint8)   # last frame's alpha, before any post-processing
            self._post = None
            self._new = np.empty(shape, np.uint8)
            self._gray = np.empty(shape, np.uint8)
            self._guide = np.empty((h, w, 3), np.uint8)  # the colour guide, rectangle by rectangle
            self._A, self._B, self._T = (np.empty(shape, np.float32) for _ in range(3))
            self._A3, self._T3 = np.empty(shape + (3,), np.float32), np.empty(shape + (3,), np.float32)
            self._mark, self._capup = np.empty(shape, np.uint8), np.empty(shape, np.uint8)
            self._kernels = {}
            self._mapping = GridToFrame(self._grid_shape, shape)
            self._regions = None
            self._full_shape = shape
        self.alpha = self._held_alpha

    @property
    def mapping(self) -> GridToFrame:
        return self._mapping

    @property
    def refines(self) -> bool:
        """This frame's edge is the guided filter's (not the plain upsampled mask), after `prepare`."""
        return self._a is not None

    @property
    def post_processed(self) -> bool:
        s = self.frame_settings
        return s.threshold is not None or s.erode > 0 or s.feather > 0

    def __call__(self, image: np.ndarray, small: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Returns the full-size alpha (uint8, an internal buffer reused next call)."""
        for region in self.prepare(image, small, mask, None):
            self.refine(image, region)
        return self.finish()

    def prepare(self, image: np.ndarray, small: np.ndarray, mask: np.ndarray,
                small_gray: np.ndarray | None, kernels=None) -> list[Region]:
        """Solves the edge filter on the grid for this frame; returns the regions to `refine`.
        `small_gray`: the chain's grey of `small` (vbg/matting/gate.py: grid_gray), or None to make it.
        `kernels`: the compiled kernels (vbg/matting/kernels.py), ready, to solve the filter with."""
        h, w = image.shape[:2]
        self._grid_buffers(mask.shape)
        self._full_buffers((h, w))
        if small_gray is None:
            small_gray = grid_gray(small, self._ggray)
        self._small_gray = small_gray
        # one frame, one set of settings: `settings` may be swapped from another thread meanwhile
        self.frame_settings = s = self.settings
        self.steady = self._steady.holds(small_gray, mask, s)
        if not self.steady:
            self._solve(small, mask, kernels)
        return self._plan(image)

    def _solve(self, small: np.ndarray, mask: np.ndarray, kernels=None) -> None:
        """The edge filter's coefficients on the grid (and the local colours), for `small` and `mask`."""
        s = self.frame_settings
        if s.enabled:
            self._bound(mask)
            mask = self._solid_inside(mask)
        colours = self.local_colours(small, mask, eight_bit=s.decontaminate) \
            if s.enabled and (s.unmix > 0 or s.decontaminate) else None
        if s.enabled and s.mask_gamma != 1.0:
            # the model is under-confident on hair and shoulders (its alpha falls short of the truth there
            # by 40 levels on video_gt): lifting the soft probabilities puts the edge where the hair is
            if self._lifted is None or self._lifted.shape != mask.shape:
                self._lifted = np.empty_like(mask)
            cv2.pow(mask, s.mask_gamma, self._lifted)
            mask = self._lifted
        if s.enabled and s.unmix > 0:
            mask = self._unmixing(small, mask, colours, s.unmix)
        if s.enabled and s.mask_contrast != 1.0:
            # the ear the model gives 0.8-0.9 is all person: a firmer mask lets the filter fit the colours
            # to a clear verdict instead of averaging the doubt into the alpha (docs/quality.md)
            mask = self._firmed(mask, s.mask_contrast)
        if s.enabled and kernels is not None and self._solved_compiled(kernels, small, mask):
            return
        if s.enabled and s.color_guide:
            self._guided_color(small, mask)
        elif s.enabled:
            self._guided(small, mask)
        else:
            self._a = None
            np.multiply(mask, 255.0, out=self._b)
        self._classify()

    def _solved_compiled(self, kernels, small: np.ndarray, mask: np.ndarray) -> bool:
        """The filter solved, and the cells classified, by the compiled solve (one pass per plane where
        OpenCV makes a Python call per step): False when it cannot take this frame."""
        s = self.frame_settings
        guide = small if s.color_guide else self._small_gray[:, :, None]
        channels = guide.shape[2]
        if min(mask.shape) < 2 * s.radius + 2:
            return False
        key = (mask.shape, channels, s.radius)
        if self._solve_key != key:  # float32 planes, a float64 and a float32 row
            w = mask.shape[1]
            self._solve_scratch = (np.empty((solve_planes(channels),) + mask.shape, np.float32), np.empty(w),
                                   np.empty(w + 2 * s.radius, np.float32))
            self._solve_key = key
        a = self._ac if channels == 3 else self._ga[:, :, None]
        try:
            kernels.guided_solve(np.ascontiguousarray(guide), mask, self._cap, int(s.radius), np.float32(s.eps),
                                 np.float32(s.snap), a, self._b, self._room, self._person, *self._solve_scratch)
        except TypeError:  # refused before it wrote anything: a type it was not compiled for
            return False
        self._a = self._ac if channels == 3 else self._ga
        cell_kinds(self._room, self._person, self._base_kinds)
        return True

    def _bound(self, mask: np.ndarray) -> None:
        """The most alpha the refined edge may have, per cell: any within BOUND_CELLS of where the model
        is sure of the person (P > SURE_P), elsewhere no more than the model's own P there. The edge filter's
        coefficients, solved on the grid, carry "person" along any thin line of the hair's colour (a
        ceiling's dark seams), and the lift of the soft mask and the colour unmixing make solid what the
        model half-saw (a picture beside the jaw, rocks by a leg); bounded, they only shape the outline
        the model drew. Above the sure person, BOUND_UP_CELLS further, the edge may reach BOUND_UP_GAIN
        times the model's P: hair rises where the model is least sure (the crown over a dark ceiling),
        while a seam the model barely saw stays faint (left free there, the seams came back as spikes
        above the head: docs/quality.md), and nothing beside the head gains."""
        cv2.threshold(mask, self.SURE_P, 1.0, cv2.THRESH_BINARY, dst=self._t)
        cv2.dilate(self._t, None, dst=self._t, iterations=self.BOUND_CELLS)
        if self.BOUND_UP_CELLS:
            cv2.dilate(self._t, self._up_kernel, dst=self._above, anchor=(0, 0))
            cv2.multiply(self._above, mask, self._above, scale=self.BOUND_UP_GAIN)
            cv2.max(self._t, self._above, dst=self._t)
        cv2.max(self._t, mask, dst=self._t)
        cv2.convertScaleAbs(self._t, self._cap, alpha=255.0)

    def _solid_inside(self, mask: np.ndarray) -> np.ndarray:
        """`mask` with 1 wherever every cell within INSIDE_CELLS is over 0.5: well inside the outline the
        person is opaque, whatever doubt the model had there (a widened portrait frame leaves some in
        a torso the frame's bottom cuts: docs/quality.md)."""
        if self._solid is None or self._solid.shape != mask.shape:
            self._solid, self._inside = np.empty_like(mask), np.empty_like(mask)
        cv2.threshold(mask, 0.5, 1.0, cv2.THRESH_BINARY, dst=self._inside)
        cv2.erode(self._inside, None, dst=self._inside, iterations=self.INSIDE_CELLS)  # the frame's border erodes nothing
        return np.maximum(mask, self._inside, out=self._solid)

    def _firmed(self, mask: np.ndarray, contrast: float) -> np.ndarray:
        if self._firm is None or self._firm.shape != mask.shape:
            self._firm = np.empty_like(mask)
        np.multiply(mask, contrast, out=self._firm)
        np.add(self._firm, 0.5 - 0.5 * contrast, out=self._firm)
        return np.clip(self._firm, 0.0, 1.0, out=self._firm)

    def _plan(self, image: np.ndarray) -> list[Region]:
        s = self.frame_settings
        h, w = image.shape[:2]
        gray = self.hold.frame_gray((h, w)) if s.enabled else None
        holding = gray is not None and self.hold.active
        if gray is None and s.enabled and not s.color_guide:
            gray = self._gray
        if gray is not None:
            # the guide through a 3x3 box: the coefficients carry the edge's gain to every pixel, sensor
            # noise included, and the box halves the edge shimmer that causes (measured on video_gt)
            cv2.cvtColor(image, cv2.COLOR_BGR2GRAY, dst=gray)
            cv2.blur(gray, (3, 3), dst=gray)
        self._frame_gray = gray
        kinds = self._kinds
        np.copyto(kinds, self._base_kinds)
        if self.post_processed:
            kinds.fill(EDGE)  # erode and feather reach across regions: one region, the whole frame
        if holding:
            # where last frame's alpha was not already this cell's 0 or 1 (an edge still fading out, the
            # person or room a still frame's mask flipped), the hold blends the two: work to do
            np.copyto(kinds, EDGE, where=kinds != self._shown)
        self._track = s.enabled and self.hold.strength > 0
        if self._regions is None or not np.array_equal(kinds, self._planned):
            self._regions = plan(kinds, self._mapping, self.STRIP_PX, self.MIN_RUN_PX)
            np.copyto(self._planned, kinds)
        return self._regions

    def _classify(self) -> None:
        """Each cell's kind from the coefficients alone: the alpha a cell can reach over any guide value;
        where it cannot rise above 0 (or fall below 1) the cell is room (person) whatever the pixels
        (the snap makes most of the frame so)."""
        lo, hi = self._mi, self._mii  # free once the coefficients are solved
        if self._a is None:
            lo.fill(0.0)
            hi.fill(0.0)
        else:
            planes = cv2.split(self._a) if self._a.ndim == 3 else (self._a,)
            np.minimum(planes[0], 0.0, out=lo)
            np.maximum(planes[0], 0.0, out=hi)
            for p in planes[1:]:
                lo += np.minimum(p, 0.0)
                hi += np.maximum(p, 0.0)
        np.multiply(hi, 255.0, out=hi)
        np.add(hi, self._b, out=hi)
        cv2.compare(hi, 0.5, cv2.CMP_LE, dst=self._room)
        if self._a is not None:  # the bound (`_bound`) holds a cell at 0, or keeps it from 1
            cv2.compare(self._cap, 0, cv2.CMP_EQ, dst=self._capped)
            cv2.bitwise_or(self._room, self._capped, dst=self._room)
        np.multiply(lo, 255.0, out=lo)
        np.add(lo, self._b, out=lo)
        cv2.compare(lo, 254.5, cv2.CMP_GE, dst=self._person)
        if self._a is not None:
            cv2.compare(self._cap, 255, cv2.CMP_EQ, dst=self._capped)
            cv2.bitwise_and(self._person, self._capped, dst=self._person)
        cell_kinds(self._room, self._person, self._base_kinds)

    def refine(self, image: np.ndarray, region: Region) -> np.ndarray:
        """Fills `region` of the alpha; returns it (a view)."""
        y0, y1, x0, x1 = region.pixels
        out = self._held_alpha[y0:y1, x0:x1]
        if region.kind != EDGE:
            out.fill(255 if region.kind == PERSON else 0)
            if self._track:
                cy0, cy1, cx0, cx1 = region.cells
                self._shown[cy0:cy1, cx0:cx1] = region.kind
            return out
        if self._a is None:
            B = self._mapping.upsample(self._b, region, self._B)
            cv2.convertScaleAbs(B, out)  # b >= 0 here: the plain bilinear mask
            return out
        terms = self.terms(image, region)
        rh, rw = y1 - y0, x1 - x0
        new, T = self._new[:rh, :rw], self._T[:rh, :rw]
        inside = (slice(y0, y1), slice(x0, x1))
        B, cap = terms.b[inside], terms.cap[inside]
        if terms.a.shape[2] == 3:
            T3 = self._T3[:rh, :rw]
            cv2.multiply(terms.guide[inside], terms.a[inside], T3, dtype=cv2.CV_32F)
            cv2.transform(T3, _SUM3, T)
        else:
            cv2.multiply(terms.guide[inside][:, :, 0], terms.a[inside][:, :, 0], T, dtype=cv2.CV_32F)
        if self.hold.active:
            cv2.add(T, B, new, dtype=cv2.CV_8U)
            cv2.min(new, cap, new)
            self.hold(new, out, region.pixels)  # blends into `out`, last frame's alpha there
        else:
            cv2.add(T, B, out, dtype=cv2.CV_8U)
            cv2.min(out, cap, out)
        if self._track:
            self._track_shown(out, region)
        return out

    def terms(self, image: np.ndarray, region: Region) -> EdgeTerms:
        """The edge filter over an EDGE `region`, upsampled to the frame (after `prepare`, with refinement)."""
        m = self._mapping
        m.upsample(self._b, region, self._B)
        m.upsample(self._cap, region, self._capup)
        guide = self.guide(image, region)
        if self._a.ndim == 2:
            m.upsample(self._ga, region, self._A)
            return EdgeTerms(self._A[:, :, None], guide, self._B, self._capup)
        m.upsample(self._a, region, self._A3)
        return EdgeTerms(self._A3, guide, self._B, self._capup)

    def grid_terms(self, image: np.ndarray, region: Region) -> EdgeTerms:
        """The edge filter over an EDGE `region` on the grid, for a pass that upsamples it itself (a, b
        and cap grid-sized; the guide frame-sized, valid over the rectangle)."""
        a = self._ga[:, :, None] if self._a.ndim == 2 else self._a
        return EdgeTerms(a, self.guide(image, region), self._b, self._cap)

    def guide(self, image: np.ndarray, region: Region) -> np.ndarray:
        """The edge filter's guide over `region`: the boxed grey frame, or the colour frame through the
        same 3x3 box."""
        if self._a.ndim == 2:
            return self._frame_gray[:, :, None]
        # with its real neighbours (a pixel of margin, written over a neighbour's place in the buffer:
        # each rectangle's guide is used before the next's)
        y0, y1, x0, x1 = region.pixels
        h, w = image.shape[:2]
        ey0, ey1, ex0, ex1 = max(0, y0 - 1), min(h, y1 + 1), max(0, x0 - 1), min(w, x1 + 1)
        cv2.blur(image[ey0:ey1, ex0:ex1], (3, 3), dst=self._guide[ey0:ey1, ex0:ex1])
        return self._guide

    @property
    def tracking(self) -> bool:
        """Whether this frame's edge notes which cells it shows as all room or all person (`shown`), for
        the next frame's plan: a pass that fills an edge rectangle itself notes them too."""
        return self._track

    @property
    def shown(self) -> np.ndarray:
        """Each grid cell's kind as the last alpha shows it (ROOM, PERSON or EDGE)."""
        return self._shown

    def _track_shown(self, alpha: np.ndarray, region: Region) -> None:
        """Which cells of an edge region came out all room or all person (within SOFT_LEVELS): pixels
        marked 0 (room), 255 (person) or 128, averaged per cell; a cell is room or person only when its
        average is exactly 0 or 255 (one marked pixel moves it by at least half a level up to 15 pixels
        a cell, i.e. 4K)."""
        cy0, cy1, cx0, cx1 = region.cells
        mark, cells = self._mark[:alpha.shape[0], :alpha.shape[1]], self._cells[:cy1 - cy0, :cx1 - cx0]
        cv2.LUT(alpha, _MARK, dst=mark)
        cv2.resize(mark, (cx1 - cx0, cy1 - cy0), dst=cells, interpolation=cv2.INTER_AREA)
        cv2.LUT(cells, _KIND, dst=self._shown[cy0:cy1, cx0:cx1])

    def finish(self) -> np.ndarray:
        """The frame's alpha, after the optional threshold, erosion and feathering."""
        s = self.frame_settings
        if not self.post_processed:
            self.alpha = self._held_alpha
            return self.alpha
        if self._post is None:
            self._post = np.empty_like(self._held_alpha)
        self.alpha = alpha = self._post
        np.copyto(alpha, self._held_alpha)
        if s.threshold is not None:
            cv2.threshold(alpha, s.threshold * 255, 255, cv2.THRESH_BINARY, dst=alpha)
        if s.erode > 0:
            cv2.erode(alpha, self._kernel(s.erode), dst=alpha)
        if s.feather > 0:
            k = 2 * s.feather + 1
            cv2.GaussianBlur(alpha, (k, k), 0, dst=alpha)
        return alpha

    def _kernel(self, px):
        k = self._kernels.get(px)
        if k is None:
            k = self._kernels[px] = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
        return k

    def _guided(self, small, mask):
        r = (2 * self.frame_settings.radius + 1,) * 2
        gi, mi, mp, mip, mii, a, b = self._gi, self._mi, self._mp, self._mip, self._mii, self._ga, self._b
        cv2.multiply(self._small_gray, 1.0 / 255.0, gi, dtype=cv2.CV_32F)
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
        np.add(mii, self.frame_settings.eps, out=mii)
        np.divide(mip, mii, out=a)
        np.subtract(mp, np.multiply(a, mi, out=t), out=b)
        cv2.boxFilter(a, -1, r, dst=a)
        cv2.boxFilter(b, -1, r, dst=b)
        # snap: alpha' = (alpha - snap) / (1 - 2 snap), folded into a and b; then
        # alpha'*255 = a * grey + 255 b at full size; grey stays 8-bit, alpha saturates into 8-bit
        gain = 1.0 / (1.0 - 2.0 * self.frame_settings.snap)
        np.multiply(a, gain, out=a)
        np.subtract(b, self.frame_settings.snap, out=b)
        np.multiply(b, 255.0 * gain, out=b)
        self._a = a

    def _guided_color(self, small, mask):
        """The guided filter with the frame's colour as the guide (He et al.'s colour version): skin or
        hair against a wall of the same brightness but another hue still gets an edge, where the grey
        guide sees none and lets the mask's blur through (ears and hair cut off over light walls).
        Channel by channel on contiguous planes with kept buffers: numpy is slow on interleaved
        channels, and a fresh array per step costs more than the step."""
        r = (2 * self.frame_settings.radius + 1,) * 2
        if self._cshape != mask.shape:
            self._cplanes = [np.empty(mask.shape, np.float32) for _ in range(30)]
            self._cshape = mask.shape
        P = iter(self._cplanes)
        mul, sub, add = np.multiply, np.subtract, np.add

        def box(x):
            out = next(P)
            cv2.boxFilter(x, -1, r, dst=out)
            return out

        g = [next(P) for _ in range(3)]
        for plane, channel in zip(g, cv2.split(small)):
            cv2.multiply(channel, 1.0 / 255.0, plane, dtype=cv2.CV_32F)
        t, u = next(P), next(P)
        m = [box(x) for x in g]
        mp = box(mask)
        cov = []
        for x, mx in zip(g, m):                                                  # cov(I_c, p)
            c = box(mul(x, mask, out=t))
            cov.append(sub(c, mul(mx, mp, out=t), out=c))
        var = {}
        for i, j in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)):            # var(I) + eps U
            v = box(mul(g[i], g[j], out=t))
            sub(v, mul(m[i], m[j], out=t), out=v)
            if i == j:
                add(v, self.frame_settings.eps, out=v)
            var[i, j] = v
        a00, a01, a02, a11, a12, a22 = (var[k] for k in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)))

        def det2(a, b, c, d):  # a b - c d
            out = next(P)
            return sub(mul(a, b, out=out), mul(c, d, out=t), out=out)

        # the inverse of the symmetric 3x3 (its adjugate over the determinant), times cov(I, p)
        i00, i01, i02 = det2(a11, a22, a12, a12), det2(a02, a12, a01, a22), det2(a01, a12, a02, a11)
        i11, i12, i22 = det2(a00, a22, a02, a02), det2(a01, a02, a00, a12), det2(a00, a11, a01, a01)
        det = next(P)
        mul(a00, i00, out=det)
        add(det, mul(a01, i01, out=t), out=det)
        add(det, mul(a02, i02, out=t), out=det)
        c0, c1, c2 = cov
        ac = []
        for k0, k1, k2 in ((i00, i01, i02), (i01, i11, i12), (i02, i12, i22)):
            a = next(P)
            mul(k0, c0, out=a)
            add(a, mul(k1, c1, out=t), out=a)
            add(a, mul(k2, c2, out=t), out=a)
            ac.append(np.divide(a, det, out=a))
        b = self._b
        np.copyto(b, mp)
        for a, mx in zip(ac, m):
            sub(b, mul(a, mx, out=t), out=b)
        cv2.boxFilter(b, -1, r, dst=b)
        gain = 1.0 / (1.0 - 2.0 * self.frame_settings.snap)
        for a in ac:  # alpha*255 = ac . guide + b, the guide in 8-bit levels
            cv2.boxFilter(a, -1, r, dst=u)
            mul(u, gain, out=a)
        cv2.merge(ac, dst=self._ac)
        sub(b, self.frame_settings.snap, out=b)
        mul(b, 255.0 * gain, out=b)
        self._a = self._ac
