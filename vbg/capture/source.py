"""Capture: a thread that owns the camera (or a video file) and hands the newest frame downstream.

It never queues: each frame goes into a `LatestSlot`, replacing one nobody took. When the camera
fails (unplugged, busy, reads failing) it says so, retries with backoff, and resumes by itself.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from vbg.capture.mjpg import MjpgDecoder
from vbg.errors import VbgError
from vbg.frames import FramePool, LatestSlot
from vbg.outputs import loopback
from vbg.settings import CaptureSettings
from vbg.timing import Backoff, Pacer, StageTimes

log = logging.getLogger("vbg")


class FrameSource:
    """One opened camera or file. `read(into)` decodes the next frame, into `into` when it fits."""

    description = "source"
    width = height = 0
    fps = 0.0
    is_file = False
    damaged = 0  # frames read but dropped as damaged (read() returned None for each)

    def read(self, into: np.ndarray | None) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def camera_node(camera: str) -> str | None:
    """The device node a camera setting names on Linux (/dev/videoN for an index), else None."""
    if not sys.platform.startswith("linux"):
        return None
    return f"/dev/video{camera}" if camera.isdigit() else camera if camera.startswith("/") else None


class CameraAbsent(VbgError):
    """The camera's device node does not exist (as opposed to a camera that is busy or failing)."""


class CameraSource(FrameSource):
    READ_TIMEOUT_MS = 1000  # a camera that stops delivering must not block the thread for OpenCV's 10 s

    def __init__(self, settings: CaptureSettings):
        cam = settings.camera
        target = int(cam) if cam.isdigit() else cam
        node = camera_node(cam)
        if node is not None and not os.path.exists(node):
            raise CameraAbsent(f"no camera at {node}" + (f" (cameras here: {', '.join(found)})"
                                                          if (found := _video_nodes()) else ""))
        if sys.platform == "win32" and isinstance(target, int):
            api = cv2.CAP_DSHOW
        elif node is not None:
            # never fall through to FFmpeg, whose read() on a V4L2 node blocks forever and ignores SIGINT
            api = cv2.CAP_V4L2
        else:
            api = cv2.CAP_ANY
        # (OpenCV's V4L2 backend refuses the whole open when given a timeout it does not know as a
        # parameter, so the read timeout is set afterwards, where a refusal is only a False)
        self._cap = cv2.VideoCapture(target, api)
        if not self._cap.isOpened():
            self._cap.release()
            raise VbgError(f"camera {cam} could not be opened (busy in another app, or not a camera?)")
        self._cap.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.READ_TIMEOUT_MS)
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
        # MJPG is decoded here rather than in OpenCV's backend, so that damaged frames are dropped
        self._mjpg = MjpgDecoder() if fourcc == "MJPG" and self._cap.set(cv2.CAP_PROP_CONVERT_RGB, 0) else None
        self.description = f"camera {cam}: {self.width}x{self.height} @ {self.fps:g} fps {fourcc}"

    @property
    def damaged(self) -> int:
        return self._mjpg.damaged if self._mjpg else 0

    def read(self, into):
        if self._mjpg is None:
            ok, image = self._cap.read(into)
            return image if ok else None
        ok, data = self._cap.read()
        if not ok:
            return None
        if data.ndim == 3:  # a backend that decoded anyway
            return data
        return self._mjpg.decode(data)

    def close(self):
        self._cap.release()


def open_video(path: Path, what: str = "not a video OpenCV can decode") -> tuple[cv2.VideoCapture, float, int | None]:
    """A video file opened for decoding: (capture, fps, frame count if the file says).

    One decoder thread: whoever reads has a thread of its own, and FFmpeg's pool on top of it costs
    more CPU (3.7 vs 3.1 ms a 720p frame) and wakes in bursts that delay the other stages."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
    if not cap.isOpened():
        cap.release()
        raise VbgError(f"cannot open {path}: {what}")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0)
    return cap, fps if 1 <= fps <= 240 else 30.0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None


class FileSource(FrameSource):
    is_file = True

    def __init__(self, settings: CaptureSettings):
        path = Path(settings.input)
        if not path.is_file():
            raise VbgError(f"input file {path} does not exist")
        self._cap, self.fps, _ = open_video(path)
        self.loop = settings.loop
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.description = f"file {path.name}: {self.width}x{self.height} @ {self.fps:g} fps"

    def read(self, into):
        ok, image = self._cap.read(into)
        if not ok and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._cap.read(into)
        return image if ok else None

    def close(self):
        self._cap.release()


def _video_nodes() -> list[str]:
    if not sys.platform.startswith("linux"):
        return []
    return sorted((str(p) for p in Path("/dev").glob("video*")), key=lambda p: (len(p), p))


def open_source(settings: CaptureSettings) -> FrameSource:
    return FileSource(settings) if settings.input else CameraSource(settings)


class CaptureThread(threading.Thread):
    """Reads frames into pooled buffers and puts each into `slot`.

    States: starting (opened, no frame yet), live, lost (reconnecting), absent (no camera yet), idle (paused
    by the pipeline), ended (file done).
    """

    BACKOFF = (0.25, 0.5, 1.0, 2.0, 4.0)
    LOST_AFTER_S = 2.0
    SKIP_UNFED = 4

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
        self.idle_reason = ""  # why the pipeline cleared `wanted`, for the log
        self.state = "starting"
        self.message = ""
        self.frames = 0
        self.damaged = 0  # damaged frames the camera sent, dropped
        self.backoff = Backoff(self.BACKOFF)  # its failures: opens since the last frame
        self._skipped = 0   # tries in a row that left an unfed loopback webcam closed
        self.last_frame_t = time.monotonic()
        self.description = source.description if source else ""

    def stop(self) -> None:
        self._stop_event.set()
        self.wanted.set()
        self.slot.close()  # so a hand-off waiting for its consumer gives up too

    @property
    def stalled(self) -> bool:
        """Live, but no frame for a while (a camera that stops delivering without an error)."""
        return self.state == "live" and time.monotonic() - self.last_frame_t > self.LOST_AFTER_S

    def _set_state(self, state: str, message: str = "") -> None:
        if (state, message) != (self.state, self.message):
            self.state, self.message = state, message
            if message:
                (log.warning if state in ("lost", "absent") else log.info)("%s", message)

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                if not self.wanted.is_set():
                    self._close_source()
                    self._set_state("idle", f"camera off: {self.idle_reason or 'idle'}")
                    self.wanted.wait()
                    continue
                if self._source is None:
                    if self._unfed_loopback():
                        self._set_state("lost", "the camera is a virtual (v4l2loopback) camera that no program "
                                        "is writing to — waiting for one")
                        self._back_off()
                        continue
                    try:
                        self._source = self._open_source(self.settings)
                        self.description = self._source.description
                        self._set_state("starting")  # live, and said, from its first frame
                    except VbgError as e:
                        if self.settings.input:  # a file that cannot be opened will not get better
                            self._set_state("ended", str(e))
                            return
                        if isinstance(e, CameraAbsent) and self.frames == 0:
                            self._set_state("absent", f"{e} — waiting for one")
                            self._stop_event.wait(self.backoff.longest)
                            continue
                        self._set_state("lost", f"{e} — reconnecting (retrying every {self.backoff.longest:g} s at most)")
                        self._back_off()
                        continue
                if not self._pump(self._source):
                    return
                if self._source is None:  # lost: a camera that opens but sends nothing is not held in a loop
                    self._back_off()    # (a v4l2loopback 0.13+ webcam refuses its writer while we read)
        finally:
            self._close_source()
            self.slot.close()

    def _unfed_loopback(self) -> bool:
        """After a loss: whether the camera is a v4l2loopback device no other program has open. It is
        left closed then (for up to `SKIP_UNFED` tries in a row: another user's writer is invisible in
        /proc), because v4l2loopback 0.13+ refuse a writer while a reader streams without one, and
        reading it would keep its program (OBS, a phone app) from ever coming back."""
        node = camera_node(self.settings.camera) if not self.settings.input and self.backoff.failures else None
        if node is None or self._skipped >= self.SKIP_UNFED:
            self._skipped = 0
            return False
        state = loopback.query(node)
        if state is None or not state.is_loopback or loopback.holders(node):
            self._skipped = 0
            return False
        self._skipped += 1
        return True

    def _back_off(self) -> None:
        """Waits before the next attempt: longer each time until a frame comes."""
        self._stop_event.wait(self.backoff.next_delay())

    def _close_source(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None

    def _pump(self, source: FrameSource) -> bool:
        """Reads until the source fails or we are asked to stop/idle. False means: finished for good."""
        pacer = Pacer(source.fps, self._stop_event) if source.is_file and self.settings.paced and source.fps else None
        shape = (source.height, source.width, 3)
        misses = 0
        self.last_frame_t = time.monotonic()
        while not self._stop_event.is_set() and self.wanted.is_set():
            frame = self.pool.take(shape, timeout=0.5)
            if frame is None:
                continue  # every frame is downstream; try again (bounded wait, checks stop)
            t0 = time.perf_counter()
            damaged = source.damaged
            image = source.read(frame.image)
            if image is None:
                frame.release()
                if source.damaged > damaged:  # dropped: the last good frame stays the output
                    self.damaged += 1
                    if time.monotonic() - self.last_frame_t <= self.LOST_AFTER_S:
                        continue
                if source.is_file:
                    self._set_state("ended", "input finished")
                    return False
                misses += 1
                # a few bad reads are normal; a run of them, or none good for a while, means it is gone
                if misses >= 5 or time.monotonic() - self.last_frame_t > self.LOST_AFTER_S:
                    self._close_source()
                    self._set_state("lost", "camera lost — reconnecting")
                    return True
                self._stop_event.wait(0.05)
                continue
            misses = 0
            self.backoff.reset()
            self.last_frame_t = time.monotonic()
            if image is not frame.image:  # a buffer of its own (MJPG decoded here, or a new size): adopt it
                frame.image = image
                shape = image.shape
            self.times.add("capture", (time.perf_counter() - t0) * 1e3)
            if pacer is not None:
                pacer.wait()
            frame.index = self.frames
            frame.t_capture = time.perf_counter()
            self.frames += 1
            if not self.slot.put(frame):
                return False
            if self.state != "live":
                self._set_state("live", f"capturing from {source.description}")
        return True
