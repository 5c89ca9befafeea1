"""The app's controller with no window: every command, the engine's start and failure, settings saved.

It runs the real pipeline on a clip, with the real segmenter where ../shared is and the conftest's fake
otherwise (the controller's logic does not judge the cut-out)."""

import json
import subprocess
import sys
import time
from collections import deque

import numpy as np
import pytest

from vbg.app.commands import COMMANDS
from vbg.app.controller import Controller
from vbg.errors import VbgError
from vbg.settings import Settings


class RecordingView:
    def __init__(self):
        self.changes, self.messages = [], []

    def changed(self, what):
        self.changes.append(what)

    def message(self, text, seconds):
        self.messages.append(text)


class OwnerThread:
    """The controller's thread, as the window's event loop would be: posted work runs when pumped."""

    def __init__(self):
        self.queue = deque()

    def post(self, fn):
        self.queue.append(fn)

    def pump_until(self, condition, timeout=30.0):
        deadline = time.monotonic() + timeout
        while not condition():
            while self.queue:
                self.queue.popleft()()
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.01)


def _settings(clip):
    s = Settings()
    s.capture.input, s.capture.loop = str(clip), True
    s.output.vcam = False
    s.composite.background = "color:#00ff00"
    return s


def _all_green(image):
    return bool((image[..., 1] == 255).all() and not image[..., 0].any() and not image[..., 2].any())


@pytest.fixture
def app(clip_720p, any_segmenter, tmp_path):
    owner, view, frames = OwnerThread(), RecordingView(), []
    c = Controller(_settings(clip_720p), save_path=tmp_path / "settings.json", view=view, post=owner.post,
                   on_output=lambda image, source: frames.append(_all_green(image)),
                   open_segmenter=lambda settings: any_segmenter)
    c.start_engine()
    owner.pump_until(lambda: c.pipeline is not None and len(frames) > 2)
    yield c, owner, view, frames
    c.stop()


def test_the_controller_needs_no_widgets():
    code = "import sys, vbg.app.controller; print(sorted(m for m in sys.modules if m.startswith('PySide6')))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_every_command_has_a_handler_here_except_the_windows_own():
    assert {c.verb for c in COMMANDS if not hasattr(Controller, f"cmd_{c.verb}")} == {"screenshot", "raise"}


def test_commands_change_the_engine_and_the_saved_settings(app, tmp_path):
    c, owner, view, frames = app
    names = [choice.spec for choice in c.choices]
    assert c.handle("select", [names[1]])["background_spec"] == names[1]
    assert c.pipeline.settings.composite.background == names[1]
    c.handle("next", [])
    assert c.settings.composite.background == names[2]
    c.handle("prev", [])
    c.handle("prev", [])
    assert c.settings.composite.background == names[0]
    c.handle("blur", [])
    assert c.settings.composite.background == "blur" and c.blur_strength is not None
    c.handle("mirror", [])
    assert c.pipeline.settings.composite.mirror and c.pipeline.chain.compositor.mirror
    c.set_edge("standard")
    assert c.edge == "standard" and c.pipeline.settings.refine.edge == "standard"
    c.set_smoothing(0.25)
    assert c.pipeline.settings.smooth.strength == 0.25
    saved = json.loads((tmp_path / "settings.json").read_text())
    assert saved["composite"]["background"] == "blur" and saved["composite"]["mirror"] is True
    assert saved["refine"]["edge"] == "standard" and saved["smooth"]["strength"] == 0.25
    assert "settings" in view.changes


def test_a_bad_background_or_source_is_refused_and_nothing_changes(app, tmp_path):
    c, owner, view, frames = app
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not an image")
    before = c.settings.composite.background
    reply = c.handle("select", [str(broken)])
    assert reply["ok"] is False and "broken.jpg" in reply["error"]
    assert c.settings.composite.background == before == c.pipeline.settings.composite.background
    assert view.messages and "broken.jpg" in view.messages[-1]
    assert c.handle("select", ["no such background"])["ok"] is False
    reply = c.handle("source", [str(tmp_path / "missing.mp4")])
    assert reply["ok"] is False and "the source is unchanged" in reply["error"]
    assert c.handle("no-such-verb", [])["ok"] is False
    assert c.handle("snapshot", [])["ok"] is False


def test_pause_sends_the_privacy_image_and_resume_the_camera(app):
    c, owner, view, frames = app
    reply = c.handle("toggle", [])
    assert reply["paused"] and c.pipeline.paused
    sent = len(frames) - 1     # the last frame out when the pause returned: the privacy image
    time.sleep(1.2)            # and the cards that repeat it
    # the pause image is "the background alone": the green background, never the camera
    assert not any(frames[:sent])                                   # the person was there before
    assert len(frames) > sent + 1 and all(frames[sent:])
    assert not c.pipeline.capture.wanted.is_set()
    c.handle("resume", [])
    assert not c.pipeline.paused and c.pipeline.capture.wanted.is_set()


def test_changes_while_the_engine_starts_apply_when_it_is_up(clip_720p, any_segmenter, tmp_path):
    owner = OwnerThread()
    c = Controller(_settings(clip_720p), save_path=tmp_path / "s.json", post=owner.post,
                   open_segmenter=lambda settings: any_segmenter)
    c.start_engine()
    assert c.pipeline is None and c.starting
    c.set_mirror(True)
    c.set_paused(True)
    assert c.select_spec("blur")
    owner.pump_until(lambda: c.pipeline is not None)
    p = c.pipeline
    assert p.settings.composite.mirror and p.paused and p.settings.composite.background == "blur"
    c.stop()


def test_a_failed_start_is_said_and_can_be_retried(clip_720p, any_segmenter, tmp_path):
    owner, view = OwnerThread(), RecordingView()
    attempts = []

    def open_segmenter(settings):
        attempts.append(1)
        if len(attempts) == 1:
            raise VbgError("no model here")
        return any_segmenter

    c = Controller(_settings(clip_720p), view=view, post=owner.post, open_segmenter=open_segmenter)
    c.start_engine()
    owner.pump_until(lambda: not c.starting)
    assert c.pipeline is None and c.error == "no model here" and view.changes[-1] == "engine"
    assert c.status()["camera"] == "stopped"
    c.start_engine()
    owner.pump_until(lambda: c.pipeline is not None)
    assert c.error == ""
    c.stop()


def test_status_is_a_snapshot_that_changes_nothing(app):
    c, owner, view, frames = app
    time.sleep(1.2)
    first = [c.pipeline.status() for _ in range(50)]     # many readers at once (window, tray, ctl)
    assert len({s.fps for s in first}) <= 2 and first[-1].fps > 0
    assert c.status()["fps"] > 0 and c.status()["camera"] == "live"
    assert np.isfinite(first[-1].latency_ms) and "fps" in first[-1].line()
