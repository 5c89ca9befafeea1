"""`vbg` / `vbg gui`: one window per user; a second start brings the first one forward."""

from __future__ import annotations

import logging
import os
import signal
import sys

from vbg.errors import VbgError
from vbg.settings import Settings

log = logging.getLogger("vbg")


def run_gui(settings: Settings, saved: Settings, duration: float | None = None,
            status_every: float | None = None) -> int:
    """The window until it is closed, or for `duration` seconds (a soak), printing a status line with
    memory and the singleton reference counts every `status_every` seconds when given."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                                 or os.environ.get("QT_QPA_PLATFORM")):
        # Qt would abort the process with several lines about platform plugins
        raise VbgError("no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset): run it in "
                       "your desktop session, or use `vbg run` for the pipeline without a window")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from vbg.app.control import ControlServer, app_is_running, send
    from vbg.app.hotkeys import GlobalHotkeys
    from vbg.app.window import MainWindow, settings_path

    from vbg.app.qtcheck import check_qt_binding, singleton_refcounts

    app = QApplication.instance() or QApplication(["vbg"])
    app.setApplicationName("vbg")
    check_qt_binding(app)
    if app_is_running():
        send("raise")
        print("vbg: already running: brought its window forward", file=sys.stderr)
        return 0
    window = MainWindow(settings, saved, settings_path())
    server = ControlServer(window.handle_command)
    hotkeys = GlobalHotkeys()
    hotkeys.command.connect(lambda verb: window.handle_command(verb, []))
    log.info("%s", hotkeys.state)
    window.show()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: window.close())
    keepalive = QTimer(interval=200, timeout=lambda: None)  # lets Python run signal handlers during exec()
    keepalive.start()
    if duration:
        QTimer.singleShot(int(duration * 1000), window.close)
    if status_every:
        def report():
            p = window.pipeline
            line = p.status_line() if p is not None else "engine not running"
            refs = "/".join(map(str, singleton_refcounts()))
            print(f"vbg: {line} | refs True/None/False {refs}", file=sys.stderr, flush=True)
        status_timer = QTimer(interval=int(status_every * 1000), timeout=report)
        status_timer.start()
    try:
        return app.exec()
    finally:
        hotkeys.stop()
        server.close()
        if window.pipeline is not None:
            window.pipeline.stop()
