"""The `vbg` command: render of a video, a folder and an image; bench; devices; one-line errors."""

import json
import shutil

import cv2
import numpy as np
import pytest

from conftest import BACKGROUND, SHARED, STILLS, VIDEO_GT, run_vbg



def _one_line_error(r):
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 or lines[-1].startswith("vbg: error"), r.stderr
    return lines[-1]


@pytest.mark.integration
def test_render_video_processes_every_frame_in_order_and_writes_alphas(tmp_path):
    out, alphas = tmp_path / "out.avi", tmp_path / "alpha"
    r = run_vbg("render", VIDEO_GT / "input.avi", "-o", out, "--alpha-dir", alphas, "-b", BACKGROUND)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in alphas.iterdir())
    assert names == [f"{i:06d}.png" for i in range(78)]
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 78
    truth = cv2.imread(str(VIDEO_GT / "alpha" / "000040.png"), cv2.IMREAD_GRAYSCALE) > 127
    pred = cv2.imread(str(alphas / "000040.png"), cv2.IMREAD_GRAYSCALE) > 127
    assert (truth & pred).sum() / (truth | pred).sum() > 0.9
    again, blurred = tmp_path / "again", tmp_path / "blurred"
    run_vbg("render", VIDEO_GT / "input.avi", "-o", tmp_path / "o2.avi", "--alpha-dir", again, "-b", BACKGROUND, "-q")
    assert np.array_equal(cv2.imread(str(again / "000077.png")), cv2.imread(str(alphas / "000077.png")))
    # --edge auto: the fine edge for a replaced room, the standard one under a blur
    run_vbg("render", VIDEO_GT / "input.avi", "-o", tmp_path / "o3.avi", "--alpha-dir", blurred, "-q")
    standard = tmp_path / "standard"
    run_vbg("render", VIDEO_GT / "input.avi", "-o", tmp_path / "o4.avi", "--alpha-dir", standard, "-q",
            "-b", BACKGROUND, "--edge", "standard")
    assert np.array_equal(cv2.imread(str(blurred / "000077.png")), cv2.imread(str(standard / "000077.png")))
    assert not np.array_equal(cv2.imread(str(blurred / "000077.png")), cv2.imread(str(alphas / "000077.png")))


@pytest.mark.integration
def test_render_folder_is_per_image_and_transparent_gives_rgba(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in sorted((STILLS / "images").iterdir())[:3]:
        shutil.copy(name, folder / name.name)
    r = run_vbg("render", folder, "-o", tmp_path / "out", "-b", "transparent", "--alpha-dir", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    outs = sorted((tmp_path / "out").iterdir())
    assert [p.stem for p in outs] == [p.stem for p in sorted(folder.iterdir())]
    rgba = cv2.imread(str(outs[0]), cv2.IMREAD_UNCHANGED)
    assert rgba.shape[2] == 4 and rgba[..., 3].min() < 10 and rgba[..., 3].max() > 245
    # independent images: an image alone gives the same alpha as in the folder
    single = tmp_path / "single.png"
    run_vbg("render", sorted(folder.iterdir())[1], "-o", single, "-b", "transparent")
    assert np.array_equal(cv2.imread(str(single), cv2.IMREAD_UNCHANGED)[..., 3],
                          cv2.imread(str(outs[1]), cv2.IMREAD_UNCHANGED)[..., 3])


@pytest.mark.integration
def test_render_image_with_threshold_erode_feather(tmp_path):
    image = sorted((STILLS / "images").iterdir())[0]
    hard, soft = tmp_path / "hard", tmp_path / "soft"
    assert run_vbg("render", image, "-o", tmp_path / "h.png", "--alpha-dir", hard, "--threshold", "0.5").returncode == 0
    assert run_vbg("render", image, "-o", tmp_path / "s.png", "--alpha-dir", soft, "--threshold", "0.5",
                   "--erode", 4, "--feather", 3).returncode == 0
    h = cv2.imread(str(hard / f"{image.stem}.png"), cv2.IMREAD_GRAYSCALE)
    s = cv2.imread(str(soft / f"{image.stem}.png"), cv2.IMREAD_GRAYSCALE)
    assert set(np.unique(h)) <= {0, 255}
    assert (s > 127).sum() < (h > 127).sum()            # eroded
    assert len(np.unique(s)) > 2                         # feathered


@pytest.mark.integration
def test_bench_json_last_line():
    r = run_vbg("bench", "--frames", 20, "--size", "320x240", "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("fps", "cpu_s_per_frame", "stages_ms", "model_infer_ms", "provider", "size"):
        assert key in result
    assert result["size"] == "320x240" and result["frames"] >= 20 and result["fps"] > 0
    assert set(result["stages_ms"]) >= {"capture", "preprocess", "inference", "smoothing", "composite", "output"}


@pytest.mark.integration
def test_bench_times_an_lfbw_style_reference_beside_it():
    peer = SHARED / "peers" / "mp_selfie_segmentation_landscape_144x256.onnx"
    r = run_vbg("bench", "--frames", 20, "--size", "320x240", "--reference", peer, "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["reference"]["fps"] > 0 and result["reference"]["cpu_s_per_frame"] > 0
    assert "lfbw-style reference, same clip and threads" in r.stdout
    missing = run_vbg("bench", "--frames", 5, "--reference", "nowhere.onnx")
    assert missing.returncode == 2 and "reference model nowhere.onnx does not exist" in missing.stderr


@pytest.mark.integration
def test_devices_says_what_is_missing():
    r = run_vbg("devices")
    assert r.returncode == 0
    assert "CPUExecutionProvider" in r.stdout
    from importlib.metadata import version
    assert f"compositor: the compiled edge pass (numba {version('numba')};" in r.stdout
    from vbg.outputs import loopback
    devices = loopback.loopback_devices()   # a desktop with v4l2loopback loaded lists them instead of the fix
    assert all(d.path in r.stdout for d in devices) if devices else "modprobe v4l2loopback" in r.stdout


@pytest.mark.parametrize("args, words", [
    (["run", "--input", "/no/such.mp4", "--no-vcam"], "does not exist"),
    (["run", "--input", "{clip}", "--no-vcam", "-b", "color:#zz"], "color:#RRGGBB"),
    (["run", "--input", "{clip}", "--no-vcam", "-b", "{broken}"], "background image"),
    (["run", "--size", "12x", "--no-vcam"], "WIDTHxHEIGHT"),
    (["run", "--size", "99999x1", "--no-vcam"], "must each be 16 to 7680 pixels"),
    (["run", "--camera", "-1", "--no-vcam"], "bad camera '-1': use an index"),
    (["render", "{image}", "-o", "{tmp}/o.png", "--model", "{broken}"], "not a usable PP-HumanSeg"),
    (["run", "--fps", "0", "--no-vcam"], "greater than 0"),
    (["run", "--input", "{clip}", "--no-vcam", "--record", "/no/dir/out.mp4"], "not writable"),
    (["render", "/no/such/dir", "-o", "x.png"], "does not exist"),
    (["render", "{image}", "-o", "{tmp}/o.jpg", "-b", "transparent"], ".png"),
    (["bench", "--device", "cuda", "--frames", "5"], "--device cpu"),
])
@pytest.mark.integration
def test_bad_input_gives_one_line_and_exit_2(tmp_path, args, words):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    values = {"clip": VIDEO_GT / "input.avi", "broken": broken, "image": sorted((STILLS / "images").iterdir())[0],
              "tmp": tmp_path}
    r = run_vbg(*[a.format(**values) for a in args])
    assert words in _one_line_error(r)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
@pytest.mark.integration
def test_signals_stop_cleanly(sig, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import MODEL
    env = dict(os.environ, VBG_MODEL=str(MODEL))
    proc = subprocess.Popen([sys.executable, "-m", "vbg", "run", "--input", str(VIDEO_GT / "input.avi"), "--loop",
                             "--no-vcam", "--status-every", "0.5"], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    line = ""
    while "fps" not in line and time.monotonic() < deadline:   # running: a status line came out
        line = proc.stderr.readline()
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 128 + getattr(signal, sig) and "stopped after" in err and "Traceback" not in err


@pytest.mark.parametrize("delay", [0.3, 0.6, 1.0, 1.5])
@pytest.mark.integration
def test_ctrl_c_while_starting_exits_130_without_a_traceback(delay):
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import MODEL
    env = dict(os.environ, VBG_MODEL=str(MODEL))
    proc = subprocess.Popen([sys.executable, "-m", "vbg", "run", "--input", str(VIDEO_GT / "input.avi"), "--loop",
                             "--no-vcam"], stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(delay)                      # importing onnxruntime, loading the model, or starting threads
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "Traceback" not in err


@pytest.mark.integration
def test_unwritable_render_output_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    image = sorted((STILLS / "images").iterdir())[0]
    r = run_vbg("render", image, "-o", locked / "sub" / "o.png")
    locked.chmod(0o700)
    if os_is_root():
        assert r.returncode == 0      # root writes anywhere; the path below covers the message
        r = run_vbg("render", image, "-o", "/proc/vbg-no/o.png")
    assert "cannot" in _one_line_error(r)


def os_is_root():
    import os
    return hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.mark.integration
def test_live_threads_and_render_write_identical_alphas(tmp_path):
    """One chain: the lossless live run (capture, segmentation and compositing threads) and the offline
    render give the same alpha, byte for byte, for every frame."""
    live, offline = tmp_path / "live", tmp_path / "render"
    clip = VIDEO_GT / "input.avi"
    r = run_vbg("run", "--input", clip, "--no-vcam", "--lossless", "--alpha-dir", live, "-b", "color:#000000",
                timeout=300)
    assert r.returncode == 0, r.stderr
    r = run_vbg("render", clip, "-o", tmp_path / "out.avi", "--alpha-dir", offline, "-q", "-b", "color:#000000",
                timeout=300)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in live.iterdir())
    assert len(names) == 78 and names == sorted(p.name for p in offline.iterdir())
    differing = [n for n in names if (live / n).read_bytes() != (offline / n).read_bytes()]
    assert not differing, f"{len(differing)} alphas differ, first {differing[0]}"


@pytest.mark.integration
def test_an_absent_camera_is_an_error_without_a_window(tmp_path):
    missing = tmp_path / "video9"             # a device node path that does not exist, on any machine
    r = run_vbg("run", "--camera", missing, "--no-vcam", "--duration", "5", timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"no camera at {missing}" in _one_line_error(r)


@pytest.mark.integration
def test_truncated_input_renders_what_it_can_and_says_so(tmp_path):
    import cv2
    full, cut = tmp_path / "full.avi", tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter.fourcc(*"MJPG"), 25, (320, 240))
    cap = cv2.VideoCapture(str(VIDEO_GT / "input.avi"))
    for _ in range(40):
        writer.write(cv2.resize(cap.read()[1], (320, 240)))
    writer.release()
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])         # the index says 40 frames; 24 are left
    r = run_vbg("render", cut, "-o", tmp_path / "out.avi", "-q")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "ended after" in r.stderr and "of its 40 frames" in r.stderr


@pytest.mark.integration
def test_interrupted_render_removes_its_partial_video(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import MODEL
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "vbg", "render", str(VIDEO_GT / "input.avi"), "-o", str(out)],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, VBG_MODEL=str(MODEL)))
    deadline = time.monotonic() + 60
    while not out.exists() and time.monotonic() < deadline:   # rendering has begun
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err
    assert not out.exists() and f"removed the partial {out}" in err


@pytest.mark.integration
def test_transparent_video_is_refused_before_rendering_and_a_folder_keeps_the_alpha(tmp_path):
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 25, (320, 180))
    cap = cv2.VideoCapture(str(VIDEO_GT / "input.avi"))
    for _ in range(4):
        writer.write(cv2.resize(cap.read()[1], (320, 180)))
    writer.release()
    r = run_vbg("render", clip, "-o", tmp_path / "out.mp4", "-b", "transparent", "-q")
    assert r.returncode != 0 and "Traceback" not in r.stderr and "name a folder" in r.stderr
    assert not (tmp_path / "out.mp4").exists()                        # refused before anything was written
    r = run_vbg("render", clip, "-o", tmp_path / "frames", "-b", "transparent", "-q")
    assert r.returncode == 0, r.stderr
    frames = sorted((tmp_path / "frames").glob("*.png"))
    assert len(frames) == 4 and cv2.imread(str(frames[0]), cv2.IMREAD_UNCHANGED).shape[2] == 4


def test_a_header_counting_a_frame_more_than_the_stream_is_not_a_failure(monkeypatch, capsys):
    """Transcodes with an audio track often leave the container counting one frame the stream lacks."""
    import argparse

    import vbg.matting.chain
    import vbg.render
    from vbg.cli import cmd_render

    monkeypatch.setattr(vbg.matting.chain, "open_segmenter", lambda settings: None)
    args = argparse.Namespace(input="in.mp4", output="out.mp4", background="blur", alpha_dir=None, quiet=True)
    monkeypatch.setattr("vbg.cli.settings_from_args", lambda a: None)
    monkeypatch.setattr(vbg.render, "render", lambda *a, **k: (183, 184))
    assert cmd_render(args) == 0 and "incomplete" not in capsys.readouterr().err
    monkeypatch.setattr(vbg.render, "render", lambda *a, **k: (24, 40))
    assert cmd_render(args) == 1 and "ended after 24 of its 40 frames" in capsys.readouterr().err


@pytest.mark.integration
def test_devices_names_the_model_in_use_and_auto_without_either_backend_names_both(monkeypatch):
    r = run_vbg("devices")
    assert r.returncode == 0 and f"VBG_MODEL {SHARED / 'models'}" in r.stdout and "(in use)" in r.stdout
    assert "not downloaded yet" not in r.stdout                        # the cache does not matter then
    from vbg import outputs
    from vbg.outputs import loopback, pipewire

    monkeypatch.setattr(loopback, "loopback_devices", lambda: [])
    monkeypatch.setattr(pipewire, "socket_path", lambda: SHARED / "no-such-socket")
    from vbg.errors import VbgError

    with pytest.raises(VbgError, match="neither a v4l2loopback device nor a running PipeWire"):
        outputs.vcam_opener("auto")(1280, 720, 30.0)


def test_every_option_says_what_it_does():
    from vbg.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in [("vbg", parser), *subparsers.items()]:
        for action in sub._actions:
            if action.option_strings and action.dest not in ("help", "version"):
                assert action.help, f"{name} {action.option_strings[0]} has no help text"
        if name != "vbg":
            assert sub.description, f"vbg {name} has no description"
    run_help = subparsers["run"].format_help()
    assert "last choice; blur at first" in " ".join(run_help.split())     # the saved choice wins, and says so
