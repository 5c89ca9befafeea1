"""The virtual camera through pyvirtualcam's real native code.

This machine has no /dev/video and cannot load v4l2loopback, so ../shared/tools/fakev4l2 (an
LD_PRELOAD shim over open/ioctl/close) stands in for the kernel device: pyvirtualcam probes it, sets
the format and writes I420 frames, which land in a file we read back. Only the kernel is fake.
"""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import CLIP_720P, MODEL, SHARED, need_tool, run_vbg
from vbg.outputs.sinks import Recorder
from vbg.outputs.v4l2 import ReaderWatcher



@pytest.fixture(scope="module")
def fakev4l2(tmp_path_factory):
    lib = tmp_path_factory.mktemp("fakev4l2") / "libfakev4l2.so"
    gcc = need_tool("gcc", "gcc (and libc6-dev)")
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-o", str(lib), str(SHARED / "tools/fakev4l2/fakev4l2.c"),
                    "-ldl"], check=True)
    return lib


def _fake_env(lib, device, out):
    return {"LD_PRELOAD": str(lib), "FAKE_V4L2_DEVICE": str(device), "FAKE_V4L2_OUT": str(out)}


@pytest.mark.integration
def test_frames_reach_the_virtual_camera_as_i420_with_the_right_colours(fakev4l2, tmp_path):
    out = tmp_path / "vcam.yuv"
    r = run_vbg("run", "--input", CLIP_720P, "--frames", 12, "--background", "color:#0000ff",
                "--vcam-device", "/dev/video7", env_extra=_fake_env(fakev4l2, "/dev/video7", out))
    assert r.returncode == 0, r.stderr
    assert "S_FMT" in r.stderr and "1280x720" in r.stderr and "YU12" in r.stderr
    w, h = 1280, 720
    size = w * h * 3 // 2
    data = np.fromfile(out, np.uint8)
    assert len(data) >= 12 * size and len(data) % size == 0
    frame = data[-size:]
    y = frame[: w * h].reshape(h, w)
    u = frame[w * h: w * h + w * h // 4].reshape(h // 2, w // 2)
    v = frame[w * h + w * h // 4:].reshape(h // 2, w // 2)
    # the room (top-left) is replaced by pure blue: BT.601 limited range Y=41 U=239 V=110
    assert abs(int(np.median(y[:60, :60])) - 41) <= 3
    assert abs(int(np.median(u[:30, :30])) - 239) <= 3 and abs(int(np.median(v[:30, :30])) - 110) <= 3
    # the person (centre) is not blue
    assert np.median(u[h // 4: h // 2, w // 4 - 40: w // 4 + 40]) < 200
    # before the first composite, a neutral card: call apps see the device (exclusive_caps=1) at once
    first = data[:size]
    assert abs(int(np.median(first[: w * h])) - 43) <= 3 and abs(int(np.median(first[w * h:])) - 128) <= 2


@pytest.mark.integration
def test_odd_width_is_made_even_for_browsers(fakev4l2, tmp_path):
    clip = tmp_path / "odd.avi"
    import cv2
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 25, (321, 240))
    for i in range(6):
        writer.write(np.full((240, 321, 3), 40 * i, np.uint8))
    writer.release()
    r = run_vbg("run", "--input", clip, "--frames", 4, "--background", "none", "--vcam-device", "/dev/video7",
                env_extra=_fake_env(fakev4l2, "/dev/video7", tmp_path / "o.yuv"))
    assert r.returncode == 0, r.stderr
    assert "320x240" in r.stderr


@pytest.mark.integration
def test_camera_and_model_idle_while_nobody_watches_and_resume_when_an_app_opens(fakev4l2, tmp_path):
    device = tmp_path / "video9"          # a real file stands for the device node, so inotify sees opens
    device.touch()
    out = tmp_path / "vcam.yuv"
    env = dict(os.environ, VBG_MODEL=str(MODEL), **_fake_env(fakev4l2, device, out))
    proc = subprocess.Popen([sys.executable, "-m", "vbg", "run", "--input", str(CLIP_720P), "--loop",
                             "--duration", "10", "--status-every", "1", "--vcam-device", str(device)],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(4.5)                   # past the 2 s grace: idle by now
        idle_size = out.stat().st_size
        time.sleep(2.0)
        frame_bytes = 1280 * 720 * 3 // 2                  # I420
        assert out.stat().st_size - idle_size <= 3 * frame_bytes  # idle: the "starting" card once a second
        with open(device, "rb"):          # an app opens the virtual camera
            time.sleep(2.0)
            assert out.stat().st_size > idle_size         # frames flow again
    finally:
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "no readers (idle)" in err and "resuming" in err


@pytest.mark.integration
def test_missing_loopback_device_exits_2_with_the_fix(tmp_path):
    missing = tmp_path / "video99"
    r = run_vbg("run", "--input", CLIP_720P, "--frames", 3, "--vcam-device", missing)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    error = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(error) == 1 and f"{missing} does not exist" in error[0] and "--no-vcam" in error[0]
    assert fix_for_this_machine() in error[0]


def fix_for_this_machine() -> str:
    """The install advice where no loopback device exists; on a desktop with one, its state instead."""
    from vbg.outputs import loopback
    devices = loopback.loopback_devices()
    return devices[0].describe() if devices else "modprobe v4l2loopback"


def test_reader_watcher_counts_other_processes_that_open_the_device(tmp_path):
    device = tmp_path / "video3"
    device.touch()
    hold = "import sys, time; f = open(sys.argv[1], 'rb'); print('open', flush=True); time.sleep(30)"
    watcher = ReaderWatcher(str(device)).start()
    readers = []
    try:
        assert watcher.available
        with open(device, "rb"):                          # our own handle never counts
            time.sleep(0.3)
            assert watcher.readers == 0
        # two apps opening at once: inotify merges their events, the count must not
        readers = [subprocess.Popen([sys.executable, "-c", hold, str(device)], stdout=subprocess.PIPE, text=True)
                   for _ in range(2)]
        for p in readers:
            assert p.stdout.readline().strip() == "open"
        deadline = time.time() + 3
        while watcher.readers < 2 and time.time() < deadline:
            time.sleep(0.02)
        assert watcher.readers == 2
        readers[0].kill()
        readers[0].wait()
        deadline = time.time() + 3
        while watcher.readers != 1 and time.time() < deadline:
            time.sleep(0.02)
        assert watcher.readers == 1
    finally:
        for p in readers:
            p.kill()
            p.wait()
        watcher.close()


def test_record_writes_a_playable_video(tmp_path):
    import cv2
    path = tmp_path / "out.avi"
    rec = Recorder(str(path), 64, 48, 25)
    for i in range(5):
        rec.send(np.full((48, 64, 3), 50 * i, np.uint8))
    rec.close()
    cap = cv2.VideoCapture(str(path))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5


def test_library_messages_are_cut_at_a_word_never_mid_word():
    from vbg.errors import brief

    long = ("'/dev/video0' is not a video loopback device. See also pyvirtualcam's documentation for how to "
            "install and configure v4l2loopback with exclusive_caps and card labels on your distribution.")
    assert brief(long, 140) == "'/dev/video0' is not a video loopback device."
    words = "word " * 60
    cut = brief(words, 50)
    assert cut.endswith("…") and len(cut) <= 50 and cut[:-1].split() == ["word"] * len(cut[:-1].split())
    assert brief(RuntimeError("")) == "RuntimeError" and brief("one\ntwo") == "one"
