"""Frames out. Two small interfaces, and one registry:

- `Sink`: where the pipeline sends every frame it emits (vbg/outputs/sinks.py: the virtual camera, a
  recording). A new output is a class with these methods, listed in `Pipeline._open_sinks`.
- `CameraDevice`: a virtual camera backend, opened with (width, height, fps, device). `BACKENDS` names
  each one; the CLI's `--vcam-backend`, the window's choice and `vbg devices` are all read from it, so a
  new backend is one module here and one entry there.
- The cards sent when there is no composite (cards.py), and v4l2loopback's own ioctls (loopback.py).
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

log = logging.getLogger("vbg")


class Sink(Protocol):
    """Called from the pipeline's output thread, in order. `send` must not raise: a sink that fails
    says so in its own state and retries or gives up by itself. `close` is called once, at the end."""

    def send(self, image: np.ndarray) -> None: ...

    def close(self) -> None: ...


class Readers(Protocol):
    """How many apps read a virtual camera, kept current by the backend; `available` False where it
    cannot be known (then vbg never idles the camera)."""
    readers: int
    available: bool

    def close(self) -> None: ...


class CameraDevice(Protocol):
    """One opened virtual camera. Its constructor raises VbgError saying what to do when it cannot
    open; `send` raises VbgError once the device is gone (the sink then reopens it with backoff)."""
    device: str

    def send(self, image: np.ndarray) -> None: ...

    def watch_readers(self) -> Readers: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Backend:
    name: str                                 # --vcam-backend NAME, and the saved setting
    label: str                                # the window's words
    help: str                                 # the CLI's words
    camera: Callable[[], Callable[..., CameraDevice]]   # the class (imported only when chosen)
    report: Callable[[], list[str]] | None = None       # its lines in `vbg devices`


def _module(name: str):
    return importlib.import_module(f"vbg.outputs.{name}")


def _auto() -> Callable[..., CameraDevice]:
    if sys.platform.startswith("linux") and not _module("loopback").loopback_devices():
        if _module("pipewire").socket_path().exists():
            return _module("pipewire").PipeWireCamera
        return _neither_backend
    return _module("v4l2").LoopbackCamera


def _neither_backend(width, height, fps, device=None):
    from vbg.errors import VbgError

    raise VbgError("no virtual camera: --vcam-backend auto found neither a v4l2loopback device nor a running "
                   "PipeWire: sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=vbg, or start "
                   "PipeWire (systemctl --user start pipewire wireplumber)")


BACKENDS = {b.name: b for b in (
    Backend("v4l2loopback", "v4l2loopback", "every app (a kernel module; OBS's virtual camera on Windows and macOS)",
            lambda: _module("v4l2").LoopbackCamera, lambda: _module("v4l2").report()),
    Backend("pipewire", "PipeWire", "no kernel module; OBS, Firefox, Chromium, GNOME Snapshot",
            lambda: _module("pipewire").PipeWireCamera,
            lambda: _module("pipewire").status() if sys.platform.startswith("linux") else []),
    Backend("auto", "auto", "v4l2loopback where a loopback device exists, else PipeWire", _auto),
)}


def vcam_opener(backend: str) -> Callable[..., CameraDevice]:
    """The camera class for --vcam-backend NAME (resolved now: `auto` looks at this machine)."""
    if backend not in BACKENDS:
        from vbg.errors import VbgError

        raise VbgError(f"unknown virtual camera backend {backend!r}: use one of {', '.join(BACKENDS)}")
    return BACKENDS[backend].camera()


def close_quietly(*closers) -> None:
    """Closes each (None is skipped); closing must never take the app down, so failures are logged."""
    for closer in closers:
        if closer is not None:
            try:
                closer.close()
            except Exception as e:
                log.warning("closing %s: %s", type(closer).__name__, e)


class DeviceSize:
    """Frames at the size a device was opened with, into one buffer: a frame a pixel wider or taller
    (an odd size rounded down to even) is cropped, any other size (a camera that came back at another
    resolution) is resized. Frames already at the size pass through untouched."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self._buffer: np.ndarray | None = None

    def __call__(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        if (h, w) == (self.height, self.width):
            return image
        if self._buffer is None:
            self._buffer = np.empty((self.height, self.width, 3), np.uint8)
        if 0 <= w - self.width <= 1 and 0 <= h - self.height <= 1:
            np.copyto(self._buffer, image[: self.height, : self.width])
            return self._buffer
        return cv2.resize(image, (self.width, self.height), dst=self._buffer)
