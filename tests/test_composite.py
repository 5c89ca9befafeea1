"""Compositing at full resolution: backgrounds, no halo, edge refinement, mirror."""

import dataclasses

import cv2
import numpy as np
import pytest

from conftest import BACKGROUND
from vbg.backgrounds import BlurredRoom, LoopingVideo, Passthrough, SolidColor, StillImage, parse_background
from vbg.errors import VbgError
from vbg.matting.composite import Compositor
from vbg.matting.refine import EdgeRefiner, LocalColours
from vbg.settings import RefineSettings, edge_preset



def _scene(h=360, w=640):
    """A bright 'person' rectangle on a dark, textured room; its exact mask on a 144-row grid."""
    rng = np.random.default_rng(0)
    image = rng.integers(20, 60, (h, w, 3), dtype=np.uint8)
    image[h // 4:, w // 3: 2 * w // 3] = 230
    gh, gw = 144, 256
    small = cv2.resize(image, (gw, gh), interpolation=cv2.INTER_AREA)
    mask = np.zeros((gh, gw), np.float32)
    mask[gh // 4:, gw // 3: 2 * gw // 3] = 1
    return image, small, mask


def test_blur_does_not_smear_the_person_into_the_background():
    image, small, mask = _scene()
    bg = BlurredRoom(60).render(image.shape, small, mask)
    h, w = image.shape[:2]
    ring = bg[h // 2, w // 3 - 20: w // 3 - 4]          # background just left of the person
    assert ring.max() < 90                              # a plain blur would pull the 230 person in
    plain = cv2.GaussianBlur(image, (0, 0), 20)[h // 2, w // 3 - 20: w // 3 - 4]
    assert plain.max() > 90                             # ...as this shows


@pytest.mark.integration
def test_solid_colour_and_image_backgrounds_fill_the_frame():
    image, small, mask = _scene()
    out = Compositor(EdgeRefiner(RefineSettings()), SolidColor((255, 0, 0))).compose(image, small, mask)
    assert tuple(out[5, 5]) == (255, 0, 0)
    assert out[300, 320].mean() > 200                    # the person stays
    still = StillImage(BACKGROUND).render((360, 640, 3), small, mask)
    assert still.shape == (360, 640, 3) and still.std() > 10


def test_refinement_follows_the_full_resolution_edge():
    image, small, mask = _scene(720, 1280)
    coarse = cv2.GaussianBlur(mask, (0, 0), 1)             # a soft model-like mask on the 256x144 grid
    refined = EdgeRefiner(RefineSettings(enabled=True))(image, small, coarse) / 255.0
    plain = EdgeRefiner(RefineSettings(enabled=False))(image, small, coarse) / 255.0
    truth = np.zeros(image.shape[:2], np.float32)
    truth[180:, 427:853] = 1
    band = (plain > 0.02) & (plain < 0.98)                  # where the upscaled mask is unsure
    err_refined, err_plain = np.abs(refined - truth)[band].mean(), np.abs(plain - truth)[band].mean()
    assert err_refined < 0.75 * err_plain                   # measured: 0.61


def test_passthrough_and_mirror():
    image, small, mask = _scene()
    out = Compositor(EdgeRefiner(RefineSettings()), Passthrough()).compose(image, small, mask)
    # never the camera's pooled frame: it is overwritten once released, and snapshots kept showing it
    assert out is not image and np.array_equal(out, image)
    mirrored = Compositor(EdgeRefiner(RefineSettings()), Passthrough(), mirror=True).compose(image, small, mask)
    assert np.array_equal(mirrored, image[:, ::-1])


def test_compositor_reuses_its_buffers():
    image, small, mask = _scene()
    c = Compositor(EdgeRefiner(RefineSettings()), SolidColor((0, 255, 0)))
    outs = [c.compose(image, small, mask) for _ in range(4)]
    assert outs[0] is outs[2] and outs[1] is outs[3] and outs[0] is not outs[1]


class _Redrawn:
    """A background that says nothing of its pixels (generation None): the compositor copies the room
    every frame, as the reference."""
    generation = None

    def __init__(self, inner):
        self.inner = inner

    def render(self, *args, **kwargs):
        return self.inner.render(*args, **kwargs)

    def close(self):
        pass


def _moving_scenes(h=288, w=512, frames=14):
    """Camera frames of fresh noise with a disc of person that moves, stops, and moves back over cells
    it left; where it stops, the very same frame again, so that a blur is reused while the grid holds
    still."""
    rng = np.random.default_rng(4)
    gh, gw = 144, 256
    yy, xx = np.mgrid[:gh, :gw]
    centres = [60, 80, 100, 100, 100, 100, 120, 140, 120, 100, 80, 60, 60, 60][:frames]
    out, last = [], None
    for i, cx in enumerate(centres):
        if last is not None and cx == centres[i - 1]:
            out.append(last)  # the very same frame again
            continue
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        small = cv2.resize(image, (gw, gh), interpolation=cv2.INTER_AREA)
        mask = np.clip(30.0 - np.hypot(yy - 90, xx - cx), 0.0, 1.0).astype(np.float32)
        last = (image, small, mask)
        out.append(last)
    return out


@pytest.mark.parametrize("background", ["photo", "colour", "blur"])
@pytest.mark.parametrize("mirror", [False, True])
def test_room_an_output_buffer_holds_is_not_copied_again_and_the_output_is_the_same(background, mirror, monkeypatch):
    """Over a still picture (or a blur reused while the grid holds still) the room a buffer already
    holds from the same background pixels is not copied again. The output must be exactly what copying
    every frame gives, also where the person left a cell, and after the camera itself (no background)
    filled the buffers: no camera pixel may stay behind."""
    def make():
        return {"photo": lambda: StillImage(BACKGROUND), "colour": lambda: SolidColor((0, 200, 0)),
                "blur": lambda: BlurredRoom()}[background]()
    scenes = _moving_scenes()
    copies = {"n": 0}
    real_copyto = np.copyto

    def counting(dst, src, *args, **kwargs):
        copies["n"] += 1
        return real_copyto(dst, src, *args, **kwargs)
    monkeypatch.setattr(np, "copyto", counting)
    runs = {}
    for name in ("reference", "kept"):
        bg = make()
        comp = Compositor(EdgeRefiner(RefineSettings()), _Redrawn(bg) if name == "reference" else bg, mirror=mirror)
        copies["n"], outs = 0, []
        for i, scene in enumerate(scenes):
            if i == 8:
                comp.set_background(Passthrough())  # the camera itself fills a buffer, then the same room again
            if i == 10:
                comp.set_background(_Redrawn(bg) if name == "reference" else bg)
            outs.append(comp.compose(*scene).copy())
        runs[name] = outs, copies["n"]
    for i, (ref, got) in enumerate(zip(runs["reference"][0], runs["kept"][0])):
        assert np.array_equal(ref, got), f"frame {i} differs"
    assert runs["kept"][1] < runs["reference"][1]  # and some room was not copied again


@pytest.mark.parametrize("spec, message", [
    ("blur:0", "out of range"), ("blur:abc", "not a number"), ("color:#12345", "color:#RRGGBB"),
    ("/no/such/file.png", "neither"),
])
def test_bad_background_specs_say_what_to_do(spec, message):
    with pytest.raises(VbgError, match=message):
        parse_background(spec)


@pytest.mark.integration
def test_corrupt_background_files_are_refused(tmp_path):
    png = tmp_path / "broken.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(VbgError, match="background image .*(cut short|cannot read)"):
        parse_background(str(png))
    whole = (BACKGROUND.read_bytes())
    jpeg = tmp_path / "cut.jpg"
    jpeg.write_bytes(whole[: len(whole) // 3])                       # a download cut short
    with pytest.raises(VbgError, match="is cut short .*pick another file, or use --background blur"):
        parse_background(str(jpeg))
    good = tmp_path / "whole.jpg"
    good.write_bytes(whole)
    parse_background(str(good)).close()
    mp4 = tmp_path / "broken.mp4"
    mp4.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    with pytest.raises(VbgError, match="cannot read background video"):
        parse_background(str(mp4))


def test_video_background_loops_and_decodes_off_the_hot_path(tmp_path):
    path = tmp_path / "bg.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 50, (64, 48))
    for v in (0, 250):
        writer.write(np.full((48, 64, 3), v, np.uint8))
    writer.release()
    offline = LoopingVideo(path, live=False)
    seen = [int(offline.render((48, 64, 3), None, None).mean()) for _ in range(4)]
    assert seen[0] < 20 < 230 < seen[1] and seen[2] < 20 < 230 < seen[3]   # in order, looping
    live = LoopingVideo(path, live=True)
    try:
        first = live.render((48, 64, 3), None, None)
        assert first.shape == (48, 64, 3)
        assert live._thread is not None and live._thread.is_alive()
    finally:
        live.close()
    assert live._thread is None


def test_mask_gamma_lifts_an_unsure_edge_and_leaves_sure_pixels_alone():
    """The model is under-confident at hair (P 0.3-0.7 where the truth is near 1): p ** gamma < 1
    raises those values before the edge filter; pixels it is sure about stay 0 and 255."""
    image, small, mask = _scene()
    soft = mask.copy()
    soft[:, :] = cv2.GaussianBlur(mask, (0, 0), 3)            # a blurry, unsure outline
    plain = EdgeRefiner(RefineSettings(mask_gamma=1.0, unmix=0.0))(image, small, soft).copy()
    lifted = EdgeRefiner(RefineSettings(mask_gamma=0.7, unmix=0.0))(image, small, soft)
    unsure = (plain > 20) & (plain < 235)
    assert unsure.sum() > 500 and (lifted[unsure].astype(int) - plain[unsure]).mean() > 5
    h, w = image.shape[:2]
    sure = cv2.resize(soft, (w, h), interpolation=cv2.INTER_NEAREST)
    assert (lifted[sure < 0.001] == 0).all() and (lifted[sure > 0.999] == 255).all()


@pytest.mark.integration
def test_wide_blur_at_half_the_grid_looks_the_same(monkeypatch):
    """Strength 40 (the default) blurs at half the model grid: a quarter of the work, and within a
    level of the full-grid result on a real photo."""
    room = cv2.imread(str(BACKGROUND), cv2.IMREAD_COLOR)
    small = cv2.resize(room, (256, 144), interpolation=cv2.INTER_AREA)
    mask = np.zeros((144, 256), np.float32)
    mask[40:, 100:160] = 1
    shape = (720, 1280, 3)
    half = BlurredRoom(40).render(shape, small, mask).copy()
    monkeypatch.setattr(BlurredRoom, "HALF_GRID_SIGMA", float("inf"))
    full = BlurredRoom(40).render(shape, small, mask)
    assert 0 < np.abs(half.astype(int) - full).mean() < 1.0
    assert np.percentile(np.abs(half.astype(int) - full), 99.9) <= 6


def test_unmixing_follows_the_colours_where_the_mask_is_unsure():
    """An 'ear' (the size of one at 720p: 5 x 10 cells) of the person's colour that the model is unsure
    of (p = 0.3), and a patch of wall as unsure below it: unmixing raises the first and lowers the
    second; where the mask is sure, nothing moves."""
    h, w = 720, 1280
    room, person = (200, 200, 200), (90, 120, 190)                 # a light wall, skin
    image = np.full((h, w, 3), room, np.uint8)
    image[:, w // 2:] = person
    image[200:250, 615:640] = person                                # the ear, left of the face
    gh, gw = 144, 256
    small = cv2.resize(image, (gw, gh), interpolation=cv2.INTER_AREA)
    mask = np.zeros((gh, gw), np.float32)
    mask[:, gw // 2:] = 1.0
    mask[40:50, 123:128] = 0.3                                      # the ear, unsure
    mask[80:90, 123:128] = 0.3                                      # the wall below it, as unsure
    off = EdgeRefiner(RefineSettings(unmix=0.0, mask_gamma=1.0))(image, small, mask).copy()
    on = EdgeRefiner(RefineSettings(unmix=1.0, mask_gamma=1.0))(image, small, mask)
    ear, wall = (slice(205, 245), slice(618, 636)), (slice(405, 445), slice(618, 636))
    # the ear rises, but beyond a cell of where the model is sure of the person no further than the
    # model's own 0.3 (`EdgeRefiner._bound`): the head view, which sees ears surer, is what lifts them
    assert on[ear].mean() > off[ear].mean() and on[ear][:, :13].max() <= 0.3 * 255 + 1
    assert on[wall].mean() < off[wall].mean() - 20
    sure = (slice(0, 150), slice(0, 500)), (slice(0, h), slice(700, w))
    for part in sure:
        assert np.array_equal(on[part], off[part])


def test_mask_contrast_firms_what_the_model_half_saw():
    """An 'ear' the model gives 0.8 and a patch of wall it gives 0.2, both the colour of their
    surroundings' mix (nothing for the filter to go by): contrast 2 (the fine edge's) takes the ear to
    the person and the patch to the room; where the mask is sure, nothing moves."""
    h, w = 720, 1280
    room, person = (200, 200, 200), (90, 120, 190)
    image = np.full((h, w, 3), room, np.uint8)
    image[:, w // 2:] = person
    image[200:250, 615:640] = (150, 160, 195)                      # the ear: between wall and skin
    image[400:450, 615:640] = (150, 160, 195)                      # the same colour on the wall
    small = cv2.resize(image, (256, 144), interpolation=cv2.INTER_AREA)
    mask = np.zeros((144, 256), np.float32)
    mask[:, 128:] = 1.0
    mask[40:50, 123:128] = 0.8
    mask[80:90, 123:128] = 0.2
    fine = edge_preset(RefineSettings(), "fine")
    assert fine.mask_contrast == 2.0
    soft = dataclasses.replace(fine, mask_contrast=1.0, unmix=0.0)
    firm = dataclasses.replace(fine, unmix=0.0)
    before = EdgeRefiner(soft)(image, small, mask).copy()
    after = EdgeRefiner(firm)(image, small, mask)
    ear, wall = (slice(205, 245), slice(618, 636)), (slice(405, 445), slice(618, 636))
    # (+25, not more: the ear's core, over three cells in, is the person's inside either way)
    assert after[ear].mean() > before[ear].mean() + 25 and after[ear].mean() > 230
    # (the soft edge too keeps the patch near the model's 0.2 now: `EdgeRefiner._bound`)
    assert after[wall].mean() < before[wall].mean() - 15 and after[wall].mean() < 50
    for part in ((slice(0, 150), slice(0, 500)), (slice(0, h), slice(700, w))):
        assert np.array_equal(after[part], before[part])


def test_doubt_well_inside_the_person_is_filled_and_doubt_at_the_outline_kept():
    """The model's doubt (P 0.65) in a patch three cells or more inside the outline, one touching the
    frame's bottom as a torso does: the person is opaque there, as if the model had been sure. The
    same doubt at an ear, at the outline, is still the edge filter's to judge."""
    h, w = 720, 1280
    image = np.full((h, w, 3), (200, 200, 200), np.uint8)          # a light wall
    image[:, w // 2:] = (90, 120, 190)                             # skin
    image[100:150, 615:640] = (150, 160, 195)                      # the ear: between wall and skin
    small = cv2.resize(image, (256, 144), interpolation=cv2.INTER_AREA)
    sure = np.zeros((144, 256), np.float32)
    sure[:, 128:] = 1.0
    doubt = sure.copy()
    doubt[60:80, 180:220] = 0.65                                    # deep inside
    doubt[136:, 180:220] = 0.65                                     # inside, at the frame's bottom
    ear = (slice(20, 30), slice(123, 128))
    doubt[ear] = sure_ear = 0.65
    sure[ear] = sure_ear
    no_ear = sure.copy()
    no_ear[ear] = 0.0
    filled, as_if_sure, without_ear = (EdgeRefiner(RefineSettings())(image, small, m) for m in (doubt, sure, no_ear))
    assert np.array_equal(filled, as_if_sure)
    assert (filled[300:400, 900:1100] == 255).all() and (filled[680:, 900:1100] == 255).all()
    assert filled[105:145, 618:636].mean() > without_ear[105:145, 618:636].mean() + 50


def test_the_refined_edge_never_reaches_where_the_model_saw_nothing():
    """A ceiling's dark seam of the hair's colour leaving the head: the edge filter's coefficients
    carry "person" along it (faint spikes beside the head); a picture the model half-saw beside the jaw
    (P 0.3) gets lifted towards solid. Bounded by the model's own mask, neither shows."""
    h, w, gh, gw = 288, 512, 72, 128
    image = np.full((h, w, 3), 220, np.uint8)                  # a light room
    image[96:, 128:320] = (40, 45, 55)                          # the person, hair-dark
    image[140:144, 320:512] = (40, 45, 55)                      # a seam of the same colour, going right
    image[200:288, 330:400] = (150, 140, 235)                   # a pink picture beside the person
    small = cv2.resize(image, (gw, gh), interpolation=cv2.INTER_AREA)
    mask = np.zeros((gh, gw), np.float32)
    mask[24:, 32:80] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), 1.0)                  # a soft outline
    mask[50:72, 83:100] = np.maximum(mask[50:72, 83:100], 0.3)  # the picture, half-seen
    for preset in ("fine", "standard"):
        alpha = EdgeRefiner(edge_preset(RefineSettings(), preset))(image, small, mask)
        assert alpha[100:200, 200:300].min() == 255, preset      # the person is whole
        assert alpha[130:155, 340:512].max() == 0, preset        # nothing along the seam past a cell
        assert alpha[210:288, 340:400].max() <= 0.3 * 255 + 1, preset   # no more than the model saw


def test_the_refined_edge_reaches_a_cell_further_above_the_head_than_beside_it():
    """Hair the model half-saw (P 0.4) two cells above where it is sure of the person is filled; the same
    colour two cells beside the person stays at what the model saw, and a seam of it going up that the
    model barely saw (P 0.05) stays faint (`EdgeRefiner.BOUND_UP_CELLS`, `BOUND_UP_GAIN`)."""
    h, w, gh, gw = 288, 512, 72, 128                            # 4 px a grid cell
    image = np.full((h, w, 3), 220, np.uint8)
    image[96:, 128:320] = (40, 45, 55)                          # the person, hair-dark
    image[84:96, 128:240] = (40, 45, 55)                        # hair, 3 cells above
    image[60:96, 280:284] = (40, 45, 55)                        # a seam of the same colour going up
    image[96:, 320:332] = (40, 45, 55)                          # the same colour, 3 cells beside
    small = cv2.resize(image, (gw, gh), interpolation=cv2.INTER_AREA)
    mask = np.zeros((gh, gw), np.float32)
    mask[24:, 32:80] = 1.0
    mask[21:24, 32:60] = mask[24:, 80:83] = 0.4                 # the model half-saw the hair and the side
    mask[15:24, 70:71] = 0.05                                   # and barely saw the seam
    for preset in ("fine", "standard"):
        alpha = EdgeRefiner(edge_preset(RefineSettings(), preset))(image, small, mask)
        assert alpha[100:, 200:300].min() == 255, preset
        assert alpha[89:92, 140:220].min() >= 230, preset       # two cells above: the hair (102 without)
        assert alpha[150:250, 326:330].max() <= 0.4 * 255 + 1, preset   # two cells beside: the model's 0.4
        assert alpha[60:89, 280:284].max() <= 3 * 0.05 * 255 + 1, preset  # the seam: faint


def test_the_room_colour_the_person_is_estimated_against_is_the_surest_rooms():
    """Beside an edge the model is unsure of, an average of the room weighted by 1 - P takes in the
    edge's mixed colour, and the person's colour estimated against it keeps some of the old room; the
    estimate's room colour (`room8`) comes from the surest room only. Inside the person, with no room
    near, it is the plain average's."""
    gh, gw = 72, 128
    small = np.empty((gh, gw, 3), np.uint8)
    small[:] = (230, 200, 170)                                  # the room
    small[:, :60] = (40, 45, 55)                                # the person
    small[:, 60:64] = (135, 122, 112)                           # the edge, half and half
    mask = np.zeros((gh, gw), np.float32)
    mask[:, :60] = 1.0
    mask[:, 60:64] = 0.5
    colours = LocalColours()
    f_hat, b_hat = colours(small, mask, eight_bit=True)
    room = np.array((230, 200, 170))
    assert np.abs(colours.room8[36, 62].astype(int) - room).max() <= 2           # beside the edge: the room
    assert np.abs(b_hat[36, 62] - room).max() > 20                                # the plain average: pulled in
    assert np.abs(colours.room8[36, 20].astype(int) - b_hat[36, 20]).max() <= 1   # deep inside: the average's


def test_settings_swapped_mid_frame_apply_from_the_next_frame_whole():
    """The window swaps the refiner's settings from its own thread while the output thread is inside a
    frame: the frame finishes with the settings it started with, the next frame takes the new ones."""
    image, small, mask = _scene()
    plain = EdgeRefiner(RefineSettings())
    expected = plain(image, small, mask).copy()
    refiner = EdgeRefiner(RefineSettings())
    regions = refiner.prepare(image, small, mask, None)
    refiner.settings = RefineSettings(feather=6, erode=3)     # swapped while the frame is refined
    for region in regions:
        refiner.refine(image, region)
    assert np.array_equal(refiner.finish(), expected)             # no feather or erosion on this frame
    feathered = refiner(image, small, mask)
    assert not np.array_equal(feathered, expected)                # the next frame has them
