import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from vbg.matting.segment import Segmenter

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VBG_SHARED", ROOT.parent / "shared"))
MODEL = SHARED / "models" / "pphumanseg_v2_portrait_lite_256x144.onnx"
DATA = SHARED / "data"
CLIP_720P = DATA / "clips" / "indoor_woman_1280x720.mp4"
PORTRAIT_CLIP = DATA / "clips" / "selfie_portrait_720x1280.mp4"
VIDEO_GT = DATA / "video_gt" / "d0_office08"
STILLS = DATA / "stills"
BACKGROUND = DATA / "backgrounds" / "office_01.jpg"


def pytest_configure(config):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    config.addinivalue_line("markers", "integration: needs ../shared (the real model and footage)")


def pytest_collection_modifyitems(config, items):
    """Logic tests run anywhere; integration tests need ../shared. CI always has it (.ci/run), so
    there nothing is skipped; on a checkout without it, they are skipped with the reason."""
    if MODEL.is_file():
        return
    skip = pytest.mark.skip(reason=f"needs {MODEL}: put ../shared beside the checkout or set VBG_SHARED")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """No test reads or writes the real user cache, config or control socket."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("VBG_MODEL", str(MODEL))
    runtime = tempfile.mkdtemp(prefix="vbg")        # short: a socket path must fit in 108 bytes
    os.chmod(runtime, 0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
    yield
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def xvfb():
    """An X server of the test's own (Xvfb, on a display number it picks itself): the one place tests
    get a real display for the window, the tray and global hotkeys."""
    import select

    binary = need_tool("Xvfb", "xvfb")
    read_end, write_end = os.pipe()
    proc = subprocess.Popen([binary, "-displayfd", str(write_end), "-screen", "0", "1600x900x24", "-nolisten", "tcp"],
                            pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 30)     # it writes the number once it takes clients
        number = os.read(read_end, 16).decode().strip() if ready else ""
        assert number, "Xvfb did not start within 30 s"
        yield f":{number}"
    finally:
        os.close(read_end)
        proc.terminate()
        proc.wait()


def start_tray(display: str) -> subprocess.Popen:
    """trayer on `display`: a real XEmbed system tray, as in many desktops' panels."""
    need_tool("trayer", "trayer")
    return subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--width", "10", "--height", "24"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, DISPLAY=display))


@pytest.fixture(scope="session")
def segmenter():
    from vbg.model import ModelSpec
    from vbg.matting.segment import Segmenter

    return Segmenter(MODEL, ModelSpec.load(), device="cpu")


def need_tool(tool: str, package: str) -> str:
    """The path of a system tool a test needs. Missing, the test is skipped with one line naming the
    package to install; under CI=true it fails instead, so CI never hides a missing install step."""
    path = shutil.which(tool)
    if path:
        return path
    message = f"{tool} is missing: install the {package} package (.ci/run does)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def need_module(module: str, package: str) -> None:
    """As `need_tool`, for a Python module that only an extra or a system package brings."""
    import importlib.util

    if importlib.util.find_spec(module) is None:  # found, not imported: pynput needs a display to import
        message = f"Python module {module} is missing: install {package} (.ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def run_vbg(*args, env_extra=None, timeout=120):
    """Runs the real `vbg` CLI in a subprocess; returns CompletedProcess."""
    env = dict(os.environ, VBG_MODEL=str(MODEL), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "vbg", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


class FakeSegmenter(Segmenter):
    """The real Segmenter's letterboxing with no model behind it, for logic tests on a checkout without
    ../shared: P(person) is a fixed soft ellipse, a head and shoulders rising from the bottom of the
    model's input. The only fake of a segmenter in the tests; with ../shared present the real one runs."""

    def __init__(self):  # no session: everything else as Segmenter sets it up
        from vbg.model import ModelSpec
        from vbg.models import load_model

        self.model = load_model(ModelSpec.load().name)
        self.spec = self.model.spec
        self.keep_aspect, self.threads = True, 1
        self.provider, self.provider_note = "CPUExecutionProvider", "CPU (a fake segmenter: no model)"
        _, _, h, w = self.spec.input_shape
        self.padded = np.full((h, w, 3), 128, np.uint8)
        self._scratch, self._frame_shape, self._bars_covered, self._narrowed = {}, None, False, None
        self.grid, self.roi = (h, w), (0, 0, w, h)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        distance = np.hypot((xx - w / 2) / (0.22 * w), (yy - h) / (0.75 * h))
        self._person = np.clip((1.0 - distance) * 8.0, 0.0, 1.0).astype(np.float32)

    def infer(self) -> np.ndarray:
        x, y, vw, vh = self.roi
        prob = self._person[y:y + vh, x:x + vw]
        if self._narrowed is None:
            return prob
        cv2.resize(prob, self._narrowed.shape[::-1], dst=self._narrowed, interpolation=cv2.INTER_AREA)
        return self._narrowed

    def infer_view(self, view: np.ndarray) -> np.ndarray:
        return self._person


@pytest.fixture(scope="session")
def any_segmenter(request):
    """The real segmenter where ../shared is (CI always), else the fake: for tests of the pipeline's
    logic (pause, idle, the virtual camera, cards) that do not judge the cut-out."""
    return request.getfixturevalue("segmenter") if MODEL.is_file() else FakeSegmenter()


@pytest.fixture(scope="session")
def clip_720p(tmp_path_factory):
    """The 720p talking-head clip from ../shared, else a generated one of the same size."""
    if CLIP_720P.is_file():
        return CLIP_720P
    from vbg.bench import synthetic_clip

    return synthetic_clip(tmp_path_factory.mktemp("clip"), 1280, 720, frames=60)
