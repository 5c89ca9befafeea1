"""The sinks the pipeline sends its frames to (vbg/outputs/__init__.py: Sink): the virtual camera, kept open
whichever backend writes it, and a recording file."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vbg.errors import VbgError, brief
from vbg.outputs import CameraDevice, Readers, close_quietly, loopback, vcam_opener
from vbg.timing import Backoff

log = logging.getLogger("vbg")


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

    RETRY_S = (1.0, 2.0, 5.0)   # the waits between attempts to open it again

    def __init__(self, size: tuple[int, int], fps: float, device: str | None, *, enabled: bool = True,
                 watch_readers: bool = True, required: bool = True, first_frame: np.ndarray | None = None,
                 open_camera=None):
        """With `required`, a camera that cannot be opened now raises VbgError (headless runs exit);
        otherwise it is retried. `first_frame` is sent as soon as the device is open: with
        exclusive_caps=1, call apps only list the device once it has a frame."""
        self.size, self.fps, self.device = size, fps, device
        self.enabled = enabled
        self.watch_readers = watch_readers
        self.camera: CameraDevice | None = None
        self.watcher: Readers | None = None
        self.error: str | None = None
        self.errors = 0
        self._open_camera = open_camera or vcam_opener("v4l2loopback")
        self.backoff = Backoff(self.RETRY_S)
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
        self.error = None
        self.backoff.reset()
        if first_frame is not None:
            try:
                self.camera.send(first_frame)
            except Exception as e:  # the first frame of the stream will report a real problem
                log.warning("%s did not take vbg's first frame (%s): call apps may not list it until the camera's "
                            "first frame is composited", self.camera.device, brief(e, 100))
        if self.watch_readers:
            self.watcher = self.camera.watch_readers()

    def _failed(self, message: str) -> None:
        self._retry_at = time.monotonic() + self.backoff.next_delay()
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

    def send(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) == self.size:
            self._writer.write(image)

    def close(self) -> None:
        self._writer.release()
