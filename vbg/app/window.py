"""The main window: live preview, background gallery, controls, status, shortcuts and `vbg ctl`."""

from __future__ import annotations

import copy
import logging
import os
import threading
from pathlib import Path

import cv2
from PySide6.QtCore import QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QKeySequence, QPainter, QPen, QPixmap, QShortcut
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QFrame, QGroupBox, QHBoxLayout,
                               QLabel, QListWidget, QListWidgetItem, QMainWindow, QPushButton, QScrollArea,
                               QSlider, QSpinBox, QVBoxLayout, QWidget)

from vbg.app import gallery
from vbg.app.preview import FrameTap, PreviewWidget
from vbg.backgrounds import DEFAULT_BLUR, BlurredRoom
from vbg.devices import video_devices
from vbg.errors import VbgError
from vbg.app.commands import BY_VERB, COMMANDS
from vbg.backgrounds import parse_background
from vbg.chain import open_segmenter
from vbg.segment import DEVICES
from vbg.pipeline import Pipeline
from vbg.resources import config_dir
from vbg.settings import Settings

log = logging.getLogger("vbg")

SIZES = ("640x480", "1280x720", "1920x1080")
RATES = ("15", "30", "60")


def settings_path() -> Path:
    return config_dir() / "settings.json"


class _Started(QObject):
    ready = Signal(object)
    failed = Signal(str)


class MainWindow(QMainWindow):
    """`settings` is this run's (saved settings plus command-line overrides); `saved` is what is
    written back when the user changes something, so flags only last for one run."""

    def __init__(self, settings: Settings, saved: Settings | None = None, save_path: Path | None = None):
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
        self.choices: list[gallery.Choice] = []
        self.setWindowTitle("vbg — virtual background")
        self.setAcceptDrops(True)
        self._build()
        self._shortcuts()
        self._refresh_gallery()
        self._status_timer = QTimer(self, interval=1000, timeout=self._update_status)
        self._status_timer.start()
        self._cycle_timer = QTimer(self, timeout=lambda: self.step_background(1))
        self._apply_cycle(self.settings.window.auto_cycle_s)
        self.start_engine()

    # -- layout ------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.preview = PreviewWidget()
        self.view = QComboBox()
        self.view.addItem("Output", "output")
        self.view.addItem("Camera", "camera")
        self.view.addItem("Side by side", "side")
        self.view.setCurrentIndex(max(0, self.view.findData(self.settings.window.view)))
        self.view.currentIndexChanged.connect(lambda: self._save(window__view=self.view.currentData()))
        self.pause_button = QPushButton("Pause", checkable=True, toolTip="Space")
        self.pause_button.toggled.connect(self.set_paused)
        snap = QPushButton("Snapshot…")
        snap.clicked.connect(self._snapshot_dialog)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("View"))
        bar.addWidget(self.view)
        bar.addStretch(1)
        bar.addWidget(self.pause_button)
        bar.addWidget(snap)

        self.vcam_panel = QFrame(objectName="vcamPanel")
        self.vcam_panel.setStyleSheet("#vcamPanel { background: #5a2d0c; border-radius: 6px; } QLabel { color: #fff; }")
        self.vcam_text = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        retry = QPushButton("Retry")
        retry.clicked.connect(self._retry_vcam)
        panel = QHBoxLayout(self.vcam_panel)
        panel.addWidget(self.vcam_text, 1)
        panel.addWidget(retry)
        self.vcam_panel.hide()

        self.error_label = QLabel(wordWrap=True, objectName="errorLabel")
        self.error_label.setStyleSheet("color: #ff8a80;")
        self.error_label.hide()

        left = QVBoxLayout()
        left.addWidget(self.vcam_panel)
        left.addWidget(self.error_label)
        left.addWidget(self.preview, 1)
        left.addLayout(bar)

        side = QVBoxLayout()
        side.addWidget(self._background_box())
        side.addWidget(self._effect_box())
        side.addWidget(self._camera_box())
        side.addWidget(self._engine_box())
        side.addStretch(1)
        side_widget = QWidget()
        side_widget.setLayout(side)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(side_widget)
        scroll.setMinimumWidth(380)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        root = QHBoxLayout()
        root.addLayout(left, 1)
        root.addWidget(scroll)
        central = QWidget()
        central.setLayout(root)
        self.setCentralWidget(central)
        self.status = QLabel()
        self.statusBar().addPermanentWidget(self.status, 1)
        self.resize(1280, 720)

    def _background_box(self) -> QGroupBox:
        box = QGroupBox("Background")
        self.gallery_list = QListWidget(viewMode=QListWidget.ViewMode.IconMode, iconSize=QSize(112, 63),
                                        movement=QListWidget.Movement.Static, resizeMode=QListWidget.ResizeMode.Adjust,
                                        spacing=4, wordWrap=True)
        self.gallery_list.setMinimumHeight(250)
        self.gallery_list.itemClicked.connect(lambda item: self.select_index(self.gallery_list.row(item)))
        add = QPushButton("Add…")
        add.clicked.connect(self._add_dialog)
        self.cycle = QSpinBox(suffix=" s", minimum=0, maximum=3600, specialValueText="off",
                              value=int(self.settings.window.auto_cycle_s))
        self.cycle.valueChanged.connect(lambda v: (self._apply_cycle(v), self._save(window__auto_cycle_s=float(v))))
        row = QHBoxLayout()
        row.addWidget(add)
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
        self.blur.valueChanged.connect(lambda v: None if self.blur.isSliderDown() else self._blur_changed())
        self.smoothing = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100,
                                 value=round(self.settings.smooth.strength * 100))
        self.smoothing.valueChanged.connect(self._smoothing_changed)
        self.refine = QCheckBox("Edge refinement", checked=self.settings.composite.refine)
        self.refine.toggled.connect(self._refine_changed)
        self.mirror = QCheckBox("Mirror  (M)", checked=self.settings.composite.mirror)
        self.mirror.toggled.connect(self._mirror_changed)
        form.addRow("Blur strength", self.blur)
        form.addRow("Smoothing", self.smoothing)
        form.addRow(self.refine)
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
        box = QGroupBox("Inference and output")
        form = QFormLayout(box)
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setCurrentText(self.settings.segment.device)
        self.device.currentTextChanged.connect(self._device_changed)
        self.provider = QLabel("–")
        self.vcam = QCheckBox("Virtual camera", checked=self.settings.output.vcam)
        self.vcam.toggled.connect(self._vcam_toggled)
        self.vcam_state = QLabel("–", wordWrap=True)
        form.addRow("Device", self.device)
        form.addRow("In use", self.provider)
        form.addRow(self.vcam)
        form.addRow("State", self.vcam_state)
        return box

    def _shortcuts(self) -> None:
        keys = {key: (lambda verb=c.verb: self.handle_command(verb, [])) for c in COMMANDS for key in c.keys}
        for i in range(1, 10):
            keys[str(i)] = lambda i=i: self.select_index(i - 1)
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
            self.statusBar().showMessage(str(e), 8000)
        self.error_label.hide()
        if self.pause_button.isChecked():
            pipeline.pause()
        self._highlight_current()
        self._update_status()

    def _on_failed(self, message: str) -> None:
        self._starting = False
        self.error_label.setText(message)
        self.error_label.show()
        self.preview.message = "not running — fix the problem above and choose Apply"
        self.preview.images = []
        self.preview.update()

    def _show_frame(self) -> None:
        out, src = self.tap.take()
        mode = self.view.currentData()
        if mode == "camera" and src is not None:
            self.preview.show_images([src])
        elif mode == "side" and src is not None:
            self.preview.show_images([src, out])
        else:
            self.preview.show_images([out])

    # -- backgrounds -------------------------------------------------------------------------------
    def _refresh_gallery(self) -> None:
        self.choices = gallery.choices()
        self.gallery_list.clear()
        for i, choice in enumerate(self.choices):
            thumb = gallery.thumbnail(choice)
            label = f"{i + 1}. {choice.label}" if i < 9 else choice.label
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
        self.gallery_list.setCurrentRow(self._current_index())

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
            self.statusBar().showMessage(str(e), 8000)
            self._highlight_current()
            return False
        self.settings.composite.background = spec
        self._save(composite__background=spec)
        strength = self._blur_strength()
        if strength is not None:
            self.blur.blockSignals(True)
            self.blur.setValue(strength)
            self.blur.blockSignals(False)
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
                self.statusBar().showMessage(str(e), 8000)
        self._refresh_gallery()
        if added is not None:
            self.select_spec(str(added))

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

    def _refine_changed(self, on: bool) -> None:
        self.settings.composite.refine = on
        self._apply()
        self._save(composite__refine=on)

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
            from vbg.settings import parse_positive, parse_size
            cap.size = None if text == "camera default" else parse_size(text)
            rate = self.fps_box.currentText()
            cap.fps = None if rate == "camera default" else parse_positive(rate, "fps")
        except VbgError as e:
            self.statusBar().showMessage(str(e), 8000)
            return
        if not cap.input:
            self._save(capture__camera=cap.camera, capture__size=cap.size, capture__fps=cap.fps)
        self.start_engine()

    def _device_changed(self, device: str) -> None:
        self.settings.segment.device = device
        self._save(segment__device=device)
        self.start_engine()

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
        self.statusBar().showMessage(f"saved {path}" if ok else f"could not save {path}", 5000)
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
                self.statusBar().showMessage(f"cannot save settings to {self.save_path}: {e}", 8000)

    # -- status ------------------------------------------------------------------------------------
    def status_dict(self) -> dict:
        p = self.pipeline
        current = self._current_index()
        return {
            "ok": True,
            "background": self.choices[current].label if current >= 0 else self.settings.composite.background,
            "background_spec": self.settings.composite.background,
            "fps": round(p.output_fps, 1) if p else 0.0,
            "provider": p.segmenter.provider if p else None,
            "camera": p.capture.state if p else "stopped",
            "virtual_camera": p.vcam.state() if p else "stopped",
            "paused": bool(p and p.paused),
        }

    def _update_status(self) -> None:
        p = self.pipeline
        if p is None:
            return
        p.status_line()   # updates output_fps
        stages = p.times.medians_text(" · ")
        vcam = "vcam: not available" if p.vcam.error else p.vcam.state()
        self.status.setText(f"{p.output_fps:.1f} fps | {stages} ms | latency {p.latency.median('latency'):.0f} ms | "
                            f"{p.segmenter.provider.replace('ExecutionProvider', '')} | camera {p.capture.state} | {vcam}")
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
        if not args:
            return "select needs a NAME, a file or a background spec"
        if not self.select_name(" ".join(args)):
            return f"no background named {' '.join(args)!r}"
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

    def screenshot(self, path: str) -> bool:
        return self.grab().save(path, "PNG")

    def closeEvent(self, event) -> None:
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
