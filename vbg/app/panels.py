"""The window's side panels, one per part of the engine. Each takes what the user does to the controller
(vbg/app/controller.py) and shows the controller's state in `show()`; none touches the engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QListWidget, QListWidgetItem, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget)

from vbg.app import gallery
from vbg.app.controller import CAMERA_DEFAULT, Controller
from vbg.backgrounds import DEFAULT_BLUR
from vbg.devices import video_devices
from vbg.matting.segment import DEVICES
from vbg.outputs import BACKENDS
from vbg.pipeline import PipelineStatus
from vbg.settings import PAUSE_IMAGES

SIZES = ("640x480", "1280x720", "1920x1080")
RATES = ("15", "30", "60")
GALLERY_KEYS = "1234567890"  # the first ten backgrounds
EDGES = (("auto", "Auto: fine over pictures and colours"), ("fine", "Fine everywhere"),
         ("standard", "Standard: less CPU"), ("off", "Off: the model's blocky mask"))


class Panel(QGroupBox):
    def __init__(self, title: str, controller: Controller):
        super().__init__(title)
        self.controller = controller
        self._showing = False

    def bound(self, action: Callable) -> Callable:
        """A widget's handler, idle while `show()` sets the widget from the controller."""
        return lambda *args: None if self._showing else action(*args)

    def show_state(self) -> None:
        self._showing = True
        try:
            self.show_settings()
        finally:
            self._showing = False

    def show_settings(self) -> None:
        raise NotImplementedError


class BackgroundPanel(Panel):
    """The gallery, adding pictures, the room photos and the auto-cycle."""

    def __init__(self, controller: Controller):
        super().__init__("", controller)
        self.gallery_list = QListWidget(viewMode=QListWidget.ViewMode.IconMode, iconSize=QSize(112, 63),
                                        movement=QListWidget.Movement.Static, resizeMode=QListWidget.ResizeMode.Adjust,
                                        spacing=2, wordWrap=True, uniformItemSizes=True)
        self.gallery_list.setGridSize(QSize(124, 63 + 2 * self.fontMetrics().height() + 8))
        self.gallery_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.gallery_list.setMinimumHeight(240)
        self.gallery_list.itemClicked.connect(lambda item: controller.select_index(self.gallery_list.row(item)))
        add = QPushButton("Add…", toolTip="add your own pictures or videos (or drop them on the window)")
        add.clicked.connect(self._add_dialog)
        self._cycle_timer = QTimer(self, timeout=lambda: controller.step_background(1))
        self.cycle = QSpinBox(suffix=" s", minimum=0, maximum=3600, specialValueText="off")
        self.cycle.valueChanged.connect(self._cycle_changed)
        self.cycle.setValue(int(controller.settings.window.auto_cycle_s))
        self.rooms_button = QPushButton("Get room photos", toolTip="download 8 office and nature photos "
                                        "(LINE, Apache-2.0) into your backgrounds folder")
        self.rooms_button.clicked.connect(self.get_rooms)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(self.rooms_button)
        row.addStretch(1)
        row.addWidget(QLabel("Auto-cycle"))
        row.addWidget(self.cycle)
        layout = QVBoxLayout(self)
        layout.addWidget(self.gallery_list)
        layout.addLayout(row)

    def show_gallery(self) -> None:
        self.gallery_list.clear()
        for i, choice in enumerate(self.controller.choices):
            thumb = gallery.thumbnail(choice)
            label = f"{GALLERY_KEYS[i]}. {choice.label}" if i < len(GALLERY_KEYS) else choice.label
            item = QListWidgetItem(_icon(thumb), label if thumb is not None else f"{label} (broken)")
            item.setToolTip(choice.spec if thumb is not None else f"{choice.path}: cannot be read")
            self.gallery_list.addItem(item)
        self.show_settings()

    def show_settings(self) -> None:
        """Marks the current background; none when it is not in the gallery (a file picked elsewhere)."""
        index = self.controller.current_index
        if index < 0:
            self.gallery_list.clearSelection()
        self.gallery_list.setCurrentRow(index)

    def _cycle_changed(self, seconds: int) -> None:
        self._cycle_timer.stop()
        if seconds > 0:
            self._cycle_timer.start(seconds * 1000)
        if seconds != self.controller.settings.window.auto_cycle_s:
            self.controller.set_window(auto_cycle_s=float(seconds))

    def stop(self) -> None:
        self._cycle_timer.stop()

    def get_rooms(self) -> None:
        self.rooms_button.setEnabled(False)
        self.controller.get_rooms(done=lambda: self.rooms_button.setEnabled(True))

    def _add_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add backgrounds", str(Path.home()),
                                                "Images and videos (*.jpg *.jpeg *.png *.bmp *.webp *.mp4 *.mkv *.avi "
                                                "*.mov *.webm)")
        self.controller.add_backgrounds([Path(f) for f in files])


class EffectPanel(Panel):
    """Blur strength, temporal smoothing, the edge refiner, mirror."""

    def __init__(self, controller: Controller):
        super().__init__("Effect", controller)
        self.blur = QSlider(Qt.Orientation.Horizontal, minimum=1, maximum=100, value=DEFAULT_BLUR)
        apply_blur = self.bound(controller.set_blur)
        self.blur.sliderReleased.connect(lambda: apply_blur(self.blur.value()))
        self.blur.valueChanged.connect(lambda v: None if self.blur.isSliderDown() else apply_blur(v))
        self.smoothing = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100)
        self.smoothing.valueChanged.connect(self.bound(lambda v: controller.set_smoothing(v / 100)))
        self.edge = QComboBox()
        for key, text in EDGES:
            self.edge.addItem(text, key)
        self.edge.setToolTip("Auto: the colour-guided edge and the person's own colour at it wherever the room is "
                             "replaced (no halo of the old room), the cheaper grey-guided edge under a blur")
        self.edge.currentIndexChanged.connect(self.bound(lambda _: controller.set_edge(self.edge.currentData())))
        self.mirror = QCheckBox("Mirror  (M)")
        self.mirror.toggled.connect(self.bound(controller.set_mirror))
        form = QFormLayout(self)
        form.addRow("Blur strength", _with_value(self.blur, lambda v: f"{v}"))
        form.addRow("Smoothing", _with_value(self.smoothing, lambda v: f"{v}%" if v else "off"))
        form.addRow("Edge", self.edge)
        form.addRow(self.mirror)

    def show_settings(self) -> None:
        c = self.controller
        if (strength := c.blur_strength) is not None:
            self.blur.setValue(strength)
        self.smoothing.setValue(round(c.settings.smooth.strength * 100))
        self.edge.setCurrentIndex(self.edge.findData(c.edge))
        self.mirror.setChecked(c.settings.composite.mirror)


class CameraPanel(Panel):
    """Which camera or file, at what size and rate (applied together: each restarts the camera)."""

    def __init__(self, controller: Controller):
        super().__init__("Camera", controller)
        self.camera = QComboBox(editable=True)
        cameras, _ = video_devices()
        for line in cameras:
            self.camera.addItem(line, line.split()[0])
        self.size_box = QComboBox(editable=True)
        self.size_box.addItems([CAMERA_DEFAULT, *SIZES])
        self.fps_box = QComboBox(editable=True)
        self.fps_box.addItems([CAMERA_DEFAULT, *RATES])
        apply = QPushButton("Apply")
        apply.clicked.connect(self._apply)
        form = QFormLayout(self)
        form.addRow("Device", self.camera)
        form.addRow("Resolution", self.size_box)
        form.addRow("Frame rate", self.fps_box)
        form.addRow(apply)

    def show_settings(self) -> None:
        cap = self.controller.settings.capture
        source = cap.input or cap.camera
        if self.camera.findData(source) < 0:
            self.camera.addItem(source, source)
        self.camera.setCurrentIndex(self.camera.findData(source))
        self.size_box.setCurrentText(f"{cap.size[0]}x{cap.size[1]}" if cap.size else CAMERA_DEFAULT)
        self.fps_box.setCurrentText(f"{cap.fps:g}" if cap.fps else CAMERA_DEFAULT)

    def _apply(self) -> None:
        target = self.camera.currentData() or self.camera.currentText()
        error = self.controller.set_source(target, self.size_box.currentText(), self.fps_box.currentText())
        if error:
            self.controller.notify(error)


class EnginePanel(Panel):
    """The model and where it runs; what calls see while paused; the virtual camera's kind and state."""

    def __init__(self, controller: Controller):
        super().__init__("Model and output", controller)
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.currentTextChanged.connect(self.bound(controller.set_device))
        self.provider = QLabel("–", wordWrap=True)
        self.model_label = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        model_button = QPushButton("Model file…")
        model_button.clicked.connect(self.model_dialog)
        self.pause_image = QComboBox(toolTip="what calls see while vbg is paused; never the camera")
        self.pause_image.addItem("the background alone", "background")
        self.pause_image.addItem("black", "black")
        self.pause_image.addItem("a picture…", "file")
        self.pause_image.activated.connect(self._pause_image_chosen)
        self.vcam_backend = QComboBox(toolTip="\n".join(f"{b.label}: {b.help}" for b in BACKENDS.values()))
        for backend in BACKENDS.values():
            self.vcam_backend.addItem(backend.label, backend.name)
        self.vcam_backend.currentIndexChanged.connect(
            self.bound(lambda _: controller.set_vcam_backend(self.vcam_backend.currentData())))
        self.vcam_state = QLabel("–", wordWrap=True)
        form = QFormLayout(self)
        form.addRow("Device", self.device)
        form.addRow("In use", self.provider)
        form.addRow("Model", self.model_label)
        form.addRow("", model_button)
        form.addRow("While paused", self.pause_image)
        form.addRow("Virtual camera", self.vcam_backend)
        form.addRow("", self.vcam_state)

    def show_settings(self) -> None:
        s = self.controller.settings
        self.device.setCurrentText(s.segment.device)
        words, tip = self.controller.model_words
        self.model_label.setText(words)
        self.model_label.setToolTip(tip)
        pause_image = s.output.pause_image
        if pause_image not in PAUSE_IMAGES and self.pause_image.findData(pause_image) < 0:
            self.pause_image.insertItem(2, Path(pause_image).name, pause_image)
        self.pause_image.setCurrentIndex(max(0, self.pause_image.findData(pause_image)))
        self.vcam_backend.setCurrentIndex(max(0, self.vcam_backend.findData(s.output.vcam_backend)))

    def show_status(self, status: PipelineStatus) -> None:
        self.provider.setText(status.provider_note)
        self.vcam_state.setText(status.vcam.words)

    def model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose the model file", str(Path.home()), "ONNX models (*.onnx)")
        if path:
            self.controller.set_model(path)

    def _pause_image_chosen(self) -> None:
        value = self.pause_image.currentData()
        if value == "file":
            value, _ = QFileDialog.getOpenFileName(self, "Picture to show while paused", str(Path.home()),
                                                   "Images (*.jpg *.jpeg *.png *.bmp *.webp)")
        if not value or not self.controller.set_pause_image(value):
            self.show_state()  # back to the current one


def _icon(thumb) -> QIcon:
    if thumb is None:
        pix = QPixmap(112, 63)
        pix.fill(QColor(60, 30, 30))
        p = QPainter(pix)
        p.setPen(QPen(QColor(230, 80, 80), 4))
        p.drawLine(36, 12, 76, 52)
        p.drawLine(76, 12, 36, 52)
        p.end()
        return QIcon(pix)
    rgb = cv2.cvtColor(thumb, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    return QIcon(QPixmap.fromImage(QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy()))


def _with_value(slider: QSlider, words) -> QWidget:
    """A slider with its value shown beside it."""
    value = QLabel(words(slider.value()), minimumWidth=36)
    slider.valueChanged.connect(lambda v: value.setText(words(v)))
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(slider, 1)
    layout.addWidget(value)
    return row
