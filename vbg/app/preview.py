"""Frames from the output thread to the window.

The output thread scales each frame once, straight to the size the preview paints it at, and only the
frames the chosen view shows; while the preview is off screen (the window in the tray or minimised)
it does nothing at all. At most one frame is in flight, never queued.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
from PySide6.QtCore import QEvent, QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

VIEWS = {"output": ("output",), "camera": ("camera",), "side": ("camera", "output")}


class FrameTap(QObject):
    """`on_output` runs on the engine's output thread; `aim` and `take` on the GUI thread.

    While the window has not taken the previous frame, new ones are skipped, so the preview drops
    frames instead of queueing them. Frames are written into two sets of buffers in turn: the window
    paints one set while the next frame goes into the other, so nothing is copied on the way."""

    frame = Signal()

    def __init__(self):
        super().__init__()
        self._busy = threading.Event()
        self._aim: tuple[tuple[str, ...], tuple[int, int], float] | None = None
        self._buffers: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        self._turn = 0
        self._scaled = np.empty((0, 0, 3), np.uint8)
        self._ready: list[QImage] = []
        self.shown = 0
        self.skipped = 0

    def aim(self, views: tuple[str, ...], box: tuple[int, int] | None, pixel_ratio: float = 1.0) -> None:
        """What the preview shows from the next frame: `views` ("camera", "output") side by side, each
        fitted into `box` (width, height in device pixels); box None: nothing (off screen)."""
        self._aim = (views, box, pixel_ratio) if box else None

    def on_output(self, image: np.ndarray, source: np.ndarray | None) -> None:
        aim = self._aim
        if aim is None or self._busy.is_set():
            self.skipped += 1
            return
        views, (bw, bh), pixel_ratio = aim
        if source is None or source.shape != image.shape:
            views = ("output",)  # a card (paused, no camera) has no camera frame to show
        buffers = self._buffers[self._turn]
        ready = []
        for i, view in enumerate(views):
            frame = source if view == "camera" else image
            h, w = frame.shape[:2]
            scale = min(bw / w, bh / h, 1.0)  # a larger preview is scaled up when painted, at no cost here
            size = (max(2, round(w * scale)), max(2, round(h * scale)))
            if len(buffers) <= i:
                buffers.append(np.empty(0, np.uint8))
            if buffers[i].shape[:2] != (size[1], size[0]):
                buffers[i] = np.empty((size[1], size[0], 4), np.uint8)
            if self._scaled.shape[:2] != (size[1], size[0]):
                self._scaled = np.empty((size[1], size[0], 3), np.uint8)
            out = buffers[i]
            # bilinear: INTER_AREA costs 7x as much at these ratios, and this is only a preview
            cv2.resize(frame, size, dst=self._scaled, interpolation=cv2.INTER_LINEAR)
            # Qt paints its own pixel format as it is, but converts BGR888 on every paint, on extra
            # threads, for twice the CPU of this one small conversion here
            cv2.cvtColor(self._scaled, cv2.COLOR_BGR2BGRA, dst=out)
            qimage = QImage(out.data, size[0], size[1], out.strides[0], QImage.Format.Format_RGB32)
            qimage.setDevicePixelRatio(pixel_ratio)
            ready.append(qimage)
        self._ready = ready
        self._turn ^= 1
        self._busy.set()
        self.frame.emit()

    def take(self) -> list[QImage]:
        """The newest frames, to paint until the next `take` (their buffers are not written before
        then); frees the tap for the next frame."""
        ready = self._ready
        self.shown += 1
        self._busy.clear()
        return ready


class PreviewWidget(QWidget):
    """Paints one or two frames side by side, fitted and centred. It aims `tap` at its own size in
    device pixels and at the view, and turns it off while hidden or minimised."""

    def __init__(self, tap: FrameTap, view: str = "output"):
        super().__init__()
        self.tap = tap
        self.views = VIEWS.get(view, VIEWS["output"])
        self.images: list[QImage] = []
        self.message = "starting…"
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.aim()

    def set_view(self, view: str) -> None:
        self.views = VIEWS[view]
        self.aim()

    def aim(self) -> None:
        if not self.isVisible() or self.window().isMinimized():
            self.tap.aim(self.views, None)
            return
        ratio = self.devicePixelRatioF()
        box = (max(2, round(self.width() * ratio / len(self.views))), max(2, round(self.height() * ratio)))
        self.tap.aim(self.views, box, ratio)

    def event(self, event) -> bool:
        if event.type() in (QEvent.Type.Show, QEvent.Type.Hide, QEvent.Type.Resize):
            self.aim()
        return super().event(event)

    def show_images(self, images: list[QImage]) -> None:
        self.images = images
        self.message = ""
        self.update()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 24, 28))
        if not self.images:
            p.setPen(QColor(200, 200, 200))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
            return
        slot_w = self.width() / len(self.images)
        for i, img in enumerate(self.images):
            size = img.deviceIndependentSize()  # mostly the slot's size already: drawn 1:1
            scale = min(slot_w / size.width(), self.height() / size.height())
            w, h = size.width() * scale, size.height() * scale
            p.drawImage(QRectF(i * slot_w + (slot_w - w) / 2, (self.height() - h) / 2, w, h), img)
