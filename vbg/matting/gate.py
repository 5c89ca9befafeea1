"""The inference gate: whether the model runs on a frame, and on which view (the whole frame or the
head), from how much of the grid's picture changed since each view's last run."""

from __future__ import annotations

import cv2
import numpy as np

from vbg.matting.focus import FULL, HEAD


def grid_gray(small_bgr: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The frame on the model grid in grey, made once a frame: what every motion measure on the grid
    (the gate, the smoother, the edge filter's reuse) compares, and the edge filter's grey guide."""
    return cv2.cvtColor(small_bgr, cv2.COLOR_BGR2GRAY, dst=out)


def changed_cells(now: np.ndarray, ref: np.ndarray, step: float, scratch: np.ndarray) -> int:
    """How many cells of `now` differ from `ref` by more than `step` (`scratch`: a buffer like them,
    left holding 1 where they do)."""
    cv2.absdiff(now, ref, scratch)
    cv2.threshold(scratch, step, 1, cv2.THRESH_BINARY, dst=scratch)
    return cv2.countNonZero(scratch)


class InferenceGate:
    """Adaptive inference: while the picture holds still (a talking head between gestures) the model's
    last mask is reused, still smoothed, refined and composited against each new frame; the model runs
    again as soon as more than `share` of the grid changed by over `levels` grey levels since its last
    run, and at least every `max_skip + 1` frames (`max_skip` 0: every frame, adaptive inference off).

    With a head crop (vbg/matting/focus.py) the model has two views, the full frame and the head. They share
    those runs, so the crop costs no extra ones: a run goes to the view whose part of the picture
    moved (the full view's part is outside the crop), and to the one that waited longer when both or
    neither did. After a cut (over `cut_share` of the grid changed since the last run: another
    camera, the lights, a video's loop) the full view runs and `cut` says so: the head view from
    before it is stale."""

    def __init__(self, max_skip: int = 4, levels: int = 12, share: float = 0.002, cut_share: float = 0.25,
                 fast_share: float = 0.1):
        self.max_skip, self.levels, self.share, self.cut_share = max_skip, levels, share, cut_share
        self.fast_share = fast_share
        self.cut = self.fast = False
        self._refs: dict[str | None, np.ndarray] = {}   # the grey at the last run (None), of each view
        self._waited: dict[str | None, int] = {}         # frames since then
        self._gray = self._diff = None
        self.frames = self.runs = self.head_runs = 0

    def reset(self) -> None:
        self._refs.clear()

    def choose(self, small_gray: np.ndarray, head: tuple[int, int, int, int] | None = None) -> str | None:
        """The view to run the model on for this frame (FULL or HEAD), or None to reuse the last mask.
        `small_gray`: the frame on the model grid, in grey (`grid_gray`); `head`: the cells the head view
        would cover (None: no head view)."""
        self.frames += 1
        shape = small_gray.shape
        if self._diff is None or self._diff.shape != shape:
            self._diff = np.empty(shape, np.uint8)
            self._refs.clear()
        self._gray = small_gray
        if head is None:
            self._refs.pop(HEAD, None)
        views = (FULL,) if head is None else (FULL, HEAD)
        had_run = None in self._refs
        changed = self._changed(None, head)  # leaves the changed cells marked in _diff
        self.cut = changed > self.cut_share * self._diff.size
        # the head moving fast (over `fast_share` of its crop changed since the model last ran): its view
        # from a frame or two ago is already somewhere else, and taking turns would lay it over the new
        # full view late (a lagging outline dragged across the room); the full view runs alone meanwhile
        self.fast = False
        if had_run and not self.cut and head is not None:
            y0, y1, x0, x1 = head
            self.fast = cv2.countNonZero(self._diff[y0:y1, x0:x1]) > self.fast_share * (y1 - y0) * (x1 - x0)
        if changed <= self.share * self._diff.size and self._waited.get(None, 0) < self.max_skip:
            for key in (None, *views):
                self._waited[key] = self._waited.get(key, 0) + 1
            return None
        # after a cut the picture is another: the whole of it first
        moved = [FULL] if self.cut or self.fast else [v for v in views if self._moved(v, head)]
        view = max(moved if len(moved) == 1 else views, key=lambda v: self._waited.get(v, 0))  # ties: FULL
        for other in views:
            if other != view:
                self._waited[other] = self._waited.get(other, 0) + 1
        self.record(view)
        return view

    def record(self, view: str) -> None:
        """A run of `view` on this frame's picture (chosen here, or made by the chain besides)."""
        for key in (None, view):
            ref = self._refs.get(key)
            if ref is None:
                self._refs[key] = self._gray.copy()
            else:
                np.copyto(ref, self._gray)
            self._waited[key] = 0
        self.runs += 1
        self.head_runs += view == HEAD

    def _moved(self, view: str, head: tuple[int, int, int, int] | None) -> bool:
        """Whether the view's part of the picture moved since its last run."""
        return self._changed(view, head) > self.share * self._diff.size

    def _changed(self, view: str | None, head: tuple[int, int, int, int] | None) -> int:
        """How many cells changed since the last run (`view` None: anywhere; else in the view's part
        since its last run); all of them when there was none."""
        ref = self._refs.get(view)
        if ref is None:
            return self._gray.size
        changed = changed_cells(self._gray, ref, self.levels, self._diff)
        if view is not None and head is not None:
            y0, y1, x0, x1 = head
            inside = cv2.countNonZero(self._diff[y0:y1, x0:x1])
            changed = inside if view == HEAD else changed - inside
        return changed
