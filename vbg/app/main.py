"""`vbg` / `vbg gui`: one window per user; a second start brings the first one forward."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

from vbg.errors import VbgError
from vbg.settings import Settings

log = logging.getLogger("vbg")


def run_gui(settings: Settings, saved: Settings, duration: float | None = None,
            status_every: float | None = None, tray: bool = False, given: list[str] | None = None) -> int:
    """The window until it is quit, or for `duration` seconds (a soak), printing a status line with
    memory and the singleton reference counts every `status_every` seconds when given. `given`: the
    flags on the command line, handed to the window already running if there is one."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                                 or os.environ.get("QT_QPA_PLATFORM")):
        # Qt would abort the process with several lines about platform plugins
        raise VbgError("no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset): run it in "
                       "your desktop session, or use `vbg run` for the pipeline without a window")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from vbg.app.control import ControlServer, app_is_running, send
    from vbg.app.hotkeys import GlobalHotkeys
    from vbg.app.controller import settings_path
    from vbg.app.window import MainWindow

    from vbg.app.qtcheck import check_platform_libraries, check_qt_binding, singleton_refcounts

    check_platform_libraries()
    app = QApplication.instance() or QApplication(["vbg"])
    app.setApplicationName("vbg")
    app.setDesktopFileName("io.github.vbg")
    check_qt_binding(app)
    if app_is_running():
        return hand_over(settings, given or [], send)
    window = MainWindow(settings, saved, settings_path(), start_in_tray=tray)
    server = ControlServer(window.controller.handle)
    hotkeys = GlobalHotkeys()
    hotkeys.command.connect(lambda verb: window.controller.handle(verb, []))
    log.info("%s", hotkeys.state)
    if tray:
        wait_for_tray(window)
    else:
        window.show()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: window.quit())
    keepalive = QTimer(interval=200, timeout=lambda: None)  # lets Python run signal handlers during exec()
    keepalive.start()
    if duration:
        QTimer.singleShot(int(duration * 1000), window.quit)
    if status_every:
        def report():
            p = window.controller.pipeline
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
        window.controller.stop()


TRAY_WAIT_S = 15.0


def wait_for_tray(window) -> None:
    """`vbg gui --tray` (start at login): the panel holding the tray often starts after vbg, so wait
    for it a while before giving up and showing the window."""
    from PySide6.QtCore import QTimer

    if window.tray.attach():
        log.info("running in the tray: click its icon for the window")
        return
    deadline = time.monotonic() + TRAY_WAIT_S

    def check():
        if window.tray.attach():
            timer.stop()
            log.info("running in the tray: click its icon for the window")
        elif time.monotonic() > deadline:
            timer.stop()
            log.info("no tray on this desktop after %g s: showing the window", TRAY_WAIT_S)
            window.show()

    timer = QTimer(window, interval=500, timeout=check)
    timer.start()


# what a second `vbg gui` can hand to the window already running, and the command that does it
HANDED_OVER = {"background": "select", "input": "source", "camera": "source"}


def hand_over(settings: Settings, given: list[str], send) -> int:
    """A second start: brings the running window forward and applies the background and source given
    on this command line there; says which other options were not applied (exit 1 if any)."""
    from vbg.cli import FLAGS

    applied, refused = [], []
    for flag in given:
        verb = HANDED_OVER.get(flag)
        if verb is None:
            continue
        section, name, _ = FLAGS[flag]
        value = getattr(getattr(settings, section), name)
        if os.path.exists(value):
            value = os.path.abspath(value)
        reply = send(verb, [value])
        if reply.get("ok"):
            applied.append(f"--{flag}")
        else:
            refused.append(f"--{flag} ({reply.get('error')})")
    send("raise")
    ignored = [f"--{f.replace('_', '-')}" for f in given if f not in HANDED_OVER and f != "loop"]
    words = "vbg: already running: brought its window forward"
    if applied:
        words += f"; applied {', '.join(applied)} there"
    if refused:
        words += f"; refused {', '.join(refused)}"
    if ignored:
        words += f"; not applied (they need a new start: quit vbg first): {', '.join(ignored)}"
    print(words, file=sys.stderr)
    return 1 if refused or ignored else 0
