"""The window: real Qt widgets offscreen (pytest-qt), and the real app under Xvfb driven by `vbg ctl`."""

import json
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt

from conftest import CLIP_720P, MODEL, run_vbg
from vbg.app import gallery
from vbg.app.window import MainWindow
from vbg.settings import Settings

pytestmark = pytest.mark.integration  # the real model and footage from ../shared


def _settings(**output):
    s = Settings()
    s.capture.input, s.capture.loop = str(CLIP_720P), True
    s.output.vcam = False
    for k, v in output.items():
        setattr(s.composite if k in ("background", "mirror") else s.output, k, v)
    return s


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(_settings(), save_path=tmp_path / "settings.json")
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.tap.shown > 2, timeout=30000)     # frames reach the preview
    yield w
    w.close()


def _key(qtbot, window, key):
    window.activateWindow()
    qtbot.keyClick(window, key)


def test_shortcuts_switch_background_mirror_and_pause(window, qtbot):
    names = [c.spec for c in window.choices]
    _key(qtbot, window, Qt.Key.Key_3)
    assert window.settings.composite.background == names[2]
    _key(qtbot, window, Qt.Key.Key_N)
    assert window.settings.composite.background == names[3]
    _key(qtbot, window, Qt.Key.Key_Left)
    assert window.settings.composite.background == names[2]
    _key(qtbot, window, Qt.Key.Key_B)
    assert window.settings.composite.background == "blur"
    _key(qtbot, window, Qt.Key.Key_O)
    assert window.settings.composite.background == "none"
    assert window.gallery_list.currentRow() == names.index("none")          # the current one is highlighted
    _key(qtbot, window, Qt.Key.Key_M)
    assert window.mirror.isChecked() and window.pipeline.settings.composite.mirror and window.pipeline.chain.compositor.mirror
    _key(qtbot, window, Qt.Key.Key_Space)
    assert window.pipeline.paused and window.pause_button.text() == "Resume"
    _key(qtbot, window, Qt.Key.Key_Space)
    assert not window.pipeline.paused


def test_preview_drops_frames_instead_of_queueing(window, qtbot):
    window.tap._busy.set()                       # the window is "busy": the engine must not wait for it
    frames = window.pipeline.counters.frames_out
    qtbot.waitUntil(lambda: window.pipeline.counters.frames_out > frames + 5, timeout=10000)
    assert window.tap.skipped > 0
    window.tap._busy.clear()


def test_view_modes_show_camera_and_side_by_side(window, qtbot):
    window.view.setCurrentIndex(window.view.findData("side"))
    qtbot.waitUntil(lambda: len(window.preview.images) == 2, timeout=5000)
    window.view.setCurrentIndex(window.view.findData("camera"))
    qtbot.waitUntil(lambda: len(window.preview.images) == 1, timeout=5000)


def test_broken_and_added_backgrounds(window, qtbot, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not an image")
    gallery.user_folder().mkdir(parents=True, exist_ok=True)
    shutil.copy(broken, gallery.user_folder() / "broken.jpg")
    window._refresh_gallery()
    row = next(i for i, c in enumerate(window.choices) if c.path and c.path.name == "broken.jpg")
    assert "(broken)" in window.gallery_list.item(row).text()
    before = window.settings.composite.background
    assert not window.select_index(row)                                     # refused, not a crash
    assert window.settings.composite.background == before
    good = tmp_path / "beach.png"
    cv2.imwrite(str(good), np.full((90, 160, 3), (30, 140, 220), np.uint8))
    window.add_backgrounds([good, broken])
    assert (gallery.user_folder() / "beach.png").exists()
    assert window.settings.composite.background.endswith("beach.png")


def test_settings_persist_and_flags_last_one_run(qtbot, tmp_path):
    path = tmp_path / "settings.json"
    saved = Settings()
    saved.composite.background = "color:#2f3640"
    run = _settings(background="blur:70")                                   # a flag for this run
    w = MainWindow(run, saved=saved, save_path=path)
    qtbot.addWidget(w)
    w.smoothing.setValue(40)
    w.mirror.setChecked(True)
    w.close()
    data = json.loads(path.read_text())
    assert data["smooth"]["strength"] == 0.4 and data["composite"]["mirror"] is True
    assert data["composite"]["background"] == "color:#2f3640"                   # the flag was not saved
    again = Settings.load(path)
    assert again.smooth.strength == 0.4 and again.composite.mirror


def test_missing_virtual_camera_shows_the_fix_and_retry(qtbot, tmp_path):
    settings = _settings(vcam=True)
    settings.output.vcam_device = str(tmp_path / "video99")                 # missing on any machine
    w = MainWindow(settings, save_path=tmp_path / "s.json")
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.tap.shown > 0, timeout=30000)                # the preview runs on
    w._update_status()
    assert w.vcam_panel.isVisibleTo(w)
    assert "video99 does not exist" in w.vcam_text.text() and "Retry" in w.vcam_text.text()
    w.close()


def test_ctl_talks_to_the_window(window, qtbot, tmp_path):
    from vbg.app.control import ControlServer

    server = ControlServer(window.handle_command)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "vbg", "ctl", "select", "mint"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        qtbot.waitUntil(lambda: proc.poll() is not None, timeout=20000)
        assert proc.returncode == 0, proc.stderr.read()
        assert window.settings.composite.background.endswith("mint.jpg")
        proc = subprocess.Popen([sys.executable, "-m", "vbg", "ctl", "status"], stdout=subprocess.PIPE, text=True)
        qtbot.waitUntil(lambda: proc.poll() is not None, timeout=20000)
        status = json.loads(proc.stdout.read())
        assert status["background"] == "mint" and status["provider"] == "CPUExecutionProvider"
        assert "virtual_camera" in status and "fps" in status
        mode = os.stat(server.name).st_mode & 0o777
        assert mode == 0o600                                                 # only this user
    finally:
        server.close()


def test_window_without_a_display_is_a_one_line_error():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    r = subprocess.run([sys.executable, "-m", "vbg"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "no display" in r.stderr and "vbg run" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_ctl_without_app_says_so():
    r = run_vbg("ctl", "next")
    assert r.returncode == 1 and "not running" in r.stderr and "Traceback" not in r.stderr


@pytest.fixture
def xvfb():
    binary = shutil.which("Xvfb")
    assert binary, "Xvfb is missing: .ci/run installs it (apt package xvfb)"
    display = f":{90 + os.getpid() % 50}"
    proc = subprocess.Popen([binary, display, "-screen", "0", "1600x900x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    yield display
    proc.terminate()
    proc.wait()


def _ctl(*args, env):
    r = subprocess.run([sys.executable, "-m", "vbg", "ctl", *args], capture_output=True, text=True, env=env, timeout=30)
    return r


def test_real_app_under_xvfb_switches_background_on_vbg_ctl(xvfb, tmp_path):
    env = dict(os.environ, DISPLAY=xvfb, VBG_MODEL=str(MODEL))
    env.pop("QT_QPA_PLATFORM", None)                                        # the real xcb platform
    app = subprocess.Popen([sys.executable, "-m", "vbg", "gui", "--input", str(CLIP_720P), "--loop", "--no-vcam",
                            "-b", "color:#00b140"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = _ctl("status", env=env)
            if r.returncode == 0 and json.loads(r.stdout)["fps"] > 0:
                break
            time.sleep(0.5)
        assert r.returncode == 0, r.stderr
        assert _ctl("snapshot", tmp_path / "before.png", env=env).returncode == 0
        assert _ctl("next", env=env).returncode == 0
        time.sleep(0.5)
        assert _ctl("snapshot", tmp_path / "after.png", env=env).returncode == 0
        assert _ctl("screenshot", tmp_path / "window.png", env=env).returncode == 0
        second = subprocess.run([sys.executable, "-m", "vbg", "gui"], capture_output=True, text=True, env=env,
                                timeout=60)
        assert second.returncode == 0 and "already running" in second.stderr
    finally:
        app.terminate()
        _, err = app.communicate(timeout=20)
    assert app.returncode == 0, err
    before, after = cv2.imread(str(tmp_path / "before.png")), cv2.imread(str(tmp_path / "after.png"))
    corner_before, corner_after = before[:80, :80].reshape(-1, 3).mean(0), after[:80, :80].reshape(-1, 3).mean(0)
    assert abs(corner_before[1] - 177) < 20 and corner_before[2] < 40        # green screen #00b140 (BGR)
    assert np.abs(corner_after - corner_before).max() > 60                   # the background really changed
    shot = cv2.imread(str(tmp_path / "window.png"))
    assert shot is not None and shot.shape[0] > 400 and shot.shape[1] > 800
    artifacts = os.environ.get("VBG_ARTIFACTS")
    if artifacts:
        shutil.copy(tmp_path / "window.png", artifacts)


def test_global_hotkeys_on_x11_switch_the_background(xvfb):
    xdotool = shutil.which("xdotool")
    assert xdotool, "xdotool is missing: .ci/run installs it"
    env = dict(os.environ, DISPLAY=xvfb, VBG_MODEL=str(MODEL))
    env.pop("QT_QPA_PLATFORM", None)
    app = subprocess.Popen([sys.executable, "-m", "vbg", "gui", "--input", str(CLIP_720P), "--loop", "--no-vcam",
                            "-b", "color:#00b140"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _ctl("status", env=env).returncode != 0:
            time.sleep(0.5)
        time.sleep(0.5)                                   # the pynput listener starts with the window

        def background_after(keys):
            subprocess.run([xdotool, "key", keys], env=env, check=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                status = json.loads(_ctl("status", env=env).stdout)
                if status["background"] != "Green screen":
                    return status["background"]
                time.sleep(0.2)
            return status["background"]

        assert background_after("ctrl+alt+b") == "Blur"
    finally:
        app.terminate()
        _, err = app.communicate(timeout=20)
    assert "global hotkeys: Ctrl+Alt+N next background, Ctrl+Alt+P previous background" in err


def test_changes_made_while_the_engine_starts_are_not_lost(qtbot, tmp_path):
    w = MainWindow(_settings(), save_path=tmp_path / "s.json")
    qtbot.addWidget(w)
    assert w.pipeline is None                                   # still starting (model, camera)
    w.mirror.setChecked(True)
    w.refine.setChecked(False)
    qtbot.waitUntil(lambda: w.pipeline is not None, timeout=30000)
    chain = w.pipeline.chain
    assert chain.compositor.mirror and not chain.compositor.refiner.settings.refine
    assert w.pipeline.settings.composite.mirror and w.settings.composite.mirror
    w.close()


def test_every_command_in_the_table_has_a_handler_and_ctl_offers_the_public_ones(window):
    from vbg.app.commands import COMMANDS, PUBLIC_VERBS
    from vbg.cli import build_parser

    assert all(callable(getattr(window, f"cmd_{c.verb}", None)) for c in COMMANDS)
    assert window.handle_command("no-such-verb", [])["ok"] is False
    ctl = next(a for a in build_parser()._subparsers._group_actions[0].choices["ctl"]._actions
               if a.dest == "ctl_command")
    assert tuple(ctl.choices) == PUBLIC_VERBS and "raise" not in PUBLIC_VERBS
    assert window.handle_command("mirror", [])["ok"] and window.mirror.isChecked()


def test_ctl_paths_are_resolved_in_the_callers_folder(tmp_path, monkeypatch):
    """`vbg ctl snapshot rel.png` landed in the window's working folder, not the caller's."""
    import vbg.app.control as control
    from vbg import cli

    sent = []
    monkeypatch.setattr(control, "send", lambda command, args: sent.append((command, args)) or {"ok": True})
    monkeypatch.chdir(tmp_path)
    assert cli.main(["ctl", "snapshot", "rel.png"]) == 0
    assert sent[-1] == ("snapshot", [str(tmp_path / "rel.png")])
