"""The v4l2loopback backend: pyvirtualcam writing to a loopback device (or, elsewhere, OBS's virtual
camera), and the apps reading it counted from the kernel's side."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
import sys
import threading
import time
from pathlib import Path

import numpy as np

from vbg.errors import VbgError, brief
from vbg.outputs import DeviceSize, loopback

log = logging.getLogger("vbg")


def loopback_fix() -> str:
    """What to do when there is no virtual camera device, for this OS."""
    if sys.platform.startswith("linux"):
        return ("install v4l2loopback and run: sudo modprobe v4l2loopback devices=1 exclusive_caps=1 "
                "card_label=vbg (or, for apps that take PipeWire cameras, --vcam-backend pipewire)")
    if sys.platform == "darwin":
        return "install OBS Studio and start its Virtual Camera once, so its camera extension is installed"
    return "install OBS Studio (28 or newer): its virtual camera is the device vbg writes to"


def report() -> list[str]:
    """Its lines in `vbg devices`: the loopback devices here and their state, or how to get one."""
    if not sys.platform.startswith("linux"):
        return [f"(found when vbg starts) — {loopback_fix()}"]
    from vbg.devices import video_devices

    _, devices = video_devices()
    if not devices:
        return [f"none found — {loopback_fix()}"]
    return [f"driver: {loopback.version_text(loopback.driver_version())}", *devices]


def no_device_fix() -> str:
    """What to do when pyvirtualcam found no device: the loopback devices' state if there are any."""
    devices = loopback.loopback_devices()
    if devices:
        return "the v4l2loopback devices here: " + "; ".join(d.describe() for d in devices)
    return loopback_fix()


class LoopbackCamera:
    """pyvirtualcam in BGR (the conversion to the device's format happens in its C++ code).

    On Linux it also keeps the v4l2loopback device reusable (see vbg/outputs/loopback.py) and notices when the
    device goes away, which pyvirtualcam only reports by printing per frame."""

    CHECK_EVERY_S = 1.0

    def __init__(self, width: int, height: int, fps: float, device: str | None = None):
        import pyvirtualcam

        self.width = width - (width % 2)  # browsers reject odd widths
        self.height = height
        reason = loopback.prepare(device)
        if reason:
            raise VbgError(f"no virtual camera: {reason}; or run with --no-vcam")
        try:
            self._cam = pyvirtualcam.Camera(self.width, self.height, fps, fmt=pyvirtualcam.PixelFormat.BGR,
                                            device=device, print_fps=False)
        except Exception as e:  # pyvirtualcam raises RuntimeError, ValueError or a backend's own error
            if device and sys.platform.startswith("linux") and not os.path.exists(device):
                raise VbgError(f"no virtual camera: {device} does not exist ({no_device_fix()}); "
                               "or run with --no-vcam") from None
            raise VbgError(f"no virtual camera ({brief(e, 140)}): {no_device_fix()}; or run with --no-vcam") from None
        self.device = self._cam.device
        self._fd = loopback.own_descriptor(self.device)
        self.driver = loopback.driver_version() if self._fd is not None else None
        if self._fd is not None and not loopback.registers_writers(self.driver) and not loopback.stream_on(self._fd):
            log.warning("%s: %s refused VIDIOC_STREAMON; the device may need a reload after vbg exits "
                        "(sudo modprobe -r v4l2loopback && sudo modprobe v4l2loopback exclusive_caps=1)",
                        self.device, loopback.version_text(self.driver))
        self._next_check = time.monotonic() + self.CHECK_EVERY_S
        self._fit = DeviceSize(self.width, self.height)
        self.fps = fps
        self._rate_told = self._fd is None

    def send(self, image: np.ndarray) -> None:
        if self._fd is not None and time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + self.CHECK_EVERY_S
            if not os.path.exists(self.device) or loopback.is_gone(self._fd):
                raise VbgError(f"{self.device} is gone")
        self._cam.send(self._fit(image))
        if not self._rate_told:  # after the first frame: 0.15 takes it only from a writer that has written
            self._rate_told = True
            if not loopback.set_frame_rate(self._fd, self.fps):
                log.warning("%s did not take the frame rate %g fps: call apps may expect another rate",
                            self.device, self.fps)

    def watch_readers(self) -> ReaderWatcher:
        return ReaderWatcher(self.device).start()

    def close(self) -> None:
        self._fd = None
        self._cam.close()


class ReaderWatcher:
    """Counts the other processes that have the virtual camera device open (Linux).

    inotify open/close events on the device say *when* to look; the count itself comes from the open
    file descriptors in /proc, because inotify merges identical back-to-back events (two apps opening
    at once would count as one, and we would idle while one still watches). Our own process is never
    counted. Elsewhere `available` is False and the camera never idles.
    """

    IN_OPEN, IN_CLOSE_WRITE, IN_CLOSE_NOWRITE = 0x20, 0x08, 0x10

    def __init__(self, path: str):
        self.path = path
        self.readers = 0
        self.available = False
        self._fd = -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        if not sys.platform.startswith("linux") or not Path(path).exists():
            return
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            return
        mask = self.IN_OPEN | self.IN_CLOSE_WRITE | self.IN_CLOSE_NOWRITE
        if libc.inotify_add_watch(fd, os.fsencode(path), mask) < 0:
            os.close(fd)
            return
        self._fd = fd
        self.available = True

    def start(self) -> ReaderWatcher:
        if self.available:
            self._thread = threading.Thread(target=self._run, name="vbg-vcam-readers", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(self._fd, 4096)
            except BlockingIOError:
                continue
            if data:
                self.readers = self.count_openers()

    def count_openers(self) -> int:
        return len(loopback.holders(self.path))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
