"""The live pipeline on a file source, and capture that loses its camera and gets it back."""

import threading
import time

import numpy as np

from conftest import CLIP_720P
from vbg.capture import CaptureThread, FrameSource
from vbg.errors import VbgError
from vbg.frames import FramePool, LatestSlot
from vbg.pipeline import Pipeline
from vbg.settings import Settings
from vbg.timing import StageTimes


def _file_settings(**output):
    s = Settings()
    s.capture.input = str(CLIP_720P)
    s.capture.paced = False
    s.output.vcam = False
    for k, v in output.items():
        setattr(s.output, k, v)
    return s


def test_whole_pipeline_on_a_file_outputs_composited_frames(segmenter):
    outputs = []
    pipeline = Pipeline(_file_settings(background="color:#00ff00"), lossless=True, segmenter=segmenter,
                        on_output=lambda img: outputs.append(img[:8, :8].copy()) if len(outputs) < 40 else None)
    pipeline.start()
    pipeline.wait(frames=40)
    pipeline.stop()
    assert pipeline.counters.frames_out >= 40 and pipeline.counters.errors == 0
    assert all(tuple(o[4, 4]) == (0, 255, 0) for o in outputs[:40])     # corner: background replaced
    for stage in ("capture", "preprocess", "inference", "smoothing", "composite", "output"):
        assert pipeline.times.median(stage) > 0, stage
    assert not any(t.is_alive() for t in pipeline._threads)


def test_stop_releases_everything_within_a_second(segmenter):
    s = _file_settings()
    s.capture.loop = True
    pipeline = Pipeline(s, segmenter=segmenter).start()
    pipeline.wait(frames=5)
    t0 = time.monotonic()
    pipeline.stop()
    assert time.monotonic() - t0 < 1.0
    assert not any(t.is_alive() for t in pipeline._threads)


class FlakyCamera(FrameSource):
    """Stands in for a webcam (this machine has none): gives `good` frames, then fails every read."""

    def __init__(self, good):
        self.width, self.height, self.fps = 64, 48, 100.0
        self.description = "flaky test camera"
        self.left = good

    def read(self, into):
        if self.left <= 0:
            return None
        self.left -= 1
        into[:] = 7
        return into


def test_capture_reconnects_after_the_camera_is_lost():
    opens = []

    def open_source(settings):
        opens.append(time.monotonic())
        if len(opens) == 2:
            raise VbgError("camera 0 could not be opened (missing, or busy in another app?)")  # still unplugged
        return FlakyCamera(good=5)

    slot, pool = LatestSlot(lossless=True), FramePool(4)
    capture = CaptureThread(Settings().capture, slot, pool, StageTimes(), open_source=open_source)
    capture.BACKOFF = (0.01, 0.02)
    got = []

    def consume():
        while (f := slot.get(timeout=2)) is not None and len(got) < 12:
            got.append(f.index)
            f.release()

    t = threading.Thread(target=consume)
    t.start()
    capture.start()
    t.join(timeout=10)
    states_seen = capture.failures
    capture.stop()
    capture.join(timeout=2)
    assert len(got) == 12 and got == sorted(got)     # frames kept coming after each loss
    assert len(opens) >= 4 and states_seen >= 2       # lost, failed to reopen, reopened, lost again...
    assert not capture.is_alive()
