"""Outputs: the virtual camera, a recording file, and knowing whether any app is watching."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vbg.outputs import loopback
from vbg.errors import VbgError, brief

log = logging.getLogger("vbg")


def loopback_fix() -> str:
    """What to do when there is no virtual camera device, for this OS."""
    if sys.platform.startswith("linux"):
        return ("install v4l2loopback and run: sudo modprobe v4l2loopback devices=1 exclusive_caps=1 "
                "card_label=vbg (or, for apps that take PipeWire cameras, --vcam-backend pipewire)")
    if sys.platform == "darwin":
        return "install OBS Studio and start its Virtual Camera once, so its camera extension is installed"
    return "install OBS Studio (28 or newer): its virtual camera is the device vbg writes to"


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


class VirtualCamera:
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


def vcam_opener(backend: str):
    """The camera class for --vcam-backend: v4l2loopback (any app), pipewire (no kernel module; apps
    that take PipeWire cameras), or auto: v4l2loopback where a loopback device exists, else PipeWire."""
    if backend == "pipewire":
        from vbg.outputs.pipewire import PipeWireCamera

        return PipeWireCamera
    if backend == "auto" and sys.platform.startswith("linux") and not loopback.loopback_devices():
        from vbg.outputs import pipewire

        if pipewire.socket_path().exists():
            return pipewire.PipeWireCamera
        return _neither_backend
    return VirtualCamera


def _neither_backend(width, height, fps, device=None):
    raise VbgError("no virtual camera: --vcam-backend auto found neither a v4l2loopback device nor a running "
                   "PipeWire: sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=vbg, or start "
                   "PipeWire (systemctl --user start pipewire wireplumber)")


@dataclass(frozen=True)
class VirtualCameraStatus:
    enabled: bool             # the user wants it on
    open: bool                # a device is open and written to
    readers: int | None       # apps reading it; None where that cannot be known
    error: str | None         # why it is not open
    one_reader: bool          # its driver lets one app read at a time (v4l2loopback 0.13+)
    words: str                # all of it in a few words, for logs and the details


class VirtualCameraSink:
    """The virtual camera as the pipeline uses it: opened on demand, closed when switched off, retried
    with backoff (1, 2, 5 s) when missing or lost, and watched for readers. `send` never raises; the
    state is in `error` and `state()`. Runs on the output thread, except `retry` and `enabled`."""

    RETRY_S = (1.0, 2.0, 5.0)

    def __init__(self, size: tuple[int, int], fps: float, device: str | None, *, enabled: bool = True,
                 watch_readers: bool = True, required: bool = True, first_frame: np.ndarray | None = None,
                 open_camera=None):
        """With `required`, a camera that cannot be opened now raises VbgError (headless runs exit);
        otherwise it is retried. `first_frame` is sent as soon as the device is open: with
        exclusive_caps=1, call apps only list the device once it has a frame."""
        self.size, self.fps, self.device = size, fps, device
        self.enabled = enabled
        self.watch_readers = watch_readers
        self.camera: VirtualCamera | None = None
        self.watcher: ReaderWatcher | None = None
        self.error: str | None = None
        self.errors = 0
        self._open_camera = open_camera or VirtualCamera
        self._attempts = 0
        self._retry_at = 0.0
        self._switch = False
        if enabled:
            try:
                self._open(first_frame)
            except VbgError as e:
                if required:
                    raise
                self._failed(str(e))

    def _open(self, first_frame: np.ndarray | None = None) -> None:
        self.camera = self._open_camera(self.size[0], self.size[1], self.fps, self.device)
        self.error, self._attempts = None, 0
        if first_frame is not None:
            try:
                self.camera.send(first_frame)
            except Exception as e:  # the first frame of the stream will report a real problem
                log.warning("%s did not take vbg's first frame (%s): call apps may not list it until the camera's "
                            "first frame is composited", self.camera.device, brief(e, 100))
        if self.watch_readers:
            self.watcher = self.camera.watch_readers()

    def _failed(self, message: str) -> None:
        delay = self.RETRY_S[min(self._attempts, len(self.RETRY_S) - 1)]
        self._attempts += 1
        self._retry_at = time.monotonic() + delay
        if message != self.error:
            log.warning("%s (retrying)", message)
        self.error = message

    def _drop(self) -> None:
        close_quietly(self.watcher, self.camera)
        self.camera = self.watcher = None

    def retry(self) -> None:
        """Try to open the device at the next frame (the window's Retry button)."""
        self._retry_at = 0.0

    def switch(self, device: str | None, open_camera) -> None:
        """Another backend or device, from the next frame (any thread)."""
        self.device, self._open_camera = device, open_camera
        self._switch = True
        self._retry_at = 0.0

    def send(self, image: np.ndarray) -> None:
        if self._switch:
            self._switch = False
            self._drop()
            self.error = None
        if self.camera is not None and not self.enabled:
            self._drop()
            self.error = None
            return
        if self.camera is None:
            if not self.enabled or time.monotonic() < self._retry_at:
                return
            try:
                self._open()
            except VbgError as e:
                self._failed(str(e))
                return
            log.info("virtual camera %s is back", self.camera.device)
        try:
            self.camera.send(image)
        except Exception as e:  # backends raise their own types when the device goes away
            self.errors += 1
            self._drop()
            self._failed(f"virtual camera lost ({brief(e, 120)})")

    @property
    def readers(self) -> int | None:
        """Apps reading the device, or None where that cannot be known."""
        return self.watcher.readers if self.watcher is not None and self.watcher.available else None

    def state(self) -> str:
        if self.camera is None:
            return f"vcam error: {self.error}" if self.error else "virtual camera off"
        n = self.readers
        if n is None:
            return f"vcam {self.camera.device}"
        if not n:
            return f"vcam {self.camera.device}: no readers (idle)"
        driver = getattr(self.camera, "driver", None)
        only_one = f" ({loopback.version_text(driver)}: other apps are refused)" if loopback.one_reader(driver) else ""
        return f"vcam {self.camera.device}: {n} reader{'s' * (n != 1)}{only_one}"

    def status(self) -> VirtualCameraStatus:
        camera = self.camera
        return VirtualCameraStatus(self.enabled, camera is not None, self.readers, self.error,
                                   loopback.one_reader(getattr(camera, "driver", None)), self.state())

    def close(self) -> None:
        self._drop()


def close_quietly(*closers) -> None:
    """Closes each (None is skipped); closing must never take the app down, so failures are logged."""
    for closer in closers:
        if closer is not None:
            try:
                closer.close()
            except Exception as e:
                log.warning("closing %s: %s", type(closer).__name__, e)


def no_device_fix() -> str:
    """What to do when pyvirtualcam found no device: the loopback devices' state if there are any."""
    devices = loopback.loopback_devices()
    if devices:
        return "the v4l2loopback devices here: " + "; ".join(d.describe() for d in devices)
    return loopback_fix()


class Recorder:
    FOURCC = {".avi": "MJPG", ".mkv": "MJPG", ".mp4": "mp4v", ".mov": "mp4v"}

    def __init__(self, path: str, width: int, height: int, fps: float):
        p = Path(path)
        fourcc = self.FOURCC.get(p.suffix.lower())
        if fourcc is None:
            raise VbgError(f"cannot record to {p}: use a .mp4, .avi, .mkv or .mov file name")
        if not p.parent.exists() or not os.access(p.parent, os.W_OK):
            raise VbgError(f"cannot record to {p}: folder {p.parent} does not exist or is not writable")
        self._writer = cv2.VideoWriter(str(p), cv2.VideoWriter.fourcc(*fourcc), fps, (width, height))
        if not self._writer.isOpened():
            raise VbgError(f"cannot record to {p}: OpenCV could not open a {fourcc} writer for it")
        self.size = (width, height)
        self.path = p

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) == self.size:
            self._writer.write(image)

    def close(self) -> None:
        self._writer.release()


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
