"""Capture: a thread that owns the camera (or a video file) and hands the newest frame downstream.

It never queues: each frame goes into a `LatestSlot`, replacing one nobody took. When the camera
fails (unplugged, busy, reads failing) it says so, retries with backoff, and resumes by itself.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from vbg.errors import VbgError
from vbg.frames import FramePool, LatestSlot
from vbg.settings import CaptureSettings
from vbg.timing import StageTimes

log = logging.getLogger("vbg")


class FrameSource:
    """One opened camera or file. `read(into)` decodes the next frame, into `into` when it fits."""

    description = "source"
    width = height = 0
    fps = 0.0
    is_file = False

    def read(self, into: np.ndarray | None) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class CameraSource(FrameSource):
    def __init__(self, settings: CaptureSettings):
        cam = settings.camera
        target = int(cam) if cam.isdigit() else cam
        api = cv2.CAP_DSHOW if sys.platform == "win32" and isinstance(target, int) else cv2.CAP_ANY
        self._cap = cv2.VideoCapture(target, api)
        if not self._cap.isOpened():
            self._cap.release()
            raise VbgError(f"camera {cam} could not be opened (missing, or busy in another app?)")
        if settings.mjpg:
            self._cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        if settings.size:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, settings.size[0])
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, settings.size[1])
        if settings.fps:
            self._cap.set(cv2.CAP_PROP_FPS, settings.fps)
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # we want the newest frame, not a backlog
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0)
        code = int(self._cap.get(cv2.CAP_PROP_FOURCC))
        fourcc = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\0 ") or "?"
        self.description = f"camera {cam}: {self.width}x{self.height} @ {self.fps:g} fps {fourcc}"

    def read(self, into):
        ok, image = self._cap.read(into)
        return image if ok else None

    def close(self):
        self._cap.release()


class FileSource(FrameSource):
    is_file = True

    def __init__(self, settings: CaptureSettings):
        path = Path(settings.input)
        if not path.is_file():
            raise VbgError(f"input file {path} does not exist")
        # One decoder thread: capture has a thread of its own, and FFmpeg's pool on top of it costs
        # more CPU (3.7 vs 3.1 ms a 720p frame) and wakes in bursts that delay the other stages.
        self._cap = cv2.VideoCapture(str(path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
        if not self._cap.isOpened():
            raise VbgError(f"cannot open input {path}: not a video OpenCV can decode")
        self.loop = settings.loop
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0)
        self.fps = fps if 1 <= fps <= 240 else 30.0
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.description = f"file {path.name}: {self.width}x{self.height} @ {self.fps:g} fps"

    def read(self, into):
        ok, image = self._cap.read(into)
        if not ok and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._cap.read(into)
        return image if ok else None

    def close(self):
        self._cap.release()


def open_source(settings: CaptureSettings) -> FrameSource:
    return FileSource(settings) if settings.input else CameraSource(settings)


class CaptureThread(threading.Thread):
    """Reads frames into pooled buffers and puts each into `slot`.

    States: starting, live, lost (reconnecting), idle (paused by the pipeline), ended (file done).
    """

    BACKOFF = (0.25, 0.5, 1.0, 2.0, 4.0)

    def __init__(self, settings: CaptureSettings, slot: LatestSlot, pool: FramePool, times: StageTimes,
                 source: FrameSource | None = None, open_source=open_source):
        super().__init__(name="vbg-capture", daemon=True)
        self.settings = settings
        self.slot, self.pool, self.times = slot, pool, times
        self._source = source
        self._open_source = open_source
        self._stop_event = threading.Event()
        self.wanted = threading.Event()  # cleared by the pipeline to idle the camera
        self.wanted.set()
        self.state = "starting"
        self.message = ""
        self.frames = 0
        self.failures = 0
        self.description = source.description if source else ""

    def stop(self) -> None:
        self._stop_event.set()
        self.wanted.set()
        self.slot.close()  # so a hand-off waiting for its consumer gives up too

    def _set_state(self, state: str, message: str = "") -> None:
        if (state, message) != (self.state, self.message):
            self.state, self.message = state, message
            if message:
                (log.warning if state == "lost" else log.info)("%s", message)

    def run(self) -> None:
        attempt = 0
        try:
            while not self._stop_event.is_set():
                if not self.wanted.is_set():
                    self._close_source()
                    self._set_state("idle", "camera idle: no app is reading the virtual camera")
                    self.wanted.wait()
                    continue
                if self._source is None:
                    try:
                        self._source = self._open_source(self.settings)
                        self.description = self._source.description
                        self._set_state("live", f"capturing from {self.description}")
                        attempt = 0
                    except VbgError as e:
                        if self.settings.input:  # a file that cannot be opened will not get better
                            self._set_state("ended", str(e))
                            return
                        delay = self.BACKOFF[min(attempt, len(self.BACKOFF) - 1)]
                        attempt += 1
                        self.failures += 1
                        self._set_state("lost", f"{e} — reconnecting (retrying every {self.BACKOFF[-1]:g} s at most)")
                        self._stop_event.wait(delay)
                        continue
                if not self._pump(self._source):
                    return
        finally:
            self._close_source()
            self.slot.close()

    def _close_source(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None

    def _pump(self, source: FrameSource) -> bool:
        """Reads until the source fails or we are asked to stop/idle. False means: finished for good."""
        paced = source.is_file and self.settings.paced
        period = 1.0 / source.fps if source.fps else 0.0
        t_next = time.perf_counter()
        shape = (source.height, source.width, 3)
        misses = 0
        while not self._stop_event.is_set() and self.wanted.is_set():
            frame = self.pool.take(shape, timeout=0.5)
            if frame is None:
                continue  # every frame is downstream; try again (bounded wait, checks stop)
            t0 = time.perf_counter()
            image = source.read(frame.image)
            if image is None:
                frame.release()
                if source.is_file:
                    self._set_state("ended", "input finished")
                    return False
                misses += 1
                if misses >= 5:  # a few bad reads are normal; a run of them means the camera is gone
                    self.failures += 1
                    self._close_source()
                    self._set_state("lost", "camera lost — reconnecting")
                    return True
                self._stop_event.wait(0.05)
                continue
            misses = 0
            if image is not frame.image:  # the source changed size: adopt its buffer from now on
                frame.image = image
                shape = image.shape
            self.times.add("capture", (time.perf_counter() - t0) * 1e3)
            if paced:
                t_next += period
                delay = t_next - time.perf_counter()
                if delay > 0:
                    self._stop_event.wait(delay)
                elif delay < -period:
                    t_next = time.perf_counter()
            frame.index = self.frames
            frame.t_capture = time.perf_counter()
            self.frames += 1
            if not self.slot.put(frame):
                return False
            if self.state != "live":
                self._set_state("live", f"capturing from {source.description}")
        return True
