"""The backgrounds the window offers: built-ins, the shipped defaults, and the user's own folder."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vbg.backgrounds import (IMAGE_SUFFIXES, VIDEO_SUFFIXES, BlurredRoom, Passthrough, SolidColor, cover,
                             parse_background)
from vbg.capture.source import open_video
from vbg.errors import VbgError
from vbg.resources import config_dir, shipped_dir

THUMB = (160, 90)

# Real rooms, downloaded on request: vbg ships generated pictures only. These are LINE's office and
# nature photos (Apache-2.0), pinned to one commit of line/abc-virtual-background-maker.
ROOMS_SOURCE = ("https://raw.githubusercontent.com/line/abc-virtual-background-maker/"
                "b229045e950f33df680030d6eaf5cc4bf9d6ecb3/backgrounds")
ROOMS = tuple(f"office/0{i}.jpg" for i in range(1, 6)) + tuple(f"nature/0{i}.jpg" for i in range(1, 4))
ROOMS_URL_ENV = "VBG_ROOMS_URL"  # a mirror of that folder
ROOMS_CREDIT = ("Office and nature photos: LINE Corporation, abc-virtual-background-maker, Apache-2.0 "
                "(https://github.com/line/abc-virtual-background-maker)\n")


@dataclass(frozen=True)
class Choice:
    label: str
    spec: str                     # a --background value
    path: Path | None = None


def user_folder() -> Path:
    return config_dir() / "backgrounds"


def _files(folder: Path) -> list[Choice]:
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    return [Choice(p.stem.replace("_", " "), str(p), p) for p in files]


def choices() -> list[Choice]:
    built_in = [Choice("Blur", "blur"), Choice("Strong blur", "blur:80"), Choice("Off", "none"),
                Choice("Slate", "color:#2f3640"), Choice("Green screen", "color:#00b140")]
    return built_in + _files(shipped_dir("backgrounds")) + _files(user_folder())


def add_to_user_folder(source: Path) -> Path:
    """Copies an image or video into the user's folder (after checking OpenCV can read it)."""
    source = Path(source)
    suffix = source.suffix.lower()
    if suffix not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
        raise VbgError(f"{source.name} is not an image or video vbg can use ({', '.join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))})")
    if thumbnail(Choice(source.stem, str(source), source)) is None:
        raise VbgError(f"cannot read {source.name}: the file is damaged or in a format OpenCV cannot decode")
    folder = user_folder()
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / source.name
    n = 1
    while dest.exists():
        dest = folder / f"{source.stem}-{n}{suffix}"
        n += 1
    shutil.copy2(source, dest)
    return dest


def thumbnail(choice: Choice, size: tuple[int, int] = THUMB) -> np.ndarray | None:
    """A BGR thumbnail, or None when the file cannot be read (shown as broken, never a crash)."""
    w, h = size
    try:
        kind = None if choice.path is not None else parse_background(choice.spec)
    except VbgError:
        return None
    if isinstance(kind, BlurredRoom):  # a sketch of a room (wall, window, shelf, plant), blurred
        img = np.full((h, w, 3), (150, 170, 185), np.uint8)
        cv2.rectangle(img, (w // 10, h // 8), (w // 3, h // 2), (235, 225, 210), -1)
        cv2.rectangle(img, (int(w * 0.55), int(h * 0.35)), (int(w * 0.95), int(h * 0.45)), (60, 90, 120), -1)
        cv2.circle(img, (int(w * 0.8), int(h * 0.7)), h // 5, (70, 140, 60), -1)
        cv2.rectangle(img, (0, int(h * 0.8)), (w, h), (90, 110, 130), -1)
        return cv2.GaussianBlur(img, (0, 0), 1 + kind.strength / 15)
    if isinstance(kind, Passthrough):
        img = np.full((h, w, 3), 60, np.uint8)
        cv2.line(img, (w // 3, h // 3), (2 * w // 3, 2 * h // 3), (200, 200, 200), 3, cv2.LINE_AA)
        cv2.line(img, (2 * w // 3, h // 3), (w // 3, 2 * h // 3), (200, 200, 200), 3, cv2.LINE_AA)
        return img
    if isinstance(kind, SolidColor):
        return np.full((h, w, 3), kind.bgr, np.uint8)
    if choice.path is None:
        return None
    if choice.path.suffix.lower() in VIDEO_SUFFIXES:
        try:
            cap, _, _ = open_video(choice.path)
        except VbgError:
            return None
        ok, image = cap.read()
        cap.release()
        if not ok:
            return None
    else:
        image = cv2.imread(str(choice.path), cv2.IMREAD_COLOR)
        if image is None:
            return None
    return cover(image, w, h)


def download_rooms(progress=None) -> list[Path]:
    """Fetches the room photos into the user's folder (skipping those already there), checks each
    decodes, and writes a CREDITS.txt beside them; raises VbgError in words when offline."""
    import os
    import urllib.request

    from vbg.model import network_reason

    base = os.environ.get(ROOMS_URL_ENV) or ROOMS_SOURCE
    folder = user_folder()
    folder.mkdir(parents=True, exist_ok=True)
    added = []
    for n, name in enumerate(ROOMS):
        kind, number = name.removesuffix(".jpg").split("/")
        dest = folder / f"{kind.title()}_{int(number)}.jpg"
        if progress is not None:
            progress(n, len(ROOMS))
        if dest.exists():
            continue
        url = f"{base}/{name}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                data = response.read()
        except (OSError, ValueError) as e:
            raise VbgError(f"cannot download the room photos: {network_reason(e, url)}"
                           + (f" ({len(added)} of {len(ROOMS)} fetched)" if added else "")) from None
        if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is None:
            raise VbgError(f"{url} is not a picture: not kept")
        dest.write_bytes(data)
        added.append(dest)
    (folder / "CREDITS.txt").write_text(ROOMS_CREDIT)
    if progress is not None:
        progress(len(ROOMS), len(ROOMS))
    return added
