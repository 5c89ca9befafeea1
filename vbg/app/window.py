"""The main window: the live preview, the panels (vbg/app/panels.py), the status line and the keys. It
shows what the controller (vbg/app/controller.py) does and hands it what the user does; it never drives
the engine itself."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QFileDialog, QFrame, QHBoxLayout, QLabel,
                               QMainWindow, QPushButton, QScrollArea, QTabWidget, QVBoxLayout, QWidget)

from vbg.app.commands import COMMANDS
from vbg.app.controller import Controller
from vbg.app.desktop import ICON
from vbg.app.panels import GALLERY_KEYS, BackgroundPanel, CameraPanel, EffectPanel, EnginePanel
from vbg.app.preview import FrameTap, PreviewWidget
from vbg.app.status import status_text
from vbg.app.tray import Tray, TrayMenu
from vbg.settings import Settings

log = logging.getLogger("vbg")


class _Posted(QObject):
    """Runs a function on the window's thread, whichever thread posts it."""
    run = Signal(object)


class MainWindow(QMainWindow):
    """`settings`, `saved`, `save_path` and `engine` (the engine's factories, for tests) go to the
    controller, which the window, its tray and `vbg ctl` share."""

    def __init__(self, settings: Settings, saved: Settings | None = None, save_path: Path | None = None,
                 start_in_tray: bool = False, **engine):
        super().__init__()
        self.tap = FrameTap()
        self.tap.frame.connect(lambda: self.preview.show_images(self.tap.take()))
        self._posted = _Posted()
        self._posted.run.connect(lambda fn: fn())
        self.controller = Controller(settings, saved, save_path, view=self, post=self._posted.run.emit,
                                     on_output=self.tap.on_output, **engine)
        self.controller.extra_commands = {"screenshot": self.cmd_screenshot, "raise": self.cmd_raise}
        self._quitting = False
        self.setWindowTitle("vbg — virtual background")
        self.setWindowIcon(QIcon(str(ICON)))
        self.setAcceptDrops(True)
        self._build()
        self._shortcuts()
        self.changed("gallery")
        self.changed("settings")
        self.tray_menu = TrayMenu(self.controller.handle, self.controller.status, lambda: self.controller.choices,
                                  show_window=lambda: self.cmd_raise([]), quit_app=self.quit)
        self.tray = Tray(self.tray_menu, self.windowIcon(), on_activate=self._toggle_visible)
        self.start_in_tray = start_in_tray
        self._status_timer = QTimer(self, interval=1000, timeout=self._update_status)
        self._status_timer.start()
        self.controller.start_engine()

    # -- layout ------------------------------------------------------------------------------------
    def _build(self) -> None:
        c = self.controller
        self.preview = PreviewWidget(self.tap, c.settings.window.view)
        self.view = QComboBox()
        for label, value in (("Output", "output"), ("Camera", "camera"), ("Side by side", "side")):
            self.view.addItem(label, value)
        self.view.setCurrentIndex(max(0, self.view.findData(c.settings.window.view)))
        self.view.currentIndexChanged.connect(self._view_changed)
        # the switch people look for first, always in sight
        self.vcam = QCheckBox("Virtual camera", toolTip="what call apps see as a camera")
        self.vcam.toggled.connect(lambda on: None if on == c.settings.output.vcam else c.set_vcam(on))
        self.pause_button = QPushButton("Pause", checkable=True, toolTip="Space: calls see the privacy image")
        self.pause_button.toggled.connect(lambda on: None if on == c.paused else c.set_paused(on))
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

        self.background = BackgroundPanel(c)
        self.effect = EffectPanel(c)
        self.camera = CameraPanel(c)
        self.engine = EnginePanel(c)
        self.panels = (self.background, self.effect, self.camera, self.engine)
        self.vcam_panel, self.vcam_text = _problem_panel(("Retry", c.retry_vcam))
        self.error_panel, self.error_label = _problem_panel(("Retry", c.start_engine),
                                                            ("Model file…", self.engine.model_dialog))
        left = QVBoxLayout()
        left.addWidget(self.vcam_panel)
        left.addWidget(self.error_panel)
        left.addWidget(self.preview, 1)
        left.addLayout(bar)

        self.tabs = QTabWidget()
        self.tabs.addTab(_column(self.background, self.effect, stretch_first=True), "Background")
        scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        scroll.setWidget(_column(self.camera, self.engine))
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
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
        self.message_label = QLabel(objectName="message")
        self.message_label.setStyleSheet("#message { color: #1565c0; }")
        self._message_timer = QTimer(self, singleShot=True, timeout=self.message_label.clear)
        self.status = QLabel(objectName="status", toolTip="")
        self.statusBar().addPermanentWidget(self.message_label, 1)
        self.statusBar().addPermanentWidget(self.status)
        self.resize(1280, 720)

    def _shortcuts(self) -> None:
        keys = {key: (lambda verb=c.verb: self.controller.handle(verb, [])) for c in COMMANDS for key in c.keys}
        for i, key in enumerate(GALLERY_KEYS):
            keys[key] = lambda i=i: self.controller.select_index(i)
        self._keys = []
        for key, action in keys.items():
            shortcut = QShortcut(QKeySequence(key), self, activated=action)
            shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
            self._keys.append(shortcut)

    # -- what the controller did, shown (vbg.app.controller.View) ----------------------------------
    def changed(self, what: str) -> None:
        if what == "gallery":
            self.background.show_gallery()
        elif what == "settings":
            for panel in self.panels:
                panel.show_state()
            c = self.controller
            self.vcam.setChecked(c.settings.output.vcam)
            self.pause_button.setChecked(c.paused)
            self.pause_button.setText("Resume" if c.paused else "Pause")
        elif what == "engine":
            self._show_engine()

    def message(self, text: str, seconds: float) -> None:
        self.message_label.setText(text)
        self.message_label.setToolTip(text)
        self._message_timer.start(int(seconds * 1000))

    def _show_engine(self) -> None:
        c = self.controller
        if c.error:
            self.error_label.setText(c.error)
            self.error_panel.show()
            self.status.setText("not running")
            self.preview.message = "not running: see the message above"
            self.preview.images = []
            self.preview.update()
        elif c.pipeline is None:
            self.preview.message = "starting…"
        else:
            self.error_panel.hide()
            self._update_status()

    def _update_status(self) -> None:
        p = self.controller.pipeline
        if p is None:
            return
        s = p.status()
        line, details = status_text(s)
        self.status.setText(line)
        self.status.setToolTip(details)
        self.tray.set_tooltip(f"vbg — {line}")
        self.engine.show_status(s)
        if s.vcam.error and s.vcam.enabled:
            self.vcam_text.setText(f"The virtual camera is not available, so call apps cannot see vbg yet.\n"
                                   f"{s.vcam.error}.\nThen choose Retry.")
            self.vcam_text.setToolTip(s.vcam.error)
            self.vcam_panel.show()
        else:
            self.vcam_panel.hide()

    # -- what the user did, handed over ------------------------------------------------------------
    def _view_changed(self) -> None:
        view = self.view.currentData()
        self.preview.set_view(view)
        self.controller.set_window(view=view)

    def _snapshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save snapshot", str(Path.home() / "vbg-snapshot.png"), "PNG (*.png)")
        if path:
            self.controller.snapshot(path)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        self.controller.add_backgrounds([Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()])

    # -- the window's own commands -----------------------------------------------------------------
    def cmd_screenshot(self, args) -> str | None:
        if not args or not self.grab().save(os.path.abspath(args[0]), "PNG"):
            return "screenshot needs a writable PATH"
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
        self._status_timer.stop()
        self.background.stop()
        self.controller.stop()
        super().closeEvent(event)


def _column(*widgets: QWidget, stretch_first: bool = False) -> QWidget:
    layout = QVBoxLayout()
    for i, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if stretch_first and i == 0 else 0)
    if not stretch_first:
        layout.addStretch(1)
    page = QWidget()
    page.setLayout(layout)
    return page


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
