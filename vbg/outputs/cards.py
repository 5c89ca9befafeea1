"""What the call sees when there is no live composite: a status card, or the privacy image while paused."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from vbg.backgrounds import BlurredRoom, Passthrough, cover, parse_background, read_image
from vbg.errors import VbgError

log = logging.getLogger("vbg")

PAUSED_TEXT = "paused"


def status_card(shape: tuple[int, int, int], text: str) -> np.ndarray:
    """Dark grey with one line of text: never a silent black or frozen stream, and never the room."""
    card = np.full(shape, 32, np.uint8)
    h, w = shape[:2]
    scale = max(0.5, w / 1280)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    cv2.putText(card, text, ((w - tw) // 2, (h + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (240, 240, 240), 2,
                cv2.LINE_AA)
    return card


def privacy_image(shape: tuple[int, int, int], pause_image: str, background_spec: str) -> np.ndarray:
    """The picture the call sees while paused, never the camera: the chosen background alone (a
    'paused' card for blur and off, which have no picture of their own), black, or a still image."""
    if pause_image == "black":
        return np.zeros(shape, np.uint8)
    if pause_image != "background":
        try:
            return cover(read_image(Path(pause_image).expanduser(), "pause image"), shape[1], shape[0])
        except VbgError as e:
            log.warning("%s: showing a 'paused' card instead", e)
            return status_card(shape, PAUSED_TEXT)
    try:
        background = parse_background(background_spec, live=False)
    except VbgError:
        return status_card(shape, PAUSED_TEXT)
    try:
        if isinstance(background, (BlurredRoom, Passthrough)):
            return status_card(shape, PAUSED_TEXT)
        return background.render(shape, None, None).copy()
    finally:
        background.close()
