"""What calls see without a live composite: status cards and the privacy image while paused."""

import cv2
import numpy as np
import pytest

from conftest import run_vbg
from vbg.outputs.cards import privacy_image, status_card


def test_privacy_image_is_the_background_black_or_a_picture_never_the_room(tmp_path):
    shape = (180, 320, 3)
    still = tmp_path / "brb.png"
    cv2.imwrite(str(still), np.full((90, 160, 3), (10, 200, 30), np.uint8))
    assert (privacy_image(shape, "background", "color:#102030") == (0x30, 0x20, 0x10)).all()
    assert (privacy_image(shape, "background", str(still)) == (10, 200, 30)).all()
    assert not privacy_image(shape, "black", "blur").any()
    assert (privacy_image(shape, str(still), "blur") == (10, 200, 30)).all()
    card = status_card(shape, "paused")
    for no_picture in ("blur", "blur:80", "none"):          # blur and off have no picture of their own
        assert np.array_equal(privacy_image(shape, "background", no_picture), card)
    (tmp_path / "gone.png").write_text("not an image")
    assert np.array_equal(privacy_image(shape, str(tmp_path / "gone.png"), "blur"), card)


@pytest.mark.parametrize("value, ok", [("black", True), ("nothing.png", False)])
def test_pause_image_flag_is_checked(tmp_path, value, ok):
    r = run_vbg("run", "--pause-image", value, "--help" if ok else "--frames=1")
    assert (r.returncode == 0) == ok
    if not ok:
        assert "pause image 'nothing.png' is neither background, black nor an existing image file" in r.stderr
