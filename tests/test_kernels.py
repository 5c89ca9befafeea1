"""The compiled edge pass (vbg/matting/kernels.py) against the OpenCV path it replaces, on real frames and the
real model's masks; and that compiling never holds up a frame."""

import os
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import CLIP_720P
from vbg.backgrounds import SolidColor, parse_background
from vbg.frames import Frame
from vbg.matting import kernels
from vbg.matting.chain import MatteChain
from vbg.matting.composite import Compositor
from vbg.matting.hold import EdgeHold
from vbg.matting.kernels import KERNELS, CompiledKernels
from vbg.matting.regions import EDGE
from vbg.matting.refine import EdgeRefiner
from vbg.settings import RefineSettings, Settings, apply_edge_preset

pytestmark = pytest.mark.skipif(not KERNELS.available, reason="needs numba (a dependency of vbg where it has wheels)")


def _masks(segmenter, size, preset, frames=12):
    settings = Settings()
    apply_edge_preset(settings, preset)
    chain = MatteChain(settings, segmenter, SolidColor((240, 240, 240)))
    cap = cv2.VideoCapture(str(CLIP_720P))
    out = []
    for _ in range(frames):
        ok, image = cap.read()
        assert ok
        frame = Frame()
        frame.image = np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        chain.segment(frame)
        out.append((frame.image, frame.buffers["small"].copy(), frame.buffers["mask"].copy()))
    return chain.refiner.settings, settings.refine.edge_hold, out


@pytest.mark.integration
@pytest.mark.parametrize("preset", ["standard", "fine"])
@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (640, 480)])
def test_the_compiled_pass_gives_the_opencv_paths_alpha_and_output(segmenter, preset, size):
    """Frame after frame with the edge hold on, so that a difference would also carry over. The alpha
    may differ by a level (float rounding of the filter's value; the hold may carry one into the next
    frame's level, at a few pixels: 2); where the alphas agree, the output is the same within a level
    (where they do not, the person's own colour may start a level later)."""
    assert KERNELS.wait(300), KERNELS.error
    matte, hold, masks = _masks(segmenter, size, preset)
    background = parse_background("blur") if preset == "standard" else SolidColor((30, 200, 90))
    runs = {}
    for path in ("opencv", "compiled"):
        comp = Compositor(EdgeRefiner(matte, EdgeHold(hold)), background, compositor=path)
        runs[path] = [(comp.compose(*m).copy(), comp.refiner.alpha.copy(), comp.refiner.shown.copy()) for m in masks]
        assert comp.frames_by_path[path] == len(masks)
    soft = 0
    for (out_o, alpha_o, shown_o), (out_c, alpha_c, shown_c) in zip(runs["opencv"], runs["compiled"]):
        # the cells each path saw as all room or all person, which plan the next frame: at most the
        # few a level of alpha at SOFT_LEVELS moves
        assert (shown_o != shown_c).sum() <= 2
        alpha_diff = np.abs(alpha_o.astype(int) - alpha_c)
        assert alpha_diff.max() <= 2 and (alpha_diff > 1).sum() <= 10
        assert (alpha_diff > 0).mean() < 0.01
        same = alpha_diff == 0
        assert np.abs(out_o.astype(int) - out_c)[same].max() <= 1
        soft += ((alpha_c > 0) & (alpha_c < 255)).sum()
    assert soft > 0.005 * len(masks) * size[0] * size[1]  # a real soft edge was composed


@pytest.mark.integration
@pytest.mark.parametrize("preset", ["standard", "fine"])
def test_the_compiled_grid_solve_gives_the_opencv_solves_filter_and_plan(segmenter, preset):
    """The guided filter solved on the grid (grey guide for the standard edge, colour for the fine one)
    by the compiled kernels and by OpenCV, on the real model's masks: the alpha the coefficients give
    over the grid's own colours differs by at most a tenth of a level, and the frame is cut into the
    same regions. (Over a made-up guide far from the frame's colours the colour guide's coefficients
    may differ more: the OpenCV path's float32 sums make its nearly singular 3x3 systems less exact.)"""
    assert KERNELS.wait(300), KERNELS.error
    matte, _, masks = _masks(segmenter, (1280, 720), preset, frames=6)
    worst = 0.0
    for image, small, mask in masks:
        solved = []
        for compiled in (None, KERNELS):
            refiner = EdgeRefiner(matte)
            regions = refiner.prepare(image, small, mask, None, compiled)
            edge = next(r for r in regions if r.kind == EDGE)
            terms = refiner.grid_terms(image, edge)
            solved.append((terms.a.copy(), terms.b.copy(), regions))
        (a_o, b_o, regions_o), (a_c, b_c, regions_c) = solved
        assert a_o.shape == a_c.shape == mask.shape + ((3,) if preset == "fine" else (1,))
        guide = (small if preset == "fine" else cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)[:, :, None]).astype(np.float32)
        worst = max(worst, float(np.abs((a_o * guide).sum(axis=2) + b_o - (a_c * guide).sum(axis=2) - b_c).max()))
        assert regions_o == regions_c
    print(f"{preset}: at most {worst:.4f} levels apart")
    assert worst <= 0.1


@pytest.mark.integration
def test_frames_compose_with_opencv_while_the_pass_compiles_then_with_it(segmenter, monkeypatch):
    """Compiling takes seconds (the first run, without numba's cache): no frame waits for it."""
    matte, hold, masks = _masks(segmenter, (640, 480), "standard", frames=6)
    release = threading.Event()
    slow = CompiledKernels()
    real_compile = slow._compile
    monkeypatch.setattr(slow, "_compile", lambda: (release.wait(30), real_compile()))
    comp = Compositor(EdgeRefiner(matte, EdgeHold(hold)), SolidColor((0, 0, 0)), compositor="auto")
    comp.kernels = slow
    for m in masks[:3]:
        comp.compose(*m)
    assert comp.frames_by_path == {"compiled": 0, "opencv": 3}
    release.set()
    assert slow.wait(300), slow.error
    for m in masks[3:]:
        comp.compose(*m)
    assert comp.frames_by_path == {"compiled": 3, "opencv": 3}


def test_a_failed_compile_ends_the_wait_and_opencv_composes_every_frame(monkeypatch, caplog):
    """A render waits for the compiled pass (one path for the whole run): a compile that fails must end
    that wait, not hang the render."""
    def broken(*functions):
        raise RuntimeError("cannot cache function: no locator available")
    monkeypatch.setattr(kernels, "_warm_up", broken)
    failing = CompiledKernels()
    image = np.full((144, 256, 3), 100, np.uint8)
    mask = np.zeros((144, 256), np.float32)
    mask[40:, 80:180] = 1.0
    comp = Compositor(EdgeRefiner(RefineSettings()), SolidColor((0, 0, 255)), compositor="auto")
    comp.kernels, comp.one_path = failing, True
    for _ in range(2):
        comp.compose(image, image, mask)
    assert comp.frames_by_path == {"compiled": 0, "opencv": 2}
    assert not failing.ready.is_set() and "failed to build (RuntimeError: cannot cache" in failing.error
    assert "compositing with OpenCV" in caplog.text


def test_without_numba_the_opencv_path_composes(monkeypatch):
    missing = CompiledKernels()
    missing.available, missing.error = False, "numba is not installed"
    image = np.full((144, 256, 3), 100, np.uint8)
    mask = np.zeros((144, 256), np.float32)
    mask[40:, 80:180] = 1.0
    comp = Compositor(EdgeRefiner(RefineSettings()), SolidColor((0, 0, 255)), compositor="compiled")
    comp.kernels = missing
    out = comp.compose(image, image, mask)
    assert comp.frames_by_path == {"compiled": 0, "opencv": 1}
    assert (out[0, 0] == (0, 0, 255)).all() and (out[-1, 130] == 100).all()
    assert not missing.wait(0.1)


@pytest.mark.integration
def test_an_argument_type_it_was_not_compiled_for_is_refused_and_the_frame_composed_with_opencv(segmenter, caplog):
    """After its warm-up the pass compiles nothing more (a frame would stall for seconds): a frame it
    was not compiled for is refused before any pixel is touched, and OpenCV composes it."""
    assert KERNELS.wait(300), KERNELS.error
    matte, hold, masks = _masks(segmenter, (640, 480), "standard", frames=2)
    expected = Compositor(EdgeRefiner(matte), SolidColor((0, 0, 0)), compositor="opencv").compose(*masks[0])
    comp = Compositor(EdgeRefiner(matte), SolidColor((0, 0, 0)), compositor="compiled")
    comp.refiner.hold.strength = 0.0
    real = comp.refiner.grid_terms

    def float64_terms(image, region):
        t = real(image, region)
        return t._replace(b=t.b.astype(np.float64))  # a type the pass was not compiled for
    comp.refiner.grid_terms = float64_terms
    out = comp.compose(*masks[0])
    assert np.array_equal(out, expected)
    assert comp.compositor == "opencv" and "does not take this frame" in caplog.text


def test_grid_taps_give_opencvs_float_upsampling_and_each_cells_pixels():
    """The compiled pass upsamples the filter's float planes itself, rows then columns: it must give
    what cv2.resize gives the OpenCV path. A cell's pixels are those its area average covers."""
    rng = np.random.default_rng(5)
    for (gh, gw), (h, w) in [((144, 256), (720, 1280)), ((144, 256), (1080, 1920)), ((144, 192), (480, 640))]:
        plane = rng.normal(0, 300, (gh, gw)).astype(np.float32)
        expected = cv2.resize(plane, (w, h), interpolation=cv2.INTER_LINEAR)
        rows, cols = kernels.bilinear_taps(gh, h, rows=True), kernels.bilinear_taps(gw, w, rows=False)
        along = plane[:, cols.first] * cols.weight0 + plane[:, cols.second] * cols.weight1
        got = along[rows.first] * rows.weight0[:, None] + along[rows.second] * rows.weight1[:, None]
        # OpenCV rounds its weights a little differently: a hundred-thousandth of the value, far below a level
        assert np.abs(got - expected).max() <= 5e-5 * np.abs(plane).max()
        for taps, size, cells in ((rows, h, gh), (cols, w, gw)):
            marks = np.zeros(size, np.uint8)
            for k in (0, cells // 2, cells - 1):
                marks[:] = 0
                marks[taps.cell_first[k]:taps.cell_end[k]] = 255
                area = cv2.resize(marks[None, :], (cells, 1), interpolation=cv2.INTER_AREA)[0]
                assert area[k] == 255 and (area[:max(0, k - 1)] == 0).all() and (area[k + 2:] == 0).all()
                marks[taps.cell_first[k]:taps.cell_end[k]] = 0
                marks[:taps.cell_first[k]] = marks[taps.cell_end[k]:] = 255
                assert cv2.resize(marks[None, :], (cells, 1), interpolation=cv2.INTER_AREA)[0][k] == 0


def test_bilinear_taps_give_opencvs_8_bit_upsampling_to_the_level():
    rng = np.random.default_rng(3)
    for (gh, gw), (h, w) in [((144, 256), (720, 1280)), ((144, 256), (1080, 1920)), ((144, 192), (480, 640))]:
        plane = rng.integers(0, 256, (gh, gw), dtype=np.uint8)
        expected = cv2.resize(plane, (w, h), interpolation=cv2.INTER_LINEAR)
        y0, y1, ky = kernels.bilinear_taps(gh, h, rows=True)[:3]
        x0, x1, kx = kernels.bilinear_taps(gw, w, rows=False)[:3]
        upsample = getattr(kernels._upsample8, "py_func", kernels._upsample8)
        p = plane.astype(np.int32)
        got = upsample(p[y0][:, x0], p[y0][:, x1], p[y1][:, x0], p[y1][:, x1], kx[None, :], ky[:, None])
        assert np.array_equal(got, expected)


def test_a_process_that_quits_while_the_pass_compiles_exits_cleanly_and_the_compile_still_lands(tmp_path):
    """The compile runs in a child process (in this one, numba's Python work held the GIL the frames
    need). A process that quits at once must exit cleanly (quitting while LLVM worked in-process once
    aborted in LLVM's teardown), and the child must still fill numba's cache for the next start. A
    fresh cache, so that it really compiles."""
    script = ("import sys\n"
              "from vbg.matting.kernels import KERNELS\n"
              "KERNELS.start()\n"
              "sys.exit(0)\n")
    cache = tmp_path / "cache"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Assertion" not in done.stderr and "Aborted" not in done.stderr
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # a bound on the wait, not a speed
        if {"_edge_pass", "_guided_solve"} <= {p.name.split(".")[1].split("-")[0] for p in cache.rglob("*.nbi")}:
            break
        time.sleep(1)
    names = sorted(p.name for p in cache.rglob("*.nbi"))
    assert any("_edge_pass" in n for n in names) and any("_guided_solve" in n for n in names), names
