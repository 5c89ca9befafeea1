"""Pause is a privacy promise: once `pause()` returns, no camera pixel reaches any output, and the
camera is off for as long as the pause lasts, whatever other threads do meanwhile."""

import threading
import time

import numpy as np

from vbg.capture.source import FrameSource
import vbg.pipeline
from vbg.pipeline import Pipeline
from vbg.settings import Settings


MARK = np.array([7, 250, 9], np.uint8)  # every camera pixel; no card or background has it


class MarkedCamera(FrameSource):
    """Stands in for a webcam (this machine has none): every pixel of every frame is MARK."""

    def __init__(self, opened: list):
        self.width, self.height, self.fps = 64, 48, 200.0
        self.description = "marked test camera"
        self.opened = opened
        opened.append(self)
        self.closed = False

    def read(self, into):
        time.sleep(1 / self.fps)
        into[:] = MARK
        return into

    def close(self):
        self.closed = True


class Readers:
    """The reader count a virtual camera's watcher reports; flipped by the test's reader thread."""

    available = True

    def __init__(self):
        self.readers = 1

    def close(self):
        pass


class RecordingVirtualCamera:
    """Stands in for the virtual camera device (this machine has none): counts every frame sent that
    carries a camera pixel while the test holds the pipeline paused."""

    instance = None

    def __init__(self, width, height, fps, device=None):
        self.device, self.watcher = "/dev/video-test", Readers()
        self.paused = False          # set by the test once pause() has returned, cleared before resume()
        self.leaks = self.sent = self.cards_while_paused = 0
        RecordingVirtualCamera.instance = self

    def send(self, image):
        self.sent += 1
        if self.paused:
            if np.all(image == MARK, axis=2).any():
                self.leaks += 1
            else:
                self.cards_while_paused += 1

    def watch_readers(self):
        return self.watcher

    def close(self):
        pass


def test_no_camera_pixel_is_sent_after_pause_returns_and_the_camera_stays_off(any_segmenter, monkeypatch):
    monkeypatch.setattr(vbg.pipeline, "IDLE_GRACE_S", 0.0)  # idle as soon as the last reader goes
    opened = []
    s = Settings()
    s.composite.background = "none"  # the output is the camera's own pixels
    s.output.vcam, s.output.idle_when_unwatched = True, True
    pipeline = Pipeline(s, segmenter=any_segmenter, open_source=lambda settings: MarkedCamera(opened),
                        open_vcam=RecordingVirtualCamera)
    vcam = RecordingVirtualCamera.instance
    pipeline.start()
    stop = threading.Event()

    def readers_come_and_go():  # call apps opening and closing the device all the while
        while not stop.is_set():
            vcam.watcher.readers = 1 - vcam.watcher.readers
            time.sleep(0.0007)

    flipper = threading.Thread(target=readers_come_and_go)
    flipper.start()
    cycles, camera_on_while_paused = 0, 0
    try:
        deadline = time.monotonic() + 10
        while pipeline.counters.frames_out < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pipeline.counters.frames_out >= 5, "no frame came out before the test"
        t_end = time.monotonic() + 8
        while cycles < 3000 and time.monotonic() < t_end:
            pipeline.pause()
            vcam.paused = True
            for _ in range(3):
                camera_on_while_paused += pipeline.capture.wanted.is_set()
                time.sleep(0.0003 * (cycles % 5))
            vcam.paused = False
            pipeline.resume()
            time.sleep(0.0005 * (cycles % 7))  # sometimes long enough for a frame to get in flight
            cycles += 1
        pipeline.pause()
        vcam.paused = True
        time.sleep(0.5)
    finally:
        stop.set()
        flipper.join()
        pipeline.stop()
    assert cycles >= 1000
    assert vcam.leaks == 0, f"{vcam.leaks} frames with camera pixels sent after pause() returned"
    assert camera_on_while_paused == 0, "the camera was wanted while paused"
    assert vcam.cards_while_paused > 0                       # the privacy image went out
    assert opened and all(c.closed for c in opened)           # the camera is off
    assert pipeline.dropped_paused > 0                        # frames in flight existed, and were dropped
