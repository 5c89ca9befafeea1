"""Global hotkeys (vbg/app/commands.py) where the platform lets an app watch the keyboard."""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QObject, Signal

from vbg.app.commands import COMMANDS, hotkey_summary

KEYS = {c.hotkey: c.verb for c in COMMANDS if c.hotkey}
BIND_HINT = "bind `vbg ctl next`, `vbg ctl blur`, … in your desktop's keyboard settings instead"


class GlobalHotkeys(QObject):
    """pynput's listener thread emits `command`, which Qt delivers on the window's thread."""

    command = Signal(str)

    def __init__(self):
        super().__init__()
        self._listener = None
        self.state = self._start()

    def _start(self) -> str:
        if sys.platform.startswith("linux") and os.environ.get("WAYLAND_DISPLAY") and \
                os.environ.get("XDG_SESSION_TYPE") == "wayland":
            return f"global hotkeys: not on Wayland (it does not let apps watch the keyboard); {BIND_HINT}"
        if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
            return f"global hotkeys: no X display; {BIND_HINT}"
        try:
            from pynput import keyboard
        except ImportError:
            return f"global hotkeys: need pynput (pip install 'vbg[hotkeys]'); or {BIND_HINT}"
        try:
            self._listener = keyboard.GlobalHotKeys({k: (lambda c=c: self.command.emit(c)) for k, c in KEYS.items()})
            self._listener.start()
        except Exception as e:  # pynput backends fail in platform-specific ways
            return f"global hotkeys: unavailable ({e}); {BIND_HINT}"
        return f"global hotkeys: {hotkey_summary()}"

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
