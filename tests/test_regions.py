"""Edge-band compositing: the frame is cut into room, person and edge rectangles, and only the edge is
refined and blended. It must give the same picture as refining every pixel."""

import cv2
import numpy as np
import pytest

from conftest import CLIP_720P
from vbg.backgrounds import SolidColor
from vbg.frames import Frame
from vbg.matting import composite, refine
from vbg.matting.chain import MatteChain
from vbg.matting.hold import EdgeHold
from vbg.matting.refine import EdgeRefiner
from vbg.matting.regions import EDGE, PERSON, ROOM, GridToFrame, plan
from vbg.settings import Settings, apply_edge_preset

SIZES = [((144, 256), (720, 1280)), ((144, 256), (1080, 1920)), ((144, 192), (480, 640)),
         ((144, 256), (540, 960))]


@pytest.mark.parametrize("grid, frame", SIZES)
def test_a_region_upsamples_exactly_as_the_whole_plane(grid, frame):
    rng = np.random.default_rng(1)
    plane = rng.random(grid + (3,), dtype=np.float32)
    whole = cv2.resize(plane, frame[::-1], interpolation=cv2.INTER_LINEAR)
    mapping = GridToFrame(grid, frame)
    scratch = np.empty(frame + (3,), np.float32)
    kinds = rng.integers(0, 3, grid).astype(np.uint8)
    regions = plan(kinds, mapping)
    covered = np.zeros(frame, np.int32)
    for r in regions:
        y0, y1, x0, x1 = r.pixels
        covered[y0:y1, x0:x1] += 1
        assert np.array_equal(mapping.upsample(plane, r, scratch), whole[y0:y1, x0:x1])
        cells = kinds[r.cells[0]:r.cells[1], r.cells[2]:r.cells[3]]
        if r.kind != EDGE:
            assert (cells == r.kind).all()
    assert (covered == 1).all()  # every pixel in exactly one rectangle


def test_a_person_in_a_room_needs_few_rectangles():
    kinds = np.full((144, 256), ROOM, np.uint8)
    kinds[40:, 90:170] = EDGE
    kinds[50:, 100:160] = PERSON
    regions = plan(kinds, GridToFrame((144, 256), (720, 1280)))
    assert len(regions) < 40
    area = {k: sum((r.pixels[1] - r.pixels[0]) * (r.pixels[3] - r.pixels[2]) for r in regions if r.kind == k)
            for k in (ROOM, PERSON, EDGE)}
    assert area[EDGE] < 0.25 * 720 * 1280 and area[ROOM] > 0.5 * 720 * 1280


def _clip(size, frames=12):
    cap = cv2.VideoCapture(str(CLIP_720P))
    out = []
    for _ in range(frames):
        ok, image = cap.read()
        assert ok
        out.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    return out


@pytest.mark.integration
@pytest.mark.parametrize("preset", ["standard", "fine"])
@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (640, 480)])
def test_edge_band_compositing_equals_refining_every_pixel(segmenter, monkeypatch, preset, size):
    """Real frames and the real model's masks: the regions' output against the same chain made to
    treat the whole frame as edge. With the edge hold on, a held alpha within 3 levels of 0 or 1 may
    snap there (the one allowed difference)."""
    settings = Settings()
    apply_edge_preset(settings, preset)
    masks = []
    chain = MatteChain(settings, segmenter, SolidColor((240, 240, 240)))
    for image in _clip(size):
        frame = Frame()
        frame.image = image
        chain.segment(frame)
        masks.append((image, frame.buffers["small"].copy(), frame.buffers["mask"].copy()))

    def run(everything_edge):
        if everything_edge:
            monkeypatch.setattr(refine, "cell_kinds", lambda room, person, out: (out.fill(EDGE), out)[1])
        else:
            monkeypatch.undo()
        comp = composite.Compositor(EdgeRefiner(chain.refiner.settings, EdgeHold(settings.refine.edge_hold)), SolidColor((240, 240, 240)))
        outs = [(comp.compose(*m).copy(), comp.refiner.alpha.copy()) for m in masks]
        return outs, comp

    banded, comp = run(False)
    full, _ = run(True)
    for (out_b, alpha_b), (out_f, alpha_f) in zip(banded, full):
        assert np.abs(alpha_b.astype(int) - alpha_f).max() <= 3
        assert np.abs(out_b.astype(int) - out_f).max() <= 3
    assert 0 < ((alpha_b > 0) & (alpha_b < 255)).mean() < 0.2  # a real soft edge was composited


def _compose_both(monkeypatch, settings, frames, hold=0.0):
    """(banded, everything-as-edge) alphas for a list of (image, small, mask)."""
    def run(everything_edge):
        if everything_edge:
            monkeypatch.setattr(refine, "cell_kinds", lambda room, person, out: (out.fill(EDGE), out)[1])
        else:
            monkeypatch.undo()
        comp = composite.Compositor(EdgeRefiner(settings, EdgeHold(hold)), SolidColor((255, 255, 255)))
        return [comp.compose(*f) is not None and comp.refiner.alpha.copy() for f in frames]
    return run(False), run(True)


def _step_scene(h=720, w=1280):
    image = np.full((h, w, 3), 90, np.uint8)
    image[:, w // 2:] = 200
    small = cv2.resize(image, (256, 144), interpolation=cv2.INTER_AREA)
    mask = np.zeros((144, 256), np.float32)
    mask[:, 128:] = 1.0                                     # a hard step between two cells
    return image, small, mask


def test_pixels_beside_the_room_still_get_the_edge_they_interpolate(monkeypatch):
    """Plain upscaling (no refinement): the pixels of the last room cell interpolate towards the person
    cell next to it, so that cell must be edge work, not a copy of the room."""
    from vbg.settings import RefineSettings
    banded, full = _compose_both(monkeypatch, RefineSettings(enabled=False), [_step_scene()])
    assert np.array_equal(banded[0], full[0])
    assert banded[0][:, 638:642].min() > 0 and banded[0][:, 638:642].max() < 255


def test_a_held_edge_fades_out_as_it_would_everywhere(monkeypatch):
    """A still frame whose mask fades to a faint 0.15: the edge hold lets the old alpha fade rather than
    jump; cells still fading stay edge work until the alpha is within 3 levels of where it goes. Where
    the model loses the person altogether, nothing is held: the alpha is 0 at once."""
    from vbg.settings import RefineSettings
    image, small, mask = _step_scene()
    faint = mask * np.float32(0.15)
    frames = [(image, small, mask)] + [(image, small, faint)] * 12
    banded, full = _compose_both(monkeypatch, RefineSettings(enabled=True), frames, hold=0.85)
    assert banded[3].max() > banded[12].max() > 0                        # still fading three frames later
    for b, f in zip(banded, full):
        assert np.abs(b.astype(int) - f).max() <= 3
    gone = [(image, small, mask)] + [(image, small, np.zeros_like(mask))] * 3
    banded, full = _compose_both(monkeypatch, RefineSettings(enabled=True), gone, hold=0.85)
    assert banded[1].max() == 0 and full[1].max() == 0


@pytest.mark.integration
def test_auto_edge_is_fine_where_the_room_is_replaced_and_standard_under_a_blur(segmenter):
    from vbg.backgrounds import BlurredRoom, Passthrough
    chain = MatteChain(Settings(), segmenter, BlurredRoom())
    refiner = chain.refiner
    assert not refiner.settings.color_guide and not refiner.settings.decontaminate
    chain.set_background(SolidColor((0, 0, 0)))                      # switched live, as the window does
    assert refiner.settings.color_guide and refiner.settings.decontaminate and refiner.settings.radius == 4
    chain.set_background(Passthrough())                              # a cut-out (render -b transparent)
    assert refiner.settings.decontaminate
    chain.set_background(BlurredRoom(70))
    assert not refiner.settings.color_guide
    explicit = Settings()
    apply_edge_preset(explicit, "standard")
    chain.update(explicit)
    chain.set_background(SolidColor((0, 0, 0)))
    assert not refiner.settings.color_guide                          # --edge standard stays standard
    assert refiner.settings.unmix == 1.0                             # unmixing is on in both


def test_a_steady_grid_reuses_its_solution_and_a_moved_one_does_not():
    """Between model runs a talking head's grid hardly changes: the edge filter's solution (and a blur
    drawn from the same grid) is reused, at most 4 frames in a row; a moved mask or frame solves again."""
    from vbg.backgrounds import BlurredRoom
    from vbg.settings import RefineSettings
    image, small, mask = _step_scene()
    comp = composite.Compositor(EdgeRefiner(RefineSettings()), BlurredRoom())
    steady = []
    for _ in range(7):
        comp.compose(image, small, mask)
        steady.append(comp.refiner.steady)
    assert steady == [False, True, True, True, True, False, True]
    blurred = comp.background._image
    moved = mask.copy()
    moved[:, 120:128] = 1.0                                   # the person's edge moved by 8 cells
    comp.compose(image, small, moved)
    assert not comp.refiner.steady
    assert comp.refiner.alpha[:, 610:630].min() > 200          # the new edge is there at once
    brighter = cv2.add(small, 30)
    comp.compose(image, brighter, moved)
    comp.compose(image, brighter, moved)
    assert comp.refiner.steady and comp.background._image is blurred


def test_a_new_frame_size_on_the_same_grid_gets_a_new_plan():
    """720p and 1080p share the 256x144 grid: the rectangles kept from the last frame must not be reused
    for a frame of another size (a camera switched mid-call)."""
    from vbg.settings import RefineSettings
    image, small, mask = _step_scene()
    big = cv2.resize(image, (1920, 1080), interpolation=cv2.INTER_NEAREST)
    comp = composite.Compositor(EdgeRefiner(RefineSettings()), SolidColor((0, 0, 0)))
    comp.compose(image, small, mask)
    switched = comp.compose(big, small, mask).copy()
    fresh = composite.Compositor(EdgeRefiner(RefineSettings()), SolidColor((0, 0, 0))).compose(big, small, mask)
    assert switched.shape == big.shape and np.array_equal(switched, fresh)
