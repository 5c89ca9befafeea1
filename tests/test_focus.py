"""The head view (vbg/matting/focus.py): where its crop goes, how it is laid over the full view, and how the
chain shares the model's runs between the two views."""

import dataclasses

import cv2
import numpy as np
import pytest

from vbg.matting.focus import FULL, HEAD, HeadFocus

HALF = (72, 128)  # the crop of a 16:9 frame, in cells of its 144x256 grid


def person_grid(rows=144, cols=256, head=(20, 60, 110, 150), body=(60, 144, 70, 190)) -> np.ndarray:
    prob = np.zeros((rows, cols), np.float32)
    for y0, y1, x0, x1 in (head, body):
        prob[y0:y1, x0:x1] = 0.95
    return prob


def test_the_crop_is_half_the_grid_just_above_the_head_and_centred_on_it():
    focus = HeadFocus(margin=4)
    assert focus.place(person_grid(), HALF) == (16, 88, 66, 194)
    assert focus.place(np.zeros((144, 256), np.float32), HALF) is None      # nobody in the picture


def test_a_stray_blob_of_the_room_does_not_take_the_crop():
    prob = person_grid()
    prob[0:4, 0:6] = 0.9                                               # a lamp at the top left
    assert HeadFocus(margin=4).place(prob, HALF) == (16, 88, 66, 194)


def test_the_crop_stays_put_for_small_moves_and_follows_big_ones():
    focus = HeadFocus(margin=4, slack=4)
    rect = focus.place(person_grid(), HALF)
    focus.store(np.zeros((144, 256), np.float32), rect)
    assert focus.place(person_grid(head=(22, 60, 113, 153)), HALF) == rect   # 2 rows, 3 columns: kept
    assert focus.place(person_grid(head=(22, 60, 130, 170)), HALF) == (18, 90, 86, 214)


def test_a_head_too_wide_for_the_crop_gets_a_wider_one_up_to_a_point():
    # someone leaning in: a head 139 cells wide would fill more than 0.75 of the usual 128-cell crop, so
    # the crop widens to fit it, in the same shape (on video_gt cropped to 854x480: edge error over
    # white 11.0 -> 10.0, IoU 0.991 -> 0.993; docs/quality.md)
    rect = HeadFocus(fill=0.75, widest=0.8, margin=4).place(person_grid(head=(20, 60, 60, 200)), HALF)
    assert rect == (16, 121, 37, 223)
    y0, y1, x0, x1 = rect
    assert x1 - x0 == 186 and abs((x1 - x0) / (y1 - y0) - 128 / 72) < 0.02
    # wider still than 0.8 of the frame: the full view sees the head about as well, so no crop
    assert HeadFocus(fill=0.75, widest=0.8).place(person_grid(head=(20, 60, 10, 240)), HALF) is None


def test_a_crop_across_the_whole_width_takes_a_head_that_fills_it():
    # a phone held upright, close up: the head spans 70 of the grid's 81 columns; a crop as wide as the
    # frame cuts nothing at the sides that the frame does not (on video_gt cropped to 9:16, edge error
    # over white 19.0 -> 16.2 and 8.0 -> 7.8 with this view: docs/quality.md)
    prob = person_grid(rows=144, cols=81, head=(10, 60, 5, 75), body=(60, 144, 0, 81))
    size = HeadFocus.crop_size((144, 81), (1280, 720), (144, 256))
    assert size == (46, 81)
    assert HeadFocus(fill=0.75, margin=4).place(prob, size) == (6, 52, 0, 81)
    narrower = (46, 80)  # one column short of the frame: the head would be cut, so no crop
    assert HeadFocus(fill=0.75, margin=4).place(prob, narrower) is None


@pytest.mark.parametrize("frame, grid, size", [
    ((720, 1280), (144, 256), (82, 146)),      # 16:9: 0.57 of the frame each way, 1.75x
    ((1080, 1920), (144, 256), (82, 146)),
    ((480, 640), (144, 192), (82, 146)),       # 4:3: a 16:9 crop that fills the model's input
    ((1280, 720), (144, 81), (46, 81)),        # a phone held upright: the whole width, 3.2x
    ((360, 640), (144, 256), (82, 146)),       # 366x206 pixels still fill 256x144
    ((240, 426), (144, 256), (82, 147)),       # a small camera: the crop is enlarged to the model's input
    ((180, 320), (144, 256), (82, 146)),
])
def test_the_crop_has_the_model_inputs_shape_at_zoom_times_the_detail_where_the_frame_allows(frame, grid, size):
    assert HeadFocus.ZOOM == 1.75
    assert HeadFocus.crop_size(grid, frame, (144, 256)) == size


def test_the_head_view_replaces_the_full_view_inside_the_crop_and_ramps_in_at_its_sides():
    focus = HeadFocus(ramp=4)
    full = np.full((144, 256), 0.6, np.float32)
    full[:, ::3] = 0.0                                                 # an outline everywhere: free to move
    focus.store(np.full((144, 256), 0.2, np.float32), (40, 112, 64, 192))   # the head view: not a person
    out = np.empty_like(full)
    focus.fuse(full, out)
    assert out[76, 128] == pytest.approx(0.2)                          # inside: the head view's
    assert out[76, 64] == pytest.approx(0.55) and out[76, 67] == pytest.approx(0.25)   # its sides ramp in
    assert out[40, 128] == pytest.approx(0.55) and out[111, 128] == pytest.approx(0.55)
    assert out[20, 20] == pytest.approx(0.6) and out[130, 200] == pytest.approx(0.6)   # outside: the full view's


def test_the_head_view_moves_the_outline_only_within_reach_and_where_the_full_view_saw_something():
    assert HeadFocus.REACH == 2 and HeadFocus.RAISE_FROM == 0.1
    focus = HeadFocus()
    full = np.zeros((144, 256), np.float32)
    full[60:100, 100:160] = 0.95
    for out_by, p in ((1, 0.3), (2, 0.1), (3, 0.03)):                  # the full view's soft halo on the right
        full[60:100, 159 + out_by] = p
    focus.store(np.full((144, 256), 0.9, np.float32), (40, 112, 64, 192))   # a person everywhere, it says
    out = np.empty_like(full)
    focus.fuse(full, out)
    assert out[80, 130] == pytest.approx(0.95)                         # well inside: no lower than the full view
    assert out[80, 160] == pytest.approx(0.9) and out[80, 161] == pytest.approx(0.9)   # the halo: grown
    assert out[80, 162] == pytest.approx(0.3)                          # where the full saw 0.03: 10x that
    assert out[80, 163] == 0.0 and out[57, 130] == 0.0                 # where it saw nothing: nothing


def test_the_head_view_raises_the_outline_further_above_the_head_than_beside_or_below_it():
    # hair rises above the head where the full view is least sure; beside the head stands the room
    assert HeadFocus.REACH == 2 and HeadFocus.REACH_UP == 4
    focus = HeadFocus()
    full = np.zeros((144, 256), np.float32)
    full[50:105, 100:165] = 0.3                                        # a faint halo, 5 cells round, 10 above
    full[60:100, 100:160] = 0.95
    focus.store(np.full((144, 256), 0.9, np.float32), (40, 112, 64, 192))   # a person everywhere, it says
    out = np.empty_like(full)
    focus.fuse(full, out)
    assert np.allclose(out[54:60, 130], 0.9) and out[53, 130] == pytest.approx(0.3)    # above: 6 cells
    assert np.allclose(out[80, 160:162], 0.9) and out[80, 162] == pytest.approx(0.3)   # beside: 2
    assert np.allclose(out[100:102, 130], 0.9) and out[102, 130] == pytest.approx(0.3)  # below: 2


def test_the_head_view_cannot_erase_what_the_full_view_is_sure_of():
    # the far cup of a pair of headphones, which the full view and both peers keep, the head view lost
    focus = HeadFocus()
    full = np.zeros((144, 256), np.float32)
    full[60:100, 100:160] = 0.95
    focus.store(np.zeros((144, 256), np.float32), (40, 112, 64, 192))  # nobody, it says
    out = np.empty_like(full)
    focus.fuse(full, out)
    assert out[80, 130] == pytest.approx(0.95)                         # well inside: the full view's
    assert out[80, 159] == 0.0 and out[80, 157] == pytest.approx(0.95)  # within reach of the outline: it may move


def test_a_lamp_the_head_view_sees_far_from_the_person_is_not_added():
    focus = HeadFocus()
    full = person_grid()
    rect = (16, 88, 66, 194)
    head = np.zeros((144, 256), np.float32)
    head[10:40, 10:40] = 0.9                                           # the crop's top left, at grid scale
    focus.store(head, rect)
    out = np.empty_like(full)
    focus.fuse(full, out)
    assert out[16:36, 66:86].max() == 0.0


def _frames(path, count):
    capture = cv2.VideoCapture(str(path))
    frames = [capture.read()[1] for _ in range(count)]
    capture.release()
    return frames


@pytest.fixture(scope="module")
def talking_head_frames():
    from conftest import CLIP_720P

    return _frames(CLIP_720P, 5)


def _chain(segmenter, **segment):
    from vbg.matting.chain import MatteChain
    from vbg.settings import Settings

    segmenter.keep_aspect = True  # the session is shared with vbg eval's tests, which stretch for `raw`
    settings = Settings()
    settings.segment = dataclasses.replace(settings.segment, **segment)
    return MatteChain(settings, segmenter)


def _views(chain, frames):
    """Which views the model ran on, frame by frame (spying on the one session)."""
    seen = []
    look = chain.focus.look

    def head(image, rect, segmenter):
        seen[-1].append(HEAD)
        return look(image, rect, segmenter)

    chain.focus.look = head
    infer = chain.segmenter.infer

    def full():
        seen[-1].append(FULL)
        return infer()

    chain.segmenter.infer = full
    try:
        for image in frames:
            seen.append([])
            chain.process(image)
    finally:
        del chain.segmenter.infer
    return [tuple(v for i, v in enumerate(views) if not (v == FULL and HEAD in views[:i])) for views in seen]


@pytest.mark.integration
def test_the_first_frame_gets_both_views_then_they_take_turns_with_adaptive_off(segmenter, talking_head_frames):
    chain = _chain(segmenter, adaptive="off", focus="head")
    views = _views(chain, talking_head_frames[:5])
    assert views == [(FULL, HEAD), (FULL,), (HEAD,), (FULL,), (HEAD,)]
    assert chain.focus.rect is not None


@pytest.mark.integration
def test_focus_off_runs_the_full_view_only_and_a_small_camera_gets_the_head_view_too(segmenter, talking_head_frames):
    off = _chain(segmenter, adaptive="off", focus="off")
    assert _views(off, talking_head_frames[:3]) == [(FULL,)] * 3
    # a 320x180 camera: the crop (183x103 pixels) is enlarged to the model's input rather than skipped
    small = [cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in talking_head_frames[:3]]
    assert _views(_chain(segmenter, adaptive="off", focus="head"), small) == [(FULL, HEAD), (FULL,), (HEAD,)]


@pytest.mark.integration
def test_the_head_view_brings_the_head_nearer_the_truth(segmenter):
    """video_gt's office08, frame 0: in the crop, the fused probability agrees better with the true
    alpha than the full view alone (the ears and the hair the full view leaves out)."""
    from conftest import VIDEO_GT

    image = _frames(VIDEO_GT / "input.avi", 1)[0]
    truth = cv2.imread(str(VIDEO_GT / "alpha" / "000000.png"), cv2.IMREAD_GRAYSCALE) > 127
    chain = _chain(segmenter, adaptive="off", focus="head")
    chain.process(image)
    m = chain.focus.mapping
    y0, y1, x0, x1 = chain.focus.rect
    crop = (slice(m.pixel_y(y0), m.pixel_y(y1)), slice(m.pixel_x(x0), m.pixel_x(x1)))

    def iou(prob):
        seen = cv2.resize(prob, truth.shape[::-1], interpolation=cv2.INTER_LINEAR)[crop] > 0.5
        return (seen & truth[crop]).sum() / (seen | truth[crop]).sum()

    full, fused = iou(chain._full), iou(chain._prob)
    assert fused > full + 0.01, (full, fused)               # 0.959 -> 0.980 when written


@pytest.mark.integration
def test_after_a_cut_the_full_view_runs_and_the_head_view_from_before_is_dropped(segmenter):
    """A jump in the picture (a video's loop, another camera): the head view of the old picture would
    hold the old outline, and the smoother keeps it where the new picture holds still."""
    from conftest import CLIP_720P

    capture = cv2.VideoCapture(str(CLIP_720P))
    frames = [capture.read()[1] for _ in range(282)]
    capture.release()
    chain = _chain(segmenter, adaptive="auto", focus="head")
    for image in frames[262:]:                                       # the clip's end ...
        chain.process(image)
    assert chain.focus.rect is not None
    chain.process(frames[0])                                         # ... and its start again
    assert chain.gate.cut and chain.focus.rect is None
    assert np.array_equal(chain._prob, chain._full)
