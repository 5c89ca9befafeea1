"""The matting chain: segment -> smooth -> refine -> composite, one frame at a time.

The same object serves the live threads (`segment` on one thread, `compose` on the next), `vbg render`,
`vbg eval` and `vbg bench` (`process`, both halves on one thread), so every figure they report comes
from the chain users run. Settings change between frames through `update`.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from vbg.backgrounds import Background, BlurredRoom, Passthrough, parse_background
from vbg.frames import Frame
from vbg.matting.composite import Compositor
from vbg.matting.focus import FULL, HEAD, HeadFocus
from vbg.matting.gate import InferenceGate, grid_gray
from vbg.matting.hold import EdgeHold
from vbg.matting.refine import EdgeRefiner
from vbg.matting.segment import Segmenter
from vbg.matting.smooth import MaskSmoother
from vbg.model import resolve_model
from vbg.models import choose_model
from vbg.settings import Settings, resolve_edge
from vbg.timing import StageTimes


def configure_opencv() -> None:
    """Each stage has a thread of its own; OpenCV's pool on top of that only adds contention on small
    machines. Process-wide, and set by every chain, so live and offline run OpenCV alike."""
    cv2.setNumThreads(max(1, min(4, (os.cpu_count() or 2) - 2)))


def open_segmenter(settings: Settings) -> Segmenter:
    """The model `settings` name (resolved: --model, $VBG_MODEL, the cache, a download) on its device."""
    model, path = choose_model(settings.segment.model)
    path = resolve_model(model.spec, path)
    return Segmenter(path, model, settings.segment.device, settings.segment.threads)


class MatteChain:
    def __init__(self, settings: Settings, segmenter: Segmenter, background: Background | None = None,
                 smoother=None, times: StageTimes | None = None):
        configure_opencv()
        self.segmenter = segmenter
        self.times = times or StageTimes()
        self.smoother = smoother or MaskSmoother(settings.smooth.strength)
        self.edge_hold = EdgeHold()
        self.refiner = EdgeRefiner(settings.refine, self.edge_hold)
        self.compositor = Compositor(self.refiner, background or parse_background("none"),
                                     compositor=settings.composite.compositor)
        self.gate = InferenceGate()  # whether the model runs on a frame, and on which view (set by update)
        self.focus = HeadFocus()
        self._full: np.ndarray | None = None   # the model's last view of the whole frame
        self._prob: np.ndarray | None = None   # with the head view laid over it: what is smoothed
        self.update(settings)
        self._offline = Frame()

    def update(self, settings: Settings) -> None:
        """Applies changed settings from the next frame on (any thread; each field is one assignment)."""
        self._settings = settings
        max_skip = 4 if settings.segment.adaptive == "auto" else 0  # off: the model runs on every frame
        if self.gate.max_skip != max_skip:
            self.gate = InferenceGate(max_skip=max_skip)
        self.smoother.strength = settings.smooth.strength
        self.focus.enabled = settings.segment.focus == "head"
        self.compositor.mirror = settings.composite.mirror
        self.compositor.compositor = settings.composite.compositor
        self._set_edge(self.compositor.upcoming_background)

    def _set_edge(self, background: Background) -> None:
        """The edge for this background ('auto': the fine edge where the room is replaced)."""
        settings = self._settings
        room_replaced = not isinstance(background, BlurredRoom)
        refine = settings.refine
        self.refiner.settings = resolve_edge(refine, room_replaced)
        self.edge_hold.strength = refine.edge_hold if settings.smooth.strength > 0 else 0.0  # smoothing 0 = all off
        self.edge_hold.motion_levels = refine.edge_motion_levels

    def set_background(self, background: Background) -> None:
        self.compositor.set_background(background)
        self._set_edge(background)

    @property
    def background(self) -> Background:
        return self.compositor.background

    def reset(self) -> None:
        """Forget the past (a new clip, an unrelated image)."""
        self.smoother.reset()
        self.edge_hold.reset()
        self._full = None
        self.gate.reset()

    # -- the two halves ----------------------------------------------------------------------------
    def segment(self, frame: Frame) -> None:
        """Model-grid image and smoothed mask for `frame`, into its own buffers ('small', 'mask').

        The model looks at the whole frame or, with `focus` on, at a crop of the head (vbg/matting/focus.py),
        one view a run: the gate picks whether it runs (adaptive off: always) and the view whose part
        of the picture moved. The first frame gets both."""
        image = frame.image
        rows, cols = self.segmenter.fit(*image.shape[:2])
        small = frame.buffer("small", (rows, cols, 3), np.uint8)
        small_gray = frame.buffer("small_gray", (rows, cols), np.uint8)
        mask = frame.buffer("mask", (rows, cols), np.float32)
        gate = self.gate  # one gate for the whole frame, whatever `update` does meanwhile
        first = self._full is None or self._full.shape != (rows, cols)
        if first:
            self.focus.reset()
            gate.reset()
        self.focus.frame((rows, cols), image.shape[:2], self.segmenter.spec.input_shape[2:])
        with self.times.measure("preprocess"):
            self.segmenter.preprocess(image, small)
            grid_gray(small, small_gray)
            view = gate.choose(small_gray, None if first else self.focus.crop(self._prob, moved=False))
            if gate.cut or gate.fast:
                self.focus.reset()  # the head view is of the picture before the cut, or of where the head was
        if view == FULL:
            with self.times.measure("inference"):
                prob = self.segmenter.infer()
            if first:
                self._full = np.empty_like(prob)
                self._prob = np.empty_like(prob)
            np.copyto(self._full, prob)  # ours: the session may be shared (vbg eval's variants)
            if first:
                self.focus.fuse(self._full, self._prob)  # where the head is, for the head view below
                view = HEAD
        if view == HEAD:
            with self.times.measure("inference"):
                head = self.focus.crop(self._prob)  # where the head is now
                if head is not None:
                    self.focus.look(image, head, self.segmenter)
                    if first:
                        gate.record(HEAD)
        if view is not None:
            self.focus.fuse(self._full, self._prob)
        with self.times.measure("smoothing"):
            self.smoother(self._prob, small_gray, mask)

    def compose(self, frame: Frame, need_alpha: bool = False) -> np.ndarray:
        """The output image for a segmented frame (a chain buffer, valid until the call after next)."""
        with self.times.measure("composite"):
            buffers = frame.buffers
            return self.compositor.compose(frame.image, buffers["small"], buffers["mask"], need_alpha=need_alpha,
                                           small_gray=buffers["small_gray"])

    def stage_masks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The last segmented frame's grid masks, stage by stage: the model's full view, with the head
        view fused in, and smoothed (for `vbg eval --clip`, which finds the stage that adds room)."""
        return self._full, self._prob, self._offline.buffers["mask"]

    @property
    def foreground(self) -> np.ndarray:
        """The colour pasted where the person is, for the last composed frame."""
        return self.compositor.foreground

    @property
    def alpha(self) -> np.ndarray:
        """The full-size 8-bit alpha of the last composed frame (when it was computed)."""
        return self.refiner.alpha

    # -- offline -----------------------------------------------------------------------------------
    def process(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Both halves on one frame: (alpha, composite or None when the background is passthrough)."""
        frame = self._offline
        frame.image = image
        self.compositor.one_path = True
        self.segment(frame)
        out = self.compose(frame, need_alpha=True)
        return self.alpha, None if isinstance(self.background, Passthrough) else out
