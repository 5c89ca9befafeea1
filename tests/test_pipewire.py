"""The PipeWire camera against real daemons: pipewire and WirePlumber on a private session bus, vbg
publishing through pipewiresink, GStreamer's pipewiresrc as the call app, pw-dump as the inspector."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from vbg.outputs.pipewire import pw_dump_objects

from conftest import CLIP_720P, MODEL, need_module, need_tool


W, H = 1280, 720  # the clip's size
TOOLS = (("dbus-daemon", "dbus"), ("pipewire", "pipewire"), ("wireplumber", "wireplumber"),
         ("pw-dump", "pipewire-bin"), ("gst-launch-1.0", "gstreamer1.0-tools"))


def _start_daemons(env):
    procs = [subprocess.Popen(["pipewire"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    socket = Path(env["XDG_RUNTIME_DIR"]) / "pipewire-0"
    deadline = time.monotonic() + 10
    while not socket.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert socket.exists(), "pipewire did not start"
    procs.append(subprocess.Popen(["wireplumber"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)                     # WirePlumber links consumers; without it they never get a frame
    return procs


def _stop(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture
def pipewire_env():
    for tool, package in TOOLS:
        need_tool(tool, package)
    need_module("gi", "vbg's pipewire extra: pip install '.[pipewire]' (it builds against libgirepository1.0-dev "
                "and libcairo2-dev)")
    runtime = tempfile.mkdtemp(prefix="vbgpw")
    os.chmod(runtime, 0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=runtime, DBUS_SESSION_BUS_ADDRESS=f"unix:path={runtime}/bus",
               VBG_MODEL=str(MODEL), PIPEWIRE_DEBUG="0")
    env.pop("PIPEWIRE_REMOTE", None)
    dbus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", f"--address=unix:path={runtime}/bus"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    daemons = _start_daemons(env)
    yield env, daemons
    _stop(daemons + [dbus])
    shutil.rmtree(runtime, ignore_errors=True)


def _node(env, name="vbg"):
    out = subprocess.run(["pw-dump", "--no-colors"], capture_output=True, text=True, env=env, timeout=10).stdout
    for o in pw_dump_objects(out):
        props = (o.get("info") or {}).get("props", {})
        if o.get("type") == "PipeWire:Interface:Node" and props.get("node.name") == name:
            return o
    return None


def _read_frames(env, count, target="vbg", timeout=20):
    """`count` frames through pipewiresrc, as BGR (decoded from I420 with BT.601, as the caps say)."""
    with tempfile.NamedTemporaryFile(suffix=".i420") as f:
        r = subprocess.run(["gst-launch-1.0", "-q", "pipewiresrc", f"target-object={target}", f"num-buffers={count}",
                            "!", f"video/x-raw,format=I420,width={W},height={H}", "!", "filesink",
                            f"location={f.name}"], env=env, capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, r.stderr
        raw = np.fromfile(f.name, np.uint8)
    frames = raw.reshape(-1, H * 3 // 2, W)
    assert len(frames) == count
    return [cv2.cvtColor(f, cv2.COLOR_YUV2BGR_I420) for f in frames]


def _composited(frame):
    """A person in the middle of a blue (#0000ff) room: the colour survived I420 both ways."""
    corners = np.concatenate([frame[:40, :40].reshape(-1, 3), frame[:40, -40:].reshape(-1, 3)])
    blue = np.abs(corners.astype(int) - (255, 0, 0)).max() <= 6
    middle = frame[H // 3: 2 * H // 3, W // 2 + 40: W // 2 + 160].reshape(-1, 3).astype(int)
    person = (np.abs(middle - (255, 0, 0)).max(axis=1) > 60).mean() > 0.8
    return blue and person


def _vbg(env, *extra, log):
    return subprocess.Popen([sys.executable, "-m", "vbg", "run", "--input", str(CLIP_720P), "--loop", "-b", "color:#0000ff", "--vcam-backend", "pipewire", "--status-every", "1",
                             *extra], env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.integration
def test_pipewire_camera_is_listed_read_by_two_apps_reconnected_and_survives_a_daemon_restart(pipewire_env,
                                                                                                tmp_path):
    env, daemons = pipewire_env
    log_path = tmp_path / "vbg.log"
    with open(log_path, "w") as log:
        vbg = _vbg(env, "--always-on", "--duration", "120", log=log)
    try:
        node = _wait(lambda: _node(env), 60, "vbg's node in pw-dump")
        props = node["info"]["props"]
        assert props["media.class"] == "Video/Source" and props["media.role"] == "Camera"
        assert props["node.description"] == "vbg virtual camera"

        frames = _read_frames(env, 10)
        assert _composited(frames[-1]), "not a person over blue"
        out = tmp_path / "pipewire-frame.png"
        cv2.imwrite(str(out), frames[-1])
        if os.environ.get("VBG_ARTIFACTS"):
            shutil.copy(out, os.environ["VBG_ARTIFACTS"])

        # two apps at once
        with tempfile.NamedTemporaryFile(suffix=".i420") as a, tempfile.NamedTemporaryFile(suffix=".i420") as b:
            readers = [subprocess.Popen(["gst-launch-1.0", "-q", "pipewiresrc", "target-object=vbg", "num-buffers=30",
                                         "!", f"video/x-raw,format=I420,width={W},height={H}", "!", "filesink",
                                         f"location={f.name}"], env=env) for f in (a, b)]
            for r in readers:
                assert r.wait(timeout=30) == 0
            for f in (a, b):
                both = np.fromfile(f.name, np.uint8).reshape(-1, H * 3 // 2, W)
                assert len(both) == 30 and _composited(cv2.cvtColor(both[-1], cv2.COLOR_YUV2BGR_I420))

        for _ in range(3):                                   # an app closing and opening the camera again
            assert _composited(_read_frames(env, 5)[-1])

        # the daemon restarts mid-call (a desktop update, a crash): vbg publishes again by itself
        _stop(daemons)
        time.sleep(1.0)
        daemons[:] = _start_daemons(env)
        _wait(lambda: _node(env), 30, "vbg's node after the daemon restarted")
        assert _composited(_read_frames(env, 5)[-1])
        assert vbg.poll() is None
    finally:
        vbg.send_signal(signal.SIGINT)
        vbg.wait(timeout=30)
    text = log_path.read_text()
    assert "the PipeWire daemon restarted" in text and "virtual camera pipewire:vbg is back" in text
    assert "Traceback" not in text


@pytest.mark.integration
def test_pipewire_camera_idles_without_consumers_and_resumes_for_one(pipewire_env, tmp_path):
    env, _ = pipewire_env
    log_path = tmp_path / "vbg.log"
    with open(log_path, "w") as log:
        vbg = _vbg(env, "--duration", "60", log=log)
    try:
        _wait(lambda: _node(env), 60, "vbg's node")
        _wait(lambda: "camera off: no app is reading the virtual camera" in log_path.read_text(), 20, "idle")
        frames = _read_frames(env, 45)                    # 1.5 s: the first may be the 'starting' card
        assert _composited(frames[-1])
        assert "an app opened the virtual camera: resuming" in log_path.read_text()
    finally:
        vbg.send_signal(signal.SIGINT)
        vbg.wait(timeout=30)


@pytest.mark.integration
def test_without_a_pipewire_daemon_the_error_says_so(tmp_path):
    need_module("gi", "vbg's pipewire extra: pip install '.[pipewire]' (without it, vbg says that first)")
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path), VBG_MODEL=str(MODEL))
    r = subprocess.run([sys.executable, "-m", "vbg", "run", "--input", str(CLIP_720P), "--frames", "5",
                        "--vcam-backend", "pipewire"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"the PipeWire daemon is not running (no {tmp_path}/pipewire-0)" in r.stderr


@pytest.mark.integration
def test_window_switches_the_virtual_camera_to_pipewire_live(pipewire_env, qtbot, tmp_path, monkeypatch):
    from vbg.app.window import MainWindow
    from vbg.settings import Settings

    env, _ = pipewire_env
    for key in ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"):
        monkeypatch.setenv(key, env[key])
    s = Settings()
    s.capture.input, s.capture.loop = str(CLIP_720P), True
    s.output.vcam_device = str(tmp_path / "video99")            # no loopback device here
    s.output.idle_when_unwatched = False
    s.composite.background = "color:#0000ff"
    w = MainWindow(s, save_path=tmp_path / "s.json")
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.controller.pipeline is not None and w.controller.pipeline.vcam.error is not None, timeout=60000)
    w.engine.vcam_backend.setCurrentIndex(w.engine.vcam_backend.findData("pipewire"))
    w.controller.settings.output.vcam_device = None
    w.controller._apply()
    qtbot.waitUntil(lambda: _node(env) is not None, timeout=20000)
    assert _composited(_read_frames(env, 5)[-1])
    assert json.loads((tmp_path / "s.json").read_text())["output"]["vcam_backend"] == "pipewire"
    w._update_status()
    assert "virtual camera on" in w.status.text() and "pipewire:vbg" in w.engine.vcam_state.text()
    w.close()


def test_pw_dump_output_with_updates_after_the_first_array_is_merged_by_id():
    """pw-dump follows its first array with more when the graph changes while it dumps (seen in CI:
    "Extra data" from json.loads): each later object is the newer state of one listed, or gone."""
    node = {"id": 39, "type": "PipeWire:Interface:Node", "info": {"props": {"node.name": "vbg"}}}
    link = {"id": 50, "type": "PipeWire:Interface:Link", "info": {"output-node-id": 39, "input-node-id": 41}}
    newer = {"id": 39, "type": "PipeWire:Interface:Node", "info": {"props": {"node.name": "vbg", "state": "running"}}}
    text = "\n".join([json.dumps([{"id": 0, "type": "PipeWire:Interface:Core", "info": {}}, node, link], indent=2),
                      json.dumps([newer, {"id": 50, "info": None}], indent=2), ""])
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    objects = pw_dump_objects(text)
    assert [o["id"] for o in objects] == [0, 39] and objects[1] == newer
    assert pw_dump_objects("") == [] and pw_dump_objects("[]\n") == []
