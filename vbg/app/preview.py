"""Frames from the output thread to the window: downscaled there, at most one in flight, never queued."""

from __future__ import annotations

import threading

import cv2
import numpy as np
from PySide6.QtCore import QObject, QRect, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

PREVIEW_WIDTH = 960


class FrameTap(QObject):
    """`on_output` runs on the engine's output thread. While the window has not shown the previous
    frame, new ones are skipped, so the preview drops frames instead of queueing them."""

    frame = Signal()

    def __init__(self):
        super().__init__()
        self._busy = threading.Event()
        self._lock = threading.Lock()
        self._out = self._src = None
        self.shown = 0
        self.skipped = 0

    def on_output(self, image: np.ndarray, source: np.ndarray | None) -> None:
        if self._busy.is_set():
            self.skipped += 1
            return
        h, w = image.shape[:2]
        size = (PREVIEW_WIDTH, max(2, round(h * PREVIEW_WIDTH / w))) if w > PREVIEW_WIDTH else (w, h)
        with self._lock:
            if self._out is None or self._out.shape[:2] != (size[1], size[0]):
                self._out = np.empty((size[1], size[0], 3), np.uint8)
                self._src = np.empty_like(self._out)
            # bilinear: INTER_AREA is slow at non-integer ratios, and this is only a preview
            cv2.resize(image, size, dst=self._out, interpolation=cv2.INTER_LINEAR)
            self._has_src = source is not None and source.shape[:2] == image.shape[:2]
            if self._has_src:
                cv2.resize(source, size, dst=self._src, interpolation=cv2.INTER_LINEAR)
        self._busy.set()
        self.frame.emit()

    def take(self) -> tuple[QImage | None, QImage | None]:
        """On the GUI thread: copies of the newest output and camera frames; frees the tap."""
        with self._lock:
            out = _qimage(self._out) if self._out is not None else None
            src = _qimage(self._src) if self._out is not None and self._has_src else None
        self.shown += 1
        self._busy.clear()
        return out, src


def _qimage(bgr: np.ndarray) -> QImage:
    h, w = bgr.shape[:2]
    return QImage(bgr.data, w, h, bgr.strides[0], QImage.Format.Format_BGR888).copy()


class PreviewWidget(QWidget):
    """Paints one or two frames side by side, scaled to fit, keeping their aspect."""

    def __init__(self):
        super().__init__()
        self.images: list[QImage] = []
        self.message = "starting…"
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def show_images(self, images: list[QImage]) -> None:
        self.images = [i for i in images if i is not None]
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
            scale = min(slot_w / img.width(), self.height() / img.height())
            w, h = int(img.width() * scale), int(img.height() * scale)
            x = int(i * slot_w + (slot_w - w) / 2)
            y = (self.height() - h) // 2
            p.drawImage(QRect(x, y, w, h), img)
