"""Native libraries' complaints on stderr, turned into vbg's own occasional line.

libjpeg (inside OpenCV's camera backend) prints "Corrupt JPEG data: …" for every damaged MJPG frame a
webcam sends, tens of lines a second; pyvirtualcam prints "error writing frame" for every frame a
vanished device refuses. Neither can be switched off, so the live commands route file descriptor 2
through a pipe: known complaints are counted and said once a minute, everything else passes through
unchanged. Python's own stderr (logging, tracebacks, faulthandler) keeps the original descriptor, so a
crash report never depends on the relay thread.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time

KNOWN = (
    ("Corrupt JPEG data", "the camera sends damaged MJPG frames, dropped before they are shown"),
    ("Premature end of JPEG file", "the camera sends damaged MJPG frames, dropped before they are shown"),
    ("error writing frame", "the virtual camera refuses frames"),
)


class NativeStderrFilter:
    def __init__(self, every_s: float = 60.0):
        self.every_s = every_s
        self.counts: dict[str, int] = {}
        self._said_at: dict[str, float] = {}
        self._said_count: dict[str, int] = {}
        self._original = -1
        self._read = -1
        self._thread: threading.Thread | None = None

    def install(self) -> NativeStderrFilter:
        sys.stderr.flush()
        self._original = os.dup(2)
        self._read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        sys.stderr = open(self._original, "w", buffering=1, closefd=False, errors="backslashreplace")
        faulthandler.enable(sys.stderr)
        self._thread = threading.Thread(target=self._relay, name="vbg-stderr", daemon=True)
        self._thread.start()
        return self

    def _relay(self) -> None:
        with open(self._read, "rb", closefd=True) as pipe:
            for raw in pipe:
                self.line(raw.decode(errors="replace").rstrip("\n"))

    def line(self, text: str) -> None:
        for pattern, meaning in KNOWN:
            if pattern in text:
                n = self.counts[meaning] = self.counts.get(meaning, 0) + 1
                now = time.monotonic()
                if now - self._said_at.get(meaning, -1e9) >= self.every_s:
                    self._said_at[meaning] = now
                    self._said_count[meaning] = n
                    self._write(f"vbg: warning: {meaning} ({n} so far; the decoder's messages are hidden)")
                return
        self._write(text)

    def _write(self, text: str) -> None:
        os.write(self._original, (text + "\n").encode())

    def uninstall(self) -> None:
        """Puts descriptor 2 back and relays what is still in the pipe."""
        if self._original < 0:
            return
        os.dup2(self._original, 2)  # closes our end of the pipe: the relay reads to the end and stops
        if self._thread is not None:
            self._thread.join(timeout=2)
        for meaning, n in self.counts.items():
            if n > self._said_count.get(meaning, 0):
                self._write(f"vbg: warning: {meaning} ({n} in all)")
        sys.stderr = sys.__stderr__
        faulthandler.enable(sys.stderr)
        self._original = -1  # left open: a logging handler may still hold a stream on it
