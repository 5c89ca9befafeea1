"""Temporal smoothing: less flicker on real footage, no lag where the image moves."""

import cv2
import numpy as np

from conftest import VIDEO_GT
from vbg import metrics
from vbg.matting.chain import MatteChain
from vbg.matting.hold import EdgeHold
from vbg.matting.smooth import MaskSmoother
from vbg.settings import Settings
import pytest



def _score(segmenter, strength):
    settings = Settings()
    settings.smooth.strength = strength
    matter = MatteChain(settings, segmenter)
    cap = cv2.VideoCapture(str(VIDEO_GT / "input.avi"))
    temporal, ious, i = metrics.TemporalScores(), [], 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        alpha, _ = matter.process(image)
        pred = alpha.astype(np.float32) / 255
        truth = cv2.imread(str(VIDEO_GT / "alpha" / f"{i:06d}.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        temporal.add(pred, truth)
        ious.append(metrics.iou(pred, truth))
        i += 1
    assert i == 78
    return temporal.result(), float(np.mean(ious))


@pytest.mark.integration
def test_smoothing_lowers_flicker_and_keeps_accuracy(segmenter):
    (raw_t, raw_iou), (smooth_t, smooth_iou) = _score(segmenter, 0.0), _score(segmenter, Settings().smooth.strength)
    assert smooth_t["flicker"] < 0.8 * raw_t["flicker"]     # measured: 0.66x on this sequence
    assert smooth_t["dtssd"] < raw_t["dtssd"]
    assert smooth_iou > raw_iou - 0.005


def test_moving_pixels_pass_through_and_still_pixels_hold():
    smoother = MaskSmoother(strength=1.0)
    out = np.empty((8, 8), np.float32)
    frame = np.full((8, 8), 100, np.uint8)
    smoother(np.full((8, 8), 0.2, np.float32), frame, out)
    moved = frame.copy()
    moved[:, :2] = 200                                  # the image changes in the left two columns only
    smoother(np.full((8, 8), 0.9, np.float32), moved, out)
    assert np.allclose(out[:, 0], 0.9)                  # moving region: the new value, no lag
    assert np.allclose(out[:, 6:], 0.2)                 # still region: the model's jump is held back


def test_strength_zero_is_the_bare_model():
    smoother = MaskSmoother(strength=0.0)
    out = np.empty((4, 4), np.float32)
    frame = np.zeros((4, 4), np.uint8)
    smoother(np.full((4, 4), 0.1, np.float32), frame, out)
    smoother(np.full((4, 4), 0.7, np.float32), frame, out)
    assert np.allclose(out, 0.7)


def _flipping_alpha_over_a_still_picture(hold, grey_noise, frames=17, shape=(72, 128)):
    """Model noise (the alpha flips by TRAIL_LEVELS, the most the hold absorbs, every frame) over a
    still picture with camera noise of `grey_noise` levels; returns the share of pixels the hold let
    through last frame (that took the new value)."""
    rng = np.random.default_rng(0)
    previous = np.zeros(shape, np.uint8)
    for i in range(frames):
        gray = hold.frame_gray(shape)
        noisy = np.clip(120 + rng.normal(0, grey_noise, shape), 0, 255).astype(np.uint8)
        cv2.blur(noisy, (3, 3), dst=gray)  # as vbg/matting/refine.py fills it
        new = np.full(shape, 100 + EdgeHold.TRAIL_LEVELS * (i % 2), np.uint8)
        if hold.active:
            hold(new, previous, (0, shape[0], 0, shape[1]))
        else:
            np.copyto(previous, new)
    return float(np.mean(previous == new))


def test_the_edge_hold_measures_the_camera_noise_and_keeps_holding_in_it(monkeypatch):
    clean = EdgeHold(strength=0.85, motion_levels=8)
    assert _flipping_alpha_over_a_still_picture(clean, 0.0) == 0.0
    assert clean.levels == 8  # a clean picture: the floor

    noisy = EdgeHold(strength=0.85, motion_levels=8)
    through = _flipping_alpha_over_a_still_picture(noisy, 9.0)
    assert noisy.noise == pytest.approx(9.0 * np.sqrt(2) / 3, rel=0.2)  # the 3x3 box's change between frames
    assert noisy.levels > 14
    assert through < 0.002  # noise is not taken for motion

    monkeypatch.setattr(EdgeHold, "NOISE_SIGMAS", 0.0)  # the fixed threshold: noise reads as motion
    fixed = EdgeHold(strength=0.85, motion_levels=8)
    assert _flipping_alpha_over_a_still_picture(fixed, 9.0) > 0.02


def test_the_edge_hold_lets_real_motion_through_in_a_clean_picture():
    hold = EdgeHold(strength=0.85, motion_levels=8)
    shape = (40, 40)
    previous = np.zeros(shape, np.uint8)
    for i in range(3):
        gray = hold.frame_gray(shape)
        gray.fill(100)
        gray[:, :10] = 100 + 10 * i  # the left quarter brightens by 10 levels a frame: motion
        new = np.full(shape, 80 * i, np.uint8)
        if hold.active:
            hold(new, previous, (0, 40, 0, 40))
        else:
            np.copyto(previous, new)
    assert np.all(previous[:, :10] == 160)  # moving: the new alpha at once
    assert np.all(previous[:, 20:] == 160 - EdgeHold.TRAIL_LEVELS)  # still: held back, as far as the cap lets it


def test_the_edge_hold_trails_a_slow_edge_by_at_most_trail_levels():
    """An edge gliding over a background of its own brightness: the grey hardly changes (still, to the
    hold), while the new alpha falls 20 levels a frame. Held without a cap it would trail by up to
    0.85 / 0.15 x 20 = 113 levels: a band of the old room along the edge (docs/quality.md)."""
    hold = EdgeHold(strength=0.85, motion_levels=8)
    shape = (16, 16)
    previous = np.zeros(shape, np.uint8)
    trails = []
    for i in range(12):
        gray = hold.frame_gray(shape)
        gray.fill(120 + i % 2)  # a level of change a frame: still
        new = np.full(shape, 240 - 20 * i, np.uint8)
        if hold.active:
            hold(new, previous, (0, 16, 0, 16))
        else:
            np.copyto(previous, new)
        trails.append(int(previous.max()) - int(new.max()))
    assert max(trails) == EdgeHold.TRAIL_LEVELS  # held back (not let through), but no further
    assert trails[1:3] == [17, 31]               # the ordinary hold while within it: 0.85 x 20, then + 0.85^2 x 20


def test_what_the_model_drops_goes_at_once_while_what_it_adds_is_confirmed_over_time():
    """A blob of the room the model saw for a while over a still picture: the hold faded it in; when the
    model drops it, it goes with it instead of lingering (a ghost beside the arm for 20 frames)."""
    smoother = MaskSmoother(strength=0.9)
    out = np.empty((8, 8), np.float32)
    frame = np.full((8, 8), 100, np.uint8)
    smoother(np.zeros((8, 8), np.float32), frame, out)
    for _ in range(3):
        smoother(np.full((8, 8), 0.8, np.float32), frame, out)
    assert 0.15 < out[0, 0] < 0.3                         # appearing: confirmed over frames (0.8 x (1 - 0.9^3))
    for _ in range(30):
        smoother(np.full((8, 8), 0.8, np.float32), frame, out)
    smoother(np.full((8, 8), 0.02, np.float32), frame, out)
    assert out[0, 0] < 0.05                               # dropped: gone (held, it would be 0.72)
    for _ in range(60):
        smoother(np.full((8, 8), 0.5, np.float32), frame, out)
    smoother(np.full((8, 8), 0.4, np.float32), frame, out)
    assert out[0, 0] == pytest.approx(0.472, abs=2e-3)     # a small dip is still smoothed: 0.4 + 0.9 x 0.8 x 0.1


def test_the_edge_hold_holds_nothing_where_the_new_alpha_fell_to_zero():
    """A bright hair highlight replaced by a light wall barely changes the grey: still, to the hold. It
    may keep part of the old alpha where the new one is soft, never where the new one is 0 (a rim of
    the room around the hair in fast motion)."""
    hold = EdgeHold(strength=0.85, motion_levels=8)
    shape = (16, 16)
    previous = np.zeros(shape, np.uint8)
    for new_level in (200, 0):
        gray = hold.frame_gray(shape)
        gray.fill(120)                                    # no grey change: still
        new = np.full(shape, new_level, np.uint8)
        new[:, 8:] = 30 if new_level == 0 else 200        # the right half only falls to 30
        if hold.active:
            hold(new, previous, (0, 16, 0, 16))
        else:
            np.copyto(previous, new)
    assert np.all(previous[:, :8] == 0)                   # fell to 0: nothing held
    assert np.all(previous[:, 8:] == 60)                  # fell to 30: held, at most twice the new alpha


@pytest.mark.parametrize("step, expected", [(3, 120), (6, 120), (7, 121), (12, 122), (-6, 120), (-12, 118)])
def test_the_edge_hold_keeps_a_still_alpha_through_shimmer_and_follows_a_real_change(step, expected):
    """At a still pixel a new alpha within SHIMMER_LEVELS of the held one is noise or the model's small
    doubt: the held alpha stays. A larger change is followed at the hold's own pace."""
    hold = EdgeHold(strength=0.85, motion_levels=8)
    assert hold.SHIMMER_LEVELS == 6
    shape = (4, 4)
    previous = np.zeros(shape, np.uint8)
    for level in (120, 120 + step):
        gray = hold.frame_gray(shape)
        gray.fill(90)                                     # no grey change: still
        new = np.full(shape, level, np.uint8)
        if hold.active:
            hold(new, previous, (0, 4, 0, 4))
        else:
            np.copyto(previous, new)
    assert np.all(previous == expected)                   # 120 + 0.15 x step beyond the shimmer
