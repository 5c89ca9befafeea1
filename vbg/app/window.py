"""The main window: live preview, background gallery, controls, status, shortcuts and `vbg ctl`."""

from __future__ import annotations

import copy
import logging
import os
import threading
from pathlib import Path

import cv2
from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QKeySequence, QPainter, QPen, QPixmap, QShortcut
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QFileDialog, QFormLayout, QFrame, QGroupBox, QHBoxLayout,
                               QLabel, QListWidget, QListWidgetItem, QMainWindow, QPushButton, QScrollArea,
                               QSlider, QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from vbg.app import gallery
from vbg.app.commands import BY_VERB, COMMANDS
from vbg.app.desktop import ICON
from vbg.app.preview import FrameTap, PreviewWidget
from vbg.app.status import status_text
from vbg.app.tray import Tray, TrayMenu
from vbg.backgrounds import DEFAULT_BLUR, BlurredRoom, parse_background
from vbg.chain import open_segmenter
from vbg.devices import video_devices
from vbg.errors import VbgError
from vbg.pipeline import Pipeline
from vbg.resources import config_dir
from vbg.segment import DEVICES
from vbg.settings import PAUSE_IMAGES, Settings, check_pause_image, edge_preset, parse_positive, parse_size

log = logging.getLogger("vbg")

SIZES = ("640x480", "1280x720", "1920x1080")
RATES = ("15", "30", "60")
GALLERY_KEYS = "1234567890"  # the first ten backgrounds
EDGES = (("auto", "Auto: fine over pictures and colours"), ("fine", "Fine everywhere"),
         ("standard", "Standard: less CPU"), ("off", "Off: the model's blocky mask"))
MESSAGE_S = 8


def settings_path() -> Path:
    return config_dir() / "settings.json"


class _Started(QObject):
    ready = Signal(object)
    failed = Signal(str)


class _Done(QObject):
    finished = Signal(str)


class MainWindow(QMainWindow):
    """`settings` is this run's (saved settings plus command-line overrides); `saved` is what is
    written back when the user changes something, so flags only last for one run."""

    def __init__(self, settings: Settings, saved: Settings | None = None, save_path: Path | None = None,
                 start_in_tray: bool = False):
        super().__init__()
        self.settings = settings
        self.saved = saved if saved is not None else copy.deepcopy(settings)
        self.save_path = save_path
        self.pipeline: Pipeline | None = None
        self._starting = False
        self._closing = False
        self._start_thread: threading.Thread | None = None
        self._built: Pipeline | None = None  # the newest pipeline a start thread made, shown or not
        self._segmenter = None
        self.tap = FrameTap()
        self.tap.frame.connect(self._show_frame)
        self._started = _Started()
        self._started.ready.connect(self._on_started)
        self._started.failed.connect(self._on_failed)
        self._rooms_done = _Done()
        self._rooms_done.finished.connect(self._rooms_fetched)
        self.choices: list[gallery.Choice] = []
        self._quitting = False
        self.refusal = ""  # why the last background was refused
        self.setWindowTitle("vbg — virtual background")
        self.setWindowIcon(QIcon(str(ICON)))
        self.setAcceptDrops(True)
        self._build()
        self._shortcuts()
        self._refresh_gallery()
        self.tray_menu = TrayMenu(self.handle_command, self.status_dict, lambda: self.choices,
                                  show_window=lambda: self.cmd_raise([]), quit_app=self.quit)
        self.tray = Tray(self.tray_menu, self.windowIcon(), on_activate=self._toggle_visible)
        self.start_in_tray = start_in_tray
        self._status_timer = QTimer(self, interval=1000, timeout=self._update_status)
        self._status_timer.start()
        self._cycle_timer = QTimer(self, timeout=lambda: self.step_background(1))
        self._apply_cycle(self.settings.window.auto_cycle_s)
        self.start_engine()

    # -- layout ------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.preview = PreviewWidget(self.tap, self.settings.window.view)
        self.view = QComboBox()
        self.view.addItem("Output", "output")
        self.view.addItem("Camera", "camera")
        self.view.addItem("Side by side", "side")
        self.view.setCurrentIndex(max(0, self.view.findData(self.settings.window.view)))
        self.view.currentIndexChanged.connect(self._view_changed)
        # the switch people look for first, always in sight
        self.vcam = QCheckBox("Virtual camera", checked=self.settings.output.vcam,
                              toolTip="what call apps see as a camera")
        self.vcam.toggled.connect(self._vcam_toggled)
        self.pause_button = QPushButton("Pause", checkable=True, toolTip="Space: calls see the privacy image")
        self.pause_button.toggled.connect(self.set_paused)
        snap = QPushButton("Snapshot…")
        snap.clicked.connect(self._snapshot_dialog)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("View"))
        bar.addWidget(self.view)
        bar.addSpacing(16)
        bar.addWidget(self.vcam)
        bar.addStretch(1)
        bar.addWidget(self.pause_button)
        bar.addWidget(snap)

        self.vcam_panel, self.vcam_text = _problem_panel(("Retry", self._retry_vcam))
        self.error_panel, self.error_label = _problem_panel(("Retry", self.start_engine),
                                                            ("Model file…", self._model_dialog))

        left = QVBoxLayout()
        left.addWidget(self.vcam_panel)
        left.addWidget(self.error_panel)
        left.addWidget(self.preview, 1)
        left.addLayout(bar)

        look = QVBoxLayout()
        look.addWidget(self._background_box(), 1)
        look.addWidget(self._effect_box())
        look_page = QWidget()
        look_page.setLayout(look)
        setup = QVBoxLayout()
        setup.addWidget(self._camera_box())
        setup.addWidget(self._engine_box())
        setup.addStretch(1)
        setup_page = QWidget()
        setup_page.setLayout(setup)
        scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        scroll.setWidget(setup_page)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tabs = QTabWidget()
        self.tabs.addTab(look_page, "Background")
        self.tabs.addTab(scroll, "Camera and output")
        self.tabs.setMinimumWidth(420)
        self.tabs.setMaximumWidth(520)

        root = QHBoxLayout()
        root.addLayout(left, 1)
        root.addWidget(self.tabs)
        central = QWidget()
        central.setLayout(root)
        self.setCentralWidget(central)
        # messages on the left, the state on the right: a message never hides the state, nor the reverse
        self.message = QLabel(objectName="message")
        self.message.setStyleSheet("#message { color: #1565c0; }")
        self._message_timer = QTimer(self, singleShot=True, timeout=self.message.clear)
        self.status = QLabel(objectName="status", toolTip="")
        self.statusBar().addPermanentWidget(self.message, 1)
        self.statusBar().addPermanentWidget(self.status)
        self.resize(1280, 720)

    def _background_box(self) -> QGroupBox:
        box = QGroupBox()
        self.gallery_list = QListWidget(viewMode=QListWidget.ViewMode.IconMode, iconSize=QSize(112, 63),
                                        movement=QListWidget.Movement.Static, resizeMode=QListWidget.ResizeMode.Adjust,
                                        spacing=2, wordWrap=True, uniformItemSizes=True)
        self.gallery_list.setGridSize(QSize(124, 63 + 2 * self.fontMetrics().height() + 8))
        self.gallery_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.gallery_list.setMinimumHeight(240)
        self.gallery_list.itemClicked.connect(lambda item: self.select_index(self.gallery_list.row(item)))
        add = QPushButton("Add…", toolTip="add your own pictures or videos (or drop them on the window)")
        add.clicked.connect(self._add_dialog)
        self.cycle = QSpinBox(suffix=" s", minimum=0, maximum=3600, specialValueText="off",
                              value=int(self.settings.window.auto_cycle_s))
        self.cycle.valueChanged.connect(lambda v: (self._apply_cycle(v), self._save(window__auto_cycle_s=float(v))))
        self.rooms_button = QPushButton("Get room photos", toolTip="download 8 office and nature photos "
                                        "(LINE, Apache-2.0) into your backgrounds folder")
        self.rooms_button.clicked.connect(self.get_rooms)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(self.rooms_button)
        row.addStretch(1)
        row.addWidget(QLabel("Auto-cycle"))
        row.addWidget(self.cycle)
        layout = QVBoxLayout(box)
        layout.addWidget(self.gallery_list)
        layout.addLayout(row)
        return box

    def _effect_box(self) -> QGroupBox:
        box = QGroupBox("Effect")
        form = QFormLayout(box)
        self.blur = QSlider(Qt.Orientation.Horizontal, minimum=1, maximum=100, value=self._blur_strength() or DEFAULT_BLUR)
        self.blur.sliderReleased.connect(self._blur_changed)
        self._blur_from_choice = False  # the slider follows a chosen background: nothing to apply
        self.blur.valueChanged.connect(
            lambda v: None if self.blur.isSliderDown() or self._blur_from_choice else self._blur_changed())
        self.smoothing = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100,
                                 value=round(self.settings.smooth.strength * 100))
        self.smoothing.valueChanged.connect(self._smoothing_changed)
        self.edge = QComboBox()
        for key, text in EDGES:
            self.edge.addItem(text, key)
        composite = self.settings.composite
        self.edge.setCurrentIndex(self.edge.findData(composite.edge if composite.refine else "off"))
        self.edge.setToolTip("Auto: the colour-guided edge and the person's own colour at it wherever the room is "
                             "replaced (no halo of the old room), the cheaper grey-guided edge under a blur")
        self.edge.currentIndexChanged.connect(self._edge_changed)
        self.mirror = QCheckBox("Mirror  (M)", checked=self.settings.composite.mirror)
        self.mirror.toggled.connect(self._mirror_changed)
        form.addRow("Blur strength", _with_value(self.blur, lambda v: f"{v}"))
        form.addRow("Smoothing", _with_value(self.smoothing, lambda v: f"{v}%" if v else "off"))
        form.addRow("Edge", self.edge)
        form.addRow(self.mirror)
        return box

    def _camera_box(self) -> QGroupBox:
        box = QGroupBox("Camera")
        form = QFormLayout(box)
        self.camera = QComboBox(editable=True)
        cameras, _ = video_devices()
        for line in cameras:
            self.camera.addItem(line, line.split()[0])
        current = self.settings.capture.input or self.settings.capture.camera
        if self.camera.findData(current) < 0:
            self.camera.addItem(current, current)
        self.camera.setCurrentIndex(self.camera.findData(current))
        self.size_box = QComboBox(editable=True)
        self.size_box.addItems(["camera default", *SIZES])
        size = self.settings.capture.size
        self.size_box.setCurrentText(f"{size[0]}x{size[1]}" if size else "camera default")
        self.fps_box = QComboBox(editable=True)
        self.fps_box.addItems(["camera default", *RATES])
        self.fps_box.setCurrentText(f"{self.settings.capture.fps:g}" if self.settings.capture.fps else "camera default")
        apply = QPushButton("Apply")
        apply.clicked.connect(self._camera_changed)
        form.addRow("Device", self.camera)
        form.addRow("Resolution", self.size_box)
        form.addRow("Frame rate", self.fps_box)
        form.addRow(apply)
        return box

    def _engine_box(self) -> QGroupBox:
        box = QGroupBox("Model and output")
        form = QFormLayout(box)
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setCurrentText(self.settings.segment.device)
        self.device.currentTextChanged.connect(self._device_changed)
        self.provider = QLabel("–", wordWrap=True)
        self.model_label = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        model_button = QPushButton("Model file…")
        model_button.clicked.connect(self._model_dialog)
        self._show_model()
        self.pause_image = QComboBox(toolTip="what calls see while vbg is paused; never the camera")
        self.pause_image.addItem("the background alone", "background")
        self.pause_image.addItem("black", "black")
        self.pause_image.addItem("a picture…", "file")
        current = self.settings.output.pause_image
        if current not in PAUSE_IMAGES:
            self.pause_image.insertItem(2, Path(current).name, current)
        self.pause_image.setCurrentIndex(max(0, self.pause_image.findData(current)))
        self.pause_image.activated.connect(self._pause_image_chosen)
        self.vcam_backend = QComboBox(toolTip="v4l2loopback: every app (a kernel module); PipeWire: no kernel "
                                      "module, for OBS, Firefox, Chromium and GNOME Snapshot")
        for label, value in (("v4l2loopback", "v4l2loopback"), ("PipeWire", "pipewire"), ("auto", "auto")):
            self.vcam_backend.addItem(label, value)
        self.vcam_backend.setCurrentIndex(max(0, self.vcam_backend.findData(self.settings.output.vcam_backend)))
        self.vcam_backend.currentIndexChanged.connect(self._vcam_backend_changed)
        self.vcam_state = QLabel("–", wordWrap=True)
        form.addRow("Device", self.device)
        form.addRow("In use", self.provider)
        form.addRow("Model", self.model_label)
        form.addRow("", model_button)
        form.addRow("While paused", self.pause_image)
        form.addRow("Virtual camera", self.vcam_backend)
        form.addRow("", self.vcam_state)
        return box

    def _shortcuts(self) -> None:
        keys = {key: (lambda verb=c.verb: self.handle_command(verb, [])) for c in COMMANDS for key in c.keys}
        for i, key in enumerate(GALLERY_KEYS):
            keys[key] = lambda i=i: self.select_index(i)
        self._keys = []
        for key, action in keys.items():
            shortcut = QShortcut(QKeySequence(key), self, activated=action)
            shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
            self._keys.append(shortcut)

    # -- engine ------------------------------------------------------------------------------------
    def start_engine(self) -> None:
        """Builds and starts the pipeline off the GUI thread (opening a camera can take a second)."""
        if self._starting:
            return
        self._starting = True
        old, self.pipeline = self.pipeline, None
        self.preview.message = "starting…"
        settings = copy.deepcopy(self.settings)

        def build():
            try:
                if old is not None:
                    old.stop()
                if self._segmenter is None or self._segmenter_key != (settings.segment.model, settings.segment.device):
                    self._segmenter = open_segmenter(settings)
                    self._segmenter_key = (settings.segment.model, settings.segment.device)
                if self._closing:
                    return
                pipeline = Pipeline(settings, on_output=self.tap.on_output, segmenter=self._segmenter,
                                    vcam_required=False, camera_required=False)
                self._built = pipeline.start()
                self._started.ready.emit(pipeline)
            except VbgError as e:
                self._started.failed.emit(str(e))
            except Exception as e:  # never let a failed start take the window down
                log.exception("engine failed to start")
                self._started.failed.emit(f"the engine failed to start: {e}")

        self._start_thread = threading.Thread(target=build, name="vbg-start", daemon=True)
        self._start_thread.start()

    def _on_started(self, pipeline: Pipeline) -> None:
        self._starting = False
        self.pipeline = pipeline
        try:  # what changed in the window while the engine started
            pipeline.update(self.settings)
        except VbgError as e:
            self.notify(str(e))
        self.error_panel.hide()
        if self.pause_button.isChecked():
            pipeline.pause()
        self._highlight_current()
        self._update_status()

    def _on_failed(self, message: str) -> None:
        self._starting = False
        self.error_label.setText(message)
        self.error_panel.show()
        self.status.setText("not running")
        self.preview.message = "not running: see the message above"
        self.preview.images = []
        self.preview.update()

    def _show_frame(self) -> None:
        self.preview.show_images(self.tap.take())

    def _view_changed(self) -> None:
        view = self.view.currentData()
        self.preview.set_view(view)
        self._save(window__view=view)

    # -- backgrounds -------------------------------------------------------------------------------
    def _refresh_gallery(self) -> None:
        self.choices = gallery.choices()
        self.gallery_list.clear()
        for i, choice in enumerate(self.choices):
            thumb = gallery.thumbnail(choice)
            label = f"{GALLERY_KEYS[i]}. {choice.label}" if i < len(GALLERY_KEYS) else choice.label
            item = QListWidgetItem(_icon(thumb), label if thumb is not None else f"{label} (broken)")
            if thumb is None:
                item.setToolTip(f"{choice.path}: cannot be read")
            else:
                item.setToolTip(choice.spec)
            self.gallery_list.addItem(item)
        self._highlight_current()

    def _current_index(self) -> int:
        spec = self.settings.composite.background
        return next((i for i, c in enumerate(self.choices) if c.spec == spec), -1)

    def _highlight_current(self) -> None:
        """Marks the current background; none when it is not in the gallery (a file picked elsewhere)."""
        index = self._current_index()
        if index < 0:
            self.gallery_list.clearSelection()
        self.gallery_list.setCurrentRow(index)

    def select_index(self, index: int) -> bool:
        if not 0 <= index < len(self.choices):
            return False
        return self.select_spec(self.choices[index].spec)

    def select_spec(self, spec: str) -> bool:
        """Applies a background; a bad one is reported and the current one stays."""
        try:
            if self.pipeline is not None:
                self.pipeline.set_background(spec)
            else:
                parse_background(spec).close()
        except VbgError as e:
            self.refusal = str(e)
            self.notify(str(e))
            self._highlight_current()
            return False
        self.settings.composite.background = spec
        self._save(composite__background=spec)
        strength = self._blur_strength()
        if strength is not None:
            self._blur_from_choice = True  # (not blockSignals: the value's label follows valueChanged)
            try:
                self.blur.setValue(strength)
            finally:
                self._blur_from_choice = False
        self._highlight_current()
        return True

    def select_name(self, name: str) -> bool:
        wanted = name.strip().lower()
        for i, c in enumerate(self.choices):
            if wanted in (c.label.lower(), c.spec.lower(), (c.path.stem.lower() if c.path else "")):
                return self.select_index(i)
        return self.select_spec(name)

    def step_background(self, step: int) -> None:
        if self.choices:
            current = self._current_index()
            for k in range(1, len(self.choices) + 1):  # skip broken entries
                if self.select_index((current + step * k) % len(self.choices)):
                    return

    def add_backgrounds(self, paths: list[Path]) -> None:
        added = None
        for path in paths:
            try:
                added = gallery.add_to_user_folder(path)
            except (VbgError, OSError) as e:
                self.notify(f"not added: {e}")
        self._refresh_gallery()
        if added is not None:
            self.select_spec(str(added))

    def get_rooms(self) -> None:
        """Downloads the room photos off the GUI thread; the gallery shows them when they are in."""
        self.rooms_button.setEnabled(False)
        self.notify("downloading room photos…", seconds=60)

        def fetch():
            try:
                added = gallery.download_rooms()
                self._rooms_done.finished.emit(f"added {len(added)} room photos to the gallery" if added
                                               else "the room photos are already in the gallery")
            except VbgError as e:
                self._rooms_done.finished.emit(str(e))

        threading.Thread(target=fetch, name="vbg-rooms", daemon=True).start()

    def _rooms_fetched(self, message: str) -> None:
        self.rooms_button.setEnabled(True)
        self._refresh_gallery()
        self.notify(message)

    def _add_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add backgrounds", str(Path.home()),
                                                "Images and videos (*.jpg *.jpeg *.png *.bmp *.webp *.mp4 *.mkv *.avi *.mov *.webm)")
        self.add_backgrounds([Path(f) for f in files])

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        self.add_backgrounds([Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()])

    def _apply_cycle(self, seconds: float) -> None:
        self._cycle_timer.stop()
        if seconds > 0:
            self._cycle_timer.start(int(seconds * 1000))

    # -- controls ----------------------------------------------------------------------------------
    def _blur_strength(self) -> int | None:
        """The blur strength of the current background, or None when it is not a blur."""
        spec = self.settings.composite.background
        if Path(spec).expanduser().exists():
            return None
        try:
            background = parse_background(spec, live=False)
        except VbgError:
            return None
        background.close()
        return int(background.strength) if isinstance(background, BlurredRoom) else None

    def _blur_changed(self) -> None:
        self.select_spec(BlurredRoom(self.blur.value()).name)

    def _apply(self) -> None:
        """The window's settings to the engine: the one path, so nothing changed during start-up is lost
        (`_on_started` applies them again once the engine is up)."""
        if self.pipeline is not None:
            self.pipeline.update(self.settings)

    def _smoothing_changed(self, value: int) -> None:
        self.settings.smooth.strength = value / 100
        self._apply()
        self._save(smooth__strength=value / 100)

    def _edge_changed(self) -> None:
        key = self.edge.currentData()
        refine = key != "off"
        preset = key if refine else "auto"
        self.settings.composite = edge_preset(self.settings.composite, preset)
        self.settings.composite.refine = refine
        self._apply()
        self.saved.composite = edge_preset(self.saved.composite, preset)  # the preset's numbers, as they load
        self._save(composite__refine=refine)

    def _mirror_changed(self, on: bool) -> None:
        self.settings.composite.mirror = on
        self._apply()
        self._save(composite__mirror=on)

    def set_paused(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        if self.pause_button.isChecked() != paused:
            self.pause_button.setChecked(paused)
        if self.pipeline is not None:
            self.pipeline.pause() if paused else self.pipeline.resume()

    def _camera_changed(self) -> None:
        target = self.camera.currentData() or self.camera.currentText().strip()
        cap = self.settings.capture
        if os.path.isfile(target):
            cap.input, cap.loop = target, True
        else:
            cap.input, cap.camera = None, target
        text = self.size_box.currentText()
        try:
            cap.size = None if text == "camera default" else parse_size(text)
            rate = self.fps_box.currentText()
            cap.fps = None if rate == "camera default" else parse_positive(rate, "fps")
        except VbgError as e:
            self.notify(str(e))
            return
        if not cap.input:
            self._save(capture__camera=cap.camera, capture__size=cap.size, capture__fps=cap.fps)
        self.start_engine()

    def _device_changed(self, device: str) -> None:
        self.settings.segment.device = device
        self._save(segment__device=device)
        self.start_engine()

    def _show_model(self) -> None:
        model = self.settings.segment.model
        self.model_label.setText(Path(model).name if model else "built-in (PP-HumanSeg v2)")
        self.model_label.setToolTip(model or "found via VBG_MODEL, the cache, or downloaded once")

    def _model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose the model file", str(Path.home()), "ONNX models (*.onnx)")
        if path:
            self.set_model(path)

    def set_model(self, path: str) -> None:
        """Uses this model file (checked when the engine starts; a bad one is reported there)."""
        self.settings.segment.model = path
        self._save(segment__model=path)
        self._show_model()
        self._segmenter = None
        self.start_engine()

    def _pause_image_chosen(self) -> None:
        value = self.pause_image.currentData()
        if value == "file":
            path, _ = QFileDialog.getOpenFileName(self, "Picture to show while paused", str(Path.home()),
                                                  "Images (*.jpg *.jpeg *.png *.bmp *.webp)")
            if not path:
                self.pause_image.setCurrentIndex(max(0, self.pause_image.findData(self.settings.output.pause_image)))
                return
            value = path
        self.set_pause_image(value)

    def set_pause_image(self, value: str) -> bool:
        try:
            value = check_pause_image(value)
        except VbgError as e:
            self.notify(str(e))
            return False
        if self.pause_image.findData(value) < 0:
            self.pause_image.insertItem(2, Path(value).name, value)
        self.pause_image.setCurrentIndex(self.pause_image.findData(value))
        self.settings.output.pause_image = value
        self._apply()
        self._save(output__pause_image=value)
        return True

    def _vcam_backend_changed(self) -> None:
        backend = self.vcam_backend.currentData()
        self.settings.output.vcam_backend = backend
        self._apply()
        self._save(output__vcam_backend=backend)

    def _vcam_toggled(self, on: bool) -> None:
        self.settings.output.vcam = on
        self._apply()
        self._save(output__vcam=on)

    def _retry_vcam(self) -> None:
        if self.pipeline is not None:
            self.vcam.setChecked(True)
            self.pipeline.vcam.retry()

    def _snapshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save snapshot", str(Path.home() / "vbg-snapshot.png"), "PNG (*.png)")
        if path:
            self.snapshot(path)

    def snapshot(self, path: str) -> bool:
        ok = self.pipeline is not None and self.pipeline.snapshot(path, timeout=0.5)
        self.notify(f"saved {path}" if ok else f"could not save {path}")
        return ok

    def _save(self, **changes) -> None:
        """Records a change the user made in the window: in this run and in the saved settings."""
        for key, value in changes.items():
            section, name = key.split("__")
            setattr(getattr(self.saved, section), name, value)
        if self.save_path is not None:
            try:
                self.saved.save(self.save_path)
            except OSError as e:
                self.notify(f"cannot save settings to {self.save_path}: {e}")

    def notify(self, text: str, seconds: float = MESSAGE_S) -> None:
        """A message for the user (saved a file, refused a background…) beside the status line."""
        log.info("%s", text)
        self.message.setText(text)
        self.message.setToolTip(text)
        self._message_timer.start(int(seconds * 1000))

    # -- status ------------------------------------------------------------------------------------
    def status_dict(self) -> dict:
        p = self.pipeline
        current = self._current_index()
        return {
            "ok": True,
            "backgrounds": [c.label for c in self.choices],
            "background": self.choices[current].label if current >= 0 else self.settings.composite.background,
            "background_spec": self.settings.composite.background,
            "fps": round(p.output_fps, 1) if p else 0.0,
            "provider": p.segmenter.provider if p else None,
            "camera": p.capture.state if p else "stopped",
            "source": self.settings.capture.input or self.settings.capture.camera,
            "virtual_camera": p.vcam.state() if p else "stopped",
            "paused": bool(p and p.paused),
        }

    def _update_status(self) -> None:
        p = self.pipeline
        if p is None:
            return
        p.status_line()   # updates output_fps
        line, details = status_text(p)
        self.status.setText(line)
        self.status.setToolTip(details)
        self.tray.set_tooltip(f"vbg — {line}")
        self.provider.setText(p.segmenter.provider_note)
        self.vcam_state.setText(p.vcam.state())
        if p.vcam.error and self.settings.output.vcam:
            self.vcam_text.setText(f"The virtual camera is not available, so call apps cannot see vbg yet.\n"
                                   f"{p.vcam.error}.\nThen choose Retry.")
            self.vcam_text.setToolTip(p.vcam.error)
            self.vcam_panel.show()
        else:
            self.vcam_panel.hide()

    # -- vbg ctl -----------------------------------------------------------------------------------
    def handle_command(self, command: str, args: list[str]) -> dict:
        """A command from the table in vbg/app/commands.py (keys, global hotkeys, `vbg ctl`): runs
        `cmd_<verb>`, which returns an error text or None; answers with the app's state."""
        handler = getattr(self, f"cmd_{command}", None)
        if command not in BY_VERB or handler is None:
            return {"ok": False, "error": f"unknown command {command!r}"}
        error = handler(args)
        return {"ok": False, "error": error} if error else self.status_dict()

    def cmd_next(self, args) -> None:
        self.step_background(1)

    def cmd_prev(self, args) -> None:
        self.step_background(-1)

    def cmd_select(self, args) -> str | None:
        names = ", ".join(c.label for c in self.choices)
        if not args or not " ".join(args).strip():
            return f"select needs a name ({names}), a file, or blur:N / color:#RRGGBB"
        name = " ".join(args)
        if self.select_name(name):
            return None
        if os.path.exists(name) or ":" in name:  # a file or spec that was refused: say why
            return self.refusal
        return f"no background named {name!r}: choose one of {names}; or a file, blur:N, color:#RRGGBB"

    def cmd_list(self, args) -> None:
        return None  # the answer carries the list (status_dict)

    def cmd_source(self, args) -> str | None:
        if not args:
            return "source needs a camera (index or /dev/videoN) or a video file"
        target = " ".join(args)
        if not (target.isdigit() or target.startswith("/dev/") or os.path.isfile(target)):
            return (f"no camera or video file at {target!r}: give a camera index (0), a device (/dev/video0) "
                    "or an existing video file; the source is unchanged")
        if self.camera.findData(target) < 0:
            self.camera.addItem(target, target)
        self.camera.setCurrentIndex(self.camera.findData(target))
        self._camera_changed()
        return None

    def cmd_blur(self, args) -> None:
        self.select_spec("blur")

    def cmd_off(self, args) -> None:
        self.select_spec("none")

    def cmd_mirror(self, args) -> None:
        self.mirror.toggle()

    def cmd_toggle(self, args) -> None:
        self.pause_button.toggle()

    def cmd_pause(self, args) -> None:
        self.set_paused(True)

    def cmd_resume(self, args) -> None:
        self.set_paused(False)

    def cmd_snapshot(self, args) -> str | None:
        if not args:
            return "snapshot needs a PATH"
        return None if self.snapshot(os.path.abspath(args[0])) else f"could not write {args[0]}"

    def cmd_screenshot(self, args) -> str | None:
        if not args or not self.screenshot(os.path.abspath(args[0])):
            return "screenshot needs a writable PATH"
        return None

    def cmd_status(self, args) -> None:
        return None

    def cmd_raise(self, args) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def _toggle_visible(self) -> None:
        if self.isVisible():
            self.hide()
        else:
            self.cmd_raise([])

    def quit(self) -> None:
        """Really closes (the tray's Quit, Ctrl-C, a soak's end): closing the window only hides it
        while a tray icon is there to bring it back."""
        self._quitting = True
        self.close()
        # a window that was never shown (started in the tray) does not end the event loop by closing
        QApplication.instance().quit()

    def screenshot(self, path: str) -> bool:
        return self.grab().save(path, "PNG")

    def changeEvent(self, event) -> None:
        if event.type() == QEvent.Type.WindowStateChange:
            self.preview.aim()  # minimised: no preview frames at all
        super().changeEvent(event)

    def closeEvent(self, event) -> None:
        if self.tray.visible and not self._quitting:
            event.ignore()
            self.hide()
            self.tray.tell_once("vbg is still running", "The virtual camera stays on. Quit from this icon's menu.")
            return
        self.tray.hide()
        self._closing = True
        self._status_timer.stop()
        self._cycle_timer.stop()
        if self._start_thread is not None:
            self._start_thread.join(timeout=10)
        for pipeline in {self.pipeline, self._built} - {None}:
            pipeline.stop()
        super().closeEvent(event)


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


def _problem_panel(*buttons) -> tuple[QFrame, QLabel]:
    """A coloured panel above the preview saying what is wrong, with buttons to fix it; hidden at first."""
    panel = QFrame(objectName="problem")
    panel.setStyleSheet("#problem { background: #5a2d0c; border-radius: 6px; } QLabel { color: #fff; }")
    text = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
    layout = QHBoxLayout(panel)
    layout.addWidget(text, 1)
    for label, action in buttons:
        button = QPushButton(label)
        button.clicked.connect(action)
        layout.addWidget(button)
    panel.hide()
    return panel, text


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
