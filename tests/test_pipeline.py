"""The live pipeline on a file source, and capture that loses its camera and gets it back."""

import threading
import time

import numpy as np


from vbg.capture.source import CaptureThread, FrameSource
from vbg.errors import VbgError
from vbg.frames import FramePool, LatestSlot
from vbg.pipeline import Pipeline
from vbg.settings import Settings
from vbg.timing import StageTimes
import pytest



def _file_settings(clip, **output):
    s = Settings()
    s.capture.input = str(clip)
    s.capture.paced = False
    s.output.vcam = False
    for k, v in output.items():
        setattr(s.composite if k in ("background", "mirror") else s.output, k, v)
    return s


def test_whole_pipeline_on_a_file_outputs_composited_frames(clip_720p, any_segmenter):
    outputs = []
    pipeline = Pipeline(_file_settings(clip_720p, background="color:#00ff00"), lossless=True, segmenter=any_segmenter,
                        on_output=lambda img, src: outputs.append(img[:8, :8].copy()) if len(outputs) < 40 else None)
    pipeline.start()
    pipeline.wait(frames=40)
    pipeline.stop()
    assert pipeline.counters.frames_out >= 40 and pipeline.counters.errors == 0
    assert all(tuple(o[4, 4]) == (0, 255, 0) for o in outputs[:40])     # corner: background replaced
    for stage in ("capture", "preprocess", "inference", "smoothing", "composite", "output"):
        assert pipeline.times.median(stage) > 0, stage
    assert not any(t.is_alive() for t in pipeline._threads)


def test_stop_ends_every_thread_and_releases_the_source(clip_720p, any_segmenter):
    s = _file_settings(clip_720p, background="blur")
    s.capture.loop = True
    pipeline = Pipeline(s, segmenter=any_segmenter).start()
    pipeline.wait(frames=5)
    pipeline.stop()                       # joins each thread for at most the rest of one second
    assert not any(t.is_alive() for t in pipeline._threads)
    assert pipeline.capture._source is None                       # the camera/file is released
    assert pipeline.capture_slot.closed and pipeline.composite_slot.closed
    assert pipeline.pool.free_count() == pipeline.pool.count                 # every frame back in the pool


class FlakyCamera(FrameSource):
    """Stands in for a webcam (this machine has none): gives `good` frames at its frame rate, then
    fails every read."""

    def __init__(self, good):
        self.width, self.height, self.fps = 64, 48, 40.0
        self.description = "flaky test camera"
        self.left = good

    def read(self, into):
        if self.left <= 0:
            return None
        self.left -= 1
        time.sleep(1 / self.fps)       # a camera's read blocks until its next frame
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
    capture.backoff.delays = (0.01, 0.02)
    losses = []
    real_set_state = capture._set_state
    capture._set_state = lambda state, message="": (state == "lost" and losses.append(message),
                                                   real_set_state(state, message))
    got = []

    def consume():
        while (f := slot.get(timeout=2)) is not None and len(got) < 12:
            got.append(f.index)
            f.release()

    t = threading.Thread(target=consume)
    t.start()
    capture.start()
    t.join(timeout=10)
    states_seen = len(losses)
    capture.stop()
    capture.join(timeout=2)
    assert len(got) == 12 and got == sorted(got)     # frames kept coming after each loss
    assert len(opens) >= 4 and states_seen >= 2       # lost, failed to reopen, reopened, lost again...
    assert not capture.is_alive()


class VanishingVirtualCamera:
    """Stands in for a virtual camera device (this machine has none) that disappears mid-call: the
    first `fail_opens` re-opens fail like a missing device does, sends fail while `gone` is set."""

    instances = []

    def __init__(self, width, height, fps, device=None):
        if VanishingVirtualCamera.fail_opens > 0:
            VanishingVirtualCamera.fail_opens -= 1
            raise VbgError("no virtual camera (device missing): sudo modprobe v4l2loopback ...")
        self.device, self.sent = "/dev/video-test", 0
        VanishingVirtualCamera.instances.append(self)

    def send(self, image):
        if VanishingVirtualCamera.gone and self.sent >= 5:
            raise OSError("No such device")
        self.sent += 1

    def close(self):
        pass


def test_virtual_camera_lost_mid_run_is_retried_while_output_continues(clip_720p, any_segmenter):
    VanishingVirtualCamera.instances, VanishingVirtualCamera.fail_opens, VanishingVirtualCamera.gone = [], 0, True
    s = _file_settings(clip_720p, vcam=True, idle_when_unwatched=False)
    s.capture.loop = True
    seen = []
    pipeline = Pipeline(s, segmenter=any_segmenter, open_vcam=VanishingVirtualCamera,
                        on_output=lambda img, src: seen.append(1))
    pipeline.vcam.backoff.delays = (0.05,)
    pipeline.start()
    try:
        deadline = time.monotonic() + 20
        while pipeline.vcam.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pipeline.vcam.error and "lost" in pipeline.vcam.error
        assert "vcam error" in pipeline.status_line()
        VanishingVirtualCamera.gone = False                      # the device comes back
        while len(VanishingVirtualCamera.instances) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        frames_then = len(seen)
        time.sleep(0.3)
    finally:
        pipeline.stop()
    assert len(VanishingVirtualCamera.instances) >= 2 and pipeline.vcam.error is None
    assert VanishingVirtualCamera.instances[-1].sent > 0 and len(seen) > frames_then   # flowing again


def test_window_mode_starts_without_a_virtual_camera_and_retries(clip_720p, any_segmenter):
    VanishingVirtualCamera.instances, VanishingVirtualCamera.fail_opens, VanishingVirtualCamera.gone = [], 2, False
    s = _file_settings(clip_720p, vcam=True, idle_when_unwatched=False)
    s.capture.loop = True
    pipeline = Pipeline(s, segmenter=any_segmenter, open_vcam=VanishingVirtualCamera, vcam_required=False)
    assert pipeline.vcam.camera is None and "modprobe" in pipeline.vcam.error
    pipeline.vcam.backoff.delays = (0.05,)
    pipeline.start()
    try:
        pipeline.vcam.retry()
        deadline = time.monotonic() + 20
        while pipeline.vcam.camera is None and time.monotonic() < deadline:
            time.sleep(0.01)
        opened = pipeline.vcam.camera is not None
    finally:
        pipeline.stop()
    assert opened and pipeline.counters.frames_out > 0


def test_camera_lost_sends_a_reconnecting_card_then_resumes(any_segmenter):
    state = {"opens": 0}

    def open_source(settings):
        state["opens"] += 1
        if 2 <= state["opens"] <= 4:
            raise VbgError("camera 0 could not be opened (missing, or busy in another app?)")
        return FlakyCamera(good=8)

    s = Settings()
    s.output.vcam = False
    s.composite.background = "color:#204080"
    outputs = []
    pipeline = Pipeline(s, segmenter=any_segmenter, open_source=open_source,
                        on_output=lambda img, src: outputs.append(float(img.mean())))
    pipeline.capture.backoff.delays = (0.3,)
    pipeline.start()
    deadline = time.monotonic() + 20
    while state["opens"] < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    pipeline.stop()
    assert pipeline.counters.cards >= 1                           # the output kept flowing while lost
    assert state["opens"] >= 5 and pipeline.counters.frames_out >= 9   # and resumed by itself
    assert state["opens"] <= 8                                    # backoff, not a busy loop


def test_passthrough_last_output_is_the_frame_that_was_output(clip_720p, any_segmenter):
    """`-b none` used to hand out the pooled camera frame: capture overwrote it after release, so the
    snapshot and the 'camera lost' card showed a frame that was never output (166 of 300 reads)."""
    output = set()
    s = _file_settings(clip_720p, background="none")
    s.capture.loop = True
    pipeline = Pipeline(s, segmenter=any_segmenter, on_output=lambda img, src: output.add(img[::16, ::16].tobytes()))
    pipeline.start()
    reads, strangers = 0, 0
    try:
        deadline = time.monotonic() + 30
        while reads < 300 and time.monotonic() < deadline:
            time.sleep(0.005)
            last = pipeline.last_output
            if last is not None:
                reads += 1
                strangers += last[::16, ::16].tobytes() not in output
    finally:
        pipeline.stop()
    assert reads >= 300 and strangers <= 3, f"{strangers} of {reads} reads showed a frame never output"


def test_update_applies_live_and_a_bad_background_changes_nothing(clip_720p, any_segmenter):
    s = _file_settings(clip_720p, background="color:#00ff00")
    s.capture.loop = True
    pipeline = Pipeline(s, segmenter=any_segmenter)
    try:
        changed = Settings.from_dict(__import__("json").loads(s.to_json()))
        changed.composite.mirror, changed.smooth.strength, changed.refine.enabled = True, 0.0, False
        pipeline.update(changed)
        assert pipeline.chain.compositor.mirror and pipeline.chain.smoother.strength == 0.0
        assert pipeline.chain.edge_hold.strength == 0.0          # smoothing 0 turns the edge hold off
        assert not pipeline.chain.refiner.settings.enabled
        changed.composite.mirror = False                                  # the caller's object is not the engine's
        assert pipeline.settings.composite.mirror
        bad = Settings.from_dict(__import__("json").loads(changed.to_json()))
        bad.composite.background, bad.composite.mirror = "/no/such/picture.jpg", True
        with pytest.raises(VbgError):
            pipeline.update(bad)
        assert pipeline.settings.composite.background == "color:#00ff00"
    finally:
        pipeline.stop()


def test_the_window_waits_for_an_absent_camera_and_says_no_camera_found(clip_720p, any_segmenter, tmp_path):
    s = _file_settings(clip_720p)
    s.capture.input, s.capture.camera = None, str(tmp_path / "video9")
    cards = []
    pipeline = Pipeline(s, segmenter=any_segmenter, camera_required=False,
                        on_output=lambda img, src: cards.append(pipeline._card_text()))
    pipeline.start()
    try:
        deadline = time.monotonic() + 10
        while not cards and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pipeline.stop()
    assert pipeline.capture.state == "absent" and cards and cards[0] == "no camera found"


class SlowCamera(FrameSource):
    """Stands in for a webcam (none here) that advertises `fps` but delivers `delivers` frames a second,
    the first one only after `first_after` seconds (a camera warming up after idle)."""

    def __init__(self, fps=20.0, delivers=20.0, first_after=0.0):
        self.width, self.height, self.fps = 64, 48, fps
        self.description = "slow test camera"
        self.delivers, self.first_after, self.reads = delivers, first_after, 0

    def read(self, into):
        time.sleep(self.first_after if self.reads == 0 else 1 / self.delivers)
        self.reads += 1
        into[:] = 90
        return into


def test_a_camera_slow_to_its_first_frame_after_resume_shows_only_the_starting_card(any_segmenter):
    """The reconnecting card used to come before a slow camera's first frame after a resume (the camera
    counted as live from its open, so lost 2 s later)."""
    from vbg.outputs.cards import status_card
    from vbg.pipeline import STARTING_TEXT

    cameras = []

    def open_source(settings):
        cameras.append(SlowCamera(first_after=3.0 if cameras else 0.0))
        return cameras[-1]

    s = Settings()
    s.output.vcam = False
    s.composite.background = "color:#204080"
    cards = []
    pipeline = Pipeline(s, segmenter=any_segmenter, open_source=open_source,
                        on_output=lambda img, src: src is None and cards.append(img.copy()))
    pipeline.start()
    try:
        pipeline.wait(frames=2, duration=20)
        pipeline.pause()
        deadline = time.monotonic() + 10
        while pipeline.capture.state != "idle" and time.monotonic() < deadline:
            time.sleep(0.02)
        frames = pipeline.counters.frames_out
        pipeline.resume()
        del cards[:]
        pipeline.wait(frames=frames + 2, duration=20)
    finally:
        pipeline.stop()
    starting = status_card((48, 64, 3), STARTING_TEXT)
    assert len(cameras) == 2 and pipeline.counters.frames_out >= frames + 2
    assert len(cards) >= 4                                    # 3 s without a frame: cards, two a second
    assert all(np.array_equal(card, starting) for card in cards)


class CountingVirtualCamera:
    """Stands in for the virtual camera device (none here): counts what is sent."""

    instance = None

    def __init__(self, width, height, fps, device=None):
        self.device, self.sent = "/dev/video-test", 0
        CountingVirtualCamera.instance = self

    def send(self, image):
        self.sent += 1

    def close(self):
        pass


def test_the_virtual_camera_gets_frames_at_its_advertised_rate_when_composites_come_slower(any_segmenter):
    """Browsers take the rate a camera advertises as what it delivers: the last frame is sent again."""
    s = Settings()
    s.output.vcam, s.output.idle_when_unwatched = True, False
    s.composite.background = "color:#204080"
    pipeline = Pipeline(s, segmenter=any_segmenter, source=SlowCamera(fps=20.0, delivers=5.0),
                        open_vcam=CountingVirtualCamera)
    pipeline.start()
    pipeline.wait(frames=3, duration=20)
    sent, frames, t0 = CountingVirtualCamera.instance.sent, pipeline.counters.frames_out, time.monotonic()
    time.sleep(2.0)
    sent, frames = CountingVirtualCamera.instance.sent - sent, pipeline.counters.frames_out - frames
    rate = sent / (time.monotonic() - t0)
    pipeline.stop()
    assert frames <= 12                          # the camera's 5 a second
    assert 16 <= rate <= 24, rate                # the advertised 20 a second reach the device
