"""The real model on real frames."""

import cv2
import numpy as np
import pytest

from conftest import CLIP_720P, PORTRAIT_CLIP, STILLS
from vbg import metrics
from vbg.matting.segment import area_resize



def _mask_of(segmenter, image):
    rows, cols = segmenter.fit(*image.shape[:2])
    small = np.empty((rows, cols, 3), np.uint8)
    segmenter.preprocess(image, small)
    return segmenter.infer().copy(), small


def _first_frame(path):
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


@pytest.mark.parametrize("stem", ["001", "004", "010", "050"])
@pytest.mark.integration
def test_real_stills_match_their_masks(segmenter, stem):
    images = sorted((STILLS / "images").glob("*.jpg"))
    path = next((p for p in images if p.stem >= stem), images[0])
    image = cv2.imread(str(path))
    truth = cv2.imread(str(STILLS / "masks" / f"{path.stem}.png"), cv2.IMREAD_GRAYSCALE) / 255.0
    prob, _ = _mask_of(segmenter, image)
    alpha = cv2.resize(prob, (image.shape[1], image.shape[0]))
    assert metrics.iou(alpha, truth) > 0.8


@pytest.mark.integration
def test_preprocessing_is_exactly_the_models_normalisation(segmenter):
    image = _first_frame(CLIP_720P)
    _, small = _mask_of(segmenter, image)
    expected = ((small[..., ::-1].astype(np.float32) / 255 - 0.5) / 0.5).transpose(2, 0, 1)
    assert np.allclose(segmenter.input[0], expected, atol=1e-6)   # 16:9 fills the whole input


@pytest.mark.integration
def test_portrait_frame_keeps_its_aspect_and_maps_back(segmenter):
    image = _first_frame(PORTRAIT_CLIP)                            # 720x1280, portrait
    prob, small = _mask_of(segmenter, image)
    rows, cols = prob.shape
    assert rows == 144 and abs(cols / rows - 720 / 1280) < 0.02    # the grid is not stretched to 256x144
    x, y, w, h = segmenter.roi                                     # the model sees the frame widened
    assert (w, h) == (round(cols * segmenter.PORTRAIT_WIDEN), rows) and x > 0
    assert np.all(segmenter.padded[:, :x] == 128)                 # letterbox padding, not image
    seen = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(segmenter.padded[y:y + h, x:x + w], seen)
    assert prob.mean() > 0.15                                      # the selfie's person is found


@pytest.mark.integration
def test_landscape_frames_are_letterboxed_as_they_are(segmenter):
    image = cv2.resize(_first_frame(CLIP_720P), (960, 720))       # 4:3
    prob, small = _mask_of(segmenter, image)
    x, y, w, h = segmenter.roi
    assert prob.shape == (h, w) == (144, 192) and x == 32
    assert np.array_equal(segmenter.padded[:, x:x + w], small)


@pytest.mark.integration
def test_portrait_photos_are_outlined_better_widened(segmenter, monkeypatch):
    """The bare model on the portrait photos in ../shared/data/stills (a thin strip of the 16:9
    input, letterboxed): widened 1.3x it finds their outline better (boundary F of its mask)."""
    photos = [p for p in sorted((STILLS / "images").glob("*.jpg")) if (im := cv2.imread(str(p))).shape[0] > im.shape[1]]
    assert len(photos) >= 20

    def mean_boundary_f():
        scores = []
        for path in photos:
            image = cv2.imread(str(path))
            truth = cv2.imread(str(STILLS / "masks" / f"{path.stem}.png"), cv2.IMREAD_GRAYSCALE) / 255.0
            prob, _ = _mask_of(segmenter, image)
            scores.append(metrics.boundary_f(cv2.resize(prob, image.shape[1::-1]), truth))
        return np.mean(scores)

    widened = mean_boundary_f()
    monkeypatch.setattr(segmenter, "PORTRAIT_WIDEN", 1.0)
    assert widened > mean_boundary_f() + 0.01


def test_area_resize_matches_opencv_area_on_non_integer_ratios():
    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 255, (960, 1280, 3), dtype=np.uint8), (0, 0), 3)
    out = np.empty((144, 192, 3), np.uint8)
    area_resize(image, out, {})
    ref = cv2.resize(image, (192, 144), interpolation=cv2.INTER_AREA)
    assert np.abs(out.astype(int) - ref).mean() < 1.0


def test_inference_gate_skips_still_frames_and_runs_on_motion_and_at_least_every_fifth():
    from vbg.matting.gate import InferenceGate

    gate = InferenceGate(max_skip=4)
    still = np.full((144, 256), 100, np.uint8)
    runs = [gate.choose(still) for _ in range(10)]
    assert runs == ["full", None, None, None, None, "full", None, None, None, None]
    moved = still.copy()
    moved[40:80, 100:140] = 200                        # a hand comes in: 4% of the grid
    assert gate.choose(moved) == "full" and gate.choose(moved) is None
    noisy = moved.astype(np.int16) + np.random.default_rng(0).integers(-6, 7, moved.shape)
    assert gate.choose(noisy.clip(0, 255).astype(np.uint8)) is None   # sensor noise is not motion


def test_the_gate_runs_the_view_whose_part_of_the_picture_moved_and_takes_turns_when_both_did():
    from vbg.matting.gate import InferenceGate

    gate = InferenceGate(max_skip=4)
    head = (0, 72, 64, 192)                            # the head crop's cells
    picture = np.full((144, 256), 100, np.uint8)
    assert [gate.choose(picture, head) for _ in range(6)] == ["full", None, None, None, None, "head"]
    picture[20:40, 100:140] = 200                      # the head turns: only the crop moved
    assert gate.choose(picture, head) == "head" and gate.choose(picture, head) is None
    picture[100:130, 10:40] = 50                       # a hand below, outside the crop
    assert gate.choose(picture, head) == "full" and gate.choose(picture, head) is None
    views = []
    for i in range(6):                                 # the head and a hand move: one run a frame, in turns
        picture[20:40, 100:140] = 100 + 20 * i
        picture[100:130, 10:40] = 60 + 20 * i
        views.append(gate.choose(picture, head))
    assert views == ["head", "full", "head", "full", "head", "full"]   # the head had waited longer
    assert gate.runs == 10 and gate.head_runs == 5    # as many runs as one view would have had
    assert not gate.cut
    picture[:] = 30                                    # the lights go off: a cut, the full view first
    assert gate.choose(picture, head) == "full" and gate.cut

def test_a_head_moving_fast_gets_the_full_view_alone_until_it_calms_down():
    """A person swaying across the room: the head view from two frames ago is already somewhere else,
    and laid over the new full view it drags a lagging outline across the room (on a synthetic sway of
    39 px a frame, edge error over white 30.5 -> 11.6)."""
    from vbg.matting.gate import InferenceGate

    gate = InferenceGate(max_skip=0)
    head = (0, 72, 64, 192)
    picture = np.full((144, 256), 100, np.uint8)
    assert gate.choose(picture, head) == "full" and gate.choose(picture, head) == "head"
    views = []
    for i in range(4):                                 # the whole head region changes every frame
        picture[0:72, 64:192] = 100 + 30 * (i % 2 + 1)
        views.append(gate.choose(picture, head))
    assert views == ["full"] * 4 and gate.fast
    picture[20:30, 100:110] = 10                       # then a small change in the crop: taking turns again
    assert gate.choose(picture, head) == "head" and not gate.fast


def test_a_machine_with_the_driver_but_no_cuda_libraries_is_told_which_one_is_missing(monkeypatch):
    """No GPU here: the driver's presence is faked (one function); the library lookup is onnxruntime's own."""
    import re

    import onnxruntime as ort

    from vbg import devices
    from vbg.matting import segment

    missing = segment.cuda_library_missing(ort)
    if segment.CUDA not in ort.get_available_providers() or missing is None:
        pytest.skip("this onnxruntime has no CUDA provider, or this machine has every CUDA library")
    assert re.fullmatch(r"lib[\w.+-]+\.so\.\d+", missing), missing
    monkeypatch.setattr(devices, "nvidia_driver_present", lambda: True)
    line = next(line for line in devices.report().splitlines() if "CUDA:" in line)
    assert f"{missing} is missing" in line and "pip install 'vbg[cuda]'" in line
