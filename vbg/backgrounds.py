"""Backgrounds: what goes behind the person. `parse_background(spec)` is the one factory.

Specs: `blur`, `blur:STRENGTH` (1-100), `color:#RRGGBB`, `none` (passthrough), or a path to an image
or a video file. Every background renders a full-size BGR image into a buffer it owns.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

import cv2
import numpy as np

from vbg.capture.source import open_video
from vbg.errors import VbgError
from vbg.frames import FramePool, LatestSlot
from vbg.timing import Pacer

log = logging.getLogger("vbg")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".gif"}
DEFAULT_BLUR = 40


class Background:
    """Renders the background for one frame. `frame_small` is the frame on the mask grid and `mask`
    the person mask there; most backgrounds ignore both. `steady`: both are near enough the last
    call's that a background drawn from them may be reused."""

    name = "background"
    passthrough = False
    # counts the times the array `render` returns was drawn anew: the same array and the same count
    # mean the same pixels (the compositor then need not copy them again where its output holds
    # them). None: not known, never the same.
    generation: int | None = None

    def render(self, shape: tuple[int, int, int], frame_small: np.ndarray, mask: np.ndarray,
               steady: bool = False) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Passthrough(Background):
    name = "none"
    passthrough = True

    def render(self, shape, frame_small, mask, steady=False):
        raise AssertionError("passthrough has no background")


class SolidColor(Background):
    def __init__(self, bgr: tuple[int, int, int]):
        self.bgr = bgr
        self.name = "color:#%02x%02x%02x" % bgr[::-1]
        self._image = np.empty((0, 0, 3), np.uint8)
        self.generation = 0

    def render(self, shape, frame_small, mask, steady=False):
        if self._image.shape != shape:
            self._image = np.empty(shape, np.uint8)
            self._image[:] = self.bgr
            self.generation += 1
        return self._image


def cover(image: np.ndarray, width: int, height: int, out: np.ndarray | None = None,
          scratch: dict | None = None) -> np.ndarray:
    """Scales `image` to cover width x height and crops the centre (no distortion), into `out` if given.
    With `scratch` (a dict kept by the caller) repeated calls allocate nothing."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    sw, sh = max(width, round(w * scale)), max(height, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    if out is None:
        out = np.empty((height, width, 3), np.uint8)
    if (sw, sh) == (width, height):
        return cv2.resize(image, (sw, sh), dst=out, interpolation=interp)
    scaled = scratch.get((sh, sw)) if scratch is not None else None
    scaled = cv2.resize(image, (sw, sh), dst=scaled, interpolation=interp)
    if scratch is not None:
        scratch[(sh, sw)] = scaled
    x, y = (sw - width) // 2, (sh - height) // 2
    out[:] = scaled[y:y + height, x:x + width]
    return out


_ENDINGS = {b"\xff\xd8": (b"\xff\xd9",), b"\x89P": (b"IEND\xaeB`\x82",)}  # JPEG, PNG: how a whole file ends


def read_image(path: Path, what: str = "background image") -> np.ndarray:
    """A still image as BGR, or VbgError in one line: unreadable, not an image, or cut short (a JPEG or
    PNG without its end marker: damaged, or still downloading; decoded, it would show grey below the cut
    and libjpeg would print a warning of its own)."""
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError as e:
        raise VbgError(f"cannot read {what} {path}: {e.strerror}") from None
    endings = _ENDINGS.get(data[:2].tobytes())
    tail = data[-64:].tobytes().rstrip(b"\0")
    if endings and not any(tail.endswith(end) for end in endings):
        raise VbgError(f"{what} {path} is cut short (damaged, or not fully downloaded): pick another file")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise VbgError(f"cannot read {what} {path}: not an image OpenCV can decode; pick another file")
    return image


class StillImage(Background):
    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        try:
            image = read_image(path)
        except VbgError as e:
            raise VbgError(f"{e}, or use --background blur") from None
        self._source = image
        self._image = np.empty((0, 0, 3), np.uint8)
        self.generation = 0

    def render(self, shape, frame_small, mask, steady=False):
        if self._image.shape != shape:
            self._image = cover(self._source, shape[1], shape[0])
            self.generation += 1
        return self._image


class BlurredRoom(Background):
    """The camera's own frame, blurred, with the person left out of the blur.

    Blurs on the mask grid (the frame is already there at no cost), or half of it for wide blurs, as a
    normalised convolution: each background pixel averages only background, so the person does not
    smear into a halo. Then one bilinear upscale to full size.
    """

    HALF_GRID_SIGMA = 2.0  # grid pixels; strength 40 is 3.8 at any frame size

    def __init__(self, strength: float = DEFAULT_BLUR):
        if not 1 <= strength <= 100:
            raise VbgError(f"blur strength {strength:g} is out of range: use 1-100, e.g. blur:{DEFAULT_BLUR}")
        self.strength = strength
        self.name = "blur" if strength == DEFAULT_BLUR else f"blur:{strength:g}"
        self._small_shape = None
        self._half_shape = None
        self._image = np.empty((0, 0, 3), np.uint8)
        self.generation = 0

    def _buffers(self, small_shape):
        if self._small_shape != small_shape:
            h, w = small_shape[:2]
            self._weight = np.empty((h, w), np.float32)
            self._weighted = np.empty((h, w, 3), np.float32)
            self._den = np.empty((h, w), np.float32)
            self._out_small = np.empty((h, w, 3), np.uint8)
            self._small_shape = small_shape

    def render(self, shape, frame_small, mask, steady=False):
        if self._image.shape == shape and steady:
            return self._image
        if self._image.shape != shape:
            self._image = np.empty(shape, np.uint8)
        self.generation += 1
        # sigma in full-frame pixels grows with strength and frame height; expressed on the grid
        sigma = self.strength * shape[0] / 1500.0 * frame_small.shape[0] / shape[0]
        sigma = max(sigma, 0.5)
        if sigma >= self.HALF_GRID_SIGMA:
            # a blur this wide loses nothing at half the grid, for a quarter of the work
            gh, gw = frame_small.shape[0] // 2, frame_small.shape[1] // 2
            if self._half_shape != (gh, gw):
                self._half_small = np.empty((gh, gw, 3), np.uint8)
                self._half_mask = np.empty((gh, gw), np.float32)
                self._half_shape = (gh, gw)
            cv2.resize(frame_small, (gw, gh), dst=self._half_small, interpolation=cv2.INTER_AREA)
            cv2.resize(mask, (gw, gh), dst=self._half_mask, interpolation=cv2.INTER_AREA)
            frame_small, mask, sigma = self._half_small, self._half_mask, sigma / 2
        self._buffers(frame_small.shape)
        w = self._weight
        # background weight: 0 where the mask is >= 0.5, so soft edge pixels do not leak the person
        np.multiply(mask, -2.0, out=w)
        np.add(w, 1.0, out=w)
        np.maximum(w, 0.0, out=w)
        np.multiply(frame_small, w[..., None], out=self._weighted)
        cv2.GaussianBlur(self._weighted, (0, 0), sigma, dst=self._weighted, borderType=cv2.BORDER_REFLECT)
        cv2.GaussianBlur(w, (0, 0), sigma, dst=self._den, borderType=cv2.BORDER_REFLECT)
        # Where no background is near (deep behind the person, who covers it anyway) the result
        # falls back to the frame's mean colour instead of dividing by ~0.
        eps = 0.02
        mean = cv2.mean(frame_small)[:3]
        np.add(self._weighted, np.asarray(mean, np.float32) * eps, out=self._weighted)
        np.add(self._den, eps, out=self._den)
        np.divide(self._weighted, self._den[..., None], out=self._weighted)
        np.copyto(self._out_small, self._weighted, casting="unsafe")
        cv2.resize(self._out_small, (shape[1], shape[0]), dst=self._image, interpolation=cv2.INTER_LINEAR)
        return self._image


class LoopingVideo(Background):
    """A looping video file. Live, a thread decodes it at its own fps and hands over the newest frame
    (scaled to cover); offline (`live=False`) each render takes the next frame, so output is repeatable."""

    def __init__(self, path: Path, live: bool = True):
        self.path = path
        self.name = path.name
        self.live = live
        what = "not a video OpenCV can decode; pick another file or use --background blur"
        try:
            self._cap, self.fps, _ = open_video(path, what)
        except VbgError:
            raise VbgError(f"cannot read background video {path}: {what}") from None
        ok, first = self._cap.read()
        if not ok:
            self._cap.release()
            raise VbgError(f"cannot read background video {path}: {what}")
        self._pending_first = first
        self._shape: tuple[int, int, int] | None = None
        self._current = None  # Frame held for the compositor
        self._slot = LatestSlot()
        self._pool = FramePool(3)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._failed_once = False
        self._scratch: dict = {}

    def _read_next(self) -> np.ndarray | None:
        if self._pending_first is not None:
            raw, self._pending_first = self._pending_first, None
            return raw
        ok, raw = self._cap.read()
        if not ok:  # end of file: loop
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, raw = self._cap.read()
        if not ok:
            if not self._failed_once:
                log.warning("background video %s stopped decoding; keeping its last frame", self.path)
                self._failed_once = True
            return None
        return raw

    def _decode_loop(self, shape) -> None:
        pacer = Pacer(self.fps, self._stop)
        while not self._stop.is_set():
            raw = self._read_next()
            if raw is not None:
                frame = self._pool.take(shape, timeout=0.5)
                if frame is not None:
                    cover(raw, shape[1], shape[0], out=frame.image, scratch=self._scratch)
                    self._slot.put(frame)
            pacer.wait()
            if raw is None:
                self._stop.wait(1.0)

    def render(self, shape, frame_small, mask, steady=False):
        if not self.live:
            raw = self._read_next()
            if self._current is None or self._current.shape != shape:
                self._current = np.zeros(shape, np.uint8)
            if raw is not None:
                cover(raw, shape[1], shape[0], out=self._current, scratch=self._scratch)
            return self._current
        if self._shape != shape:
            self.close()
            self._stop.clear()
            self._shape = shape
            self._slot = LatestSlot()
            self._thread = threading.Thread(target=self._decode_loop, args=(shape,), name="vbg-bg-video", daemon=True)
            self._thread.start()
            self._current = self._slot.get(timeout=2.0)
        newer = self._slot.get(timeout=0)
        if newer is not None:
            if self._current is not None:
                self._current.release()
            self._current = newer
        return self._current.image if self._current is not None else np.zeros(shape, np.uint8)

    def close(self) -> None:
        self._stop.set()
        self._slot.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self.live and self._current is not None:
            self._current.release()
            self._current = None
        self._shape = None


_COLOR = re.compile(r"^(?:color|colour):#?([0-9a-fA-F]{6})$")


def parse_background(spec: str, live: bool = True) -> Background:
    """Turns a --background value into a Background, or raises VbgError saying what is wrong."""
    s = spec.strip()
    low = s.lower()
    if low in ("none", "off"):
        return Passthrough()
    if low == "blur" or low.startswith("blur:"):
        value = low.partition(":")[2]
        try:
            strength = float(value) if value else DEFAULT_BLUR
        except ValueError:
            raise VbgError(f"blur strength {value!r} is not a number: use e.g. blur:{DEFAULT_BLUR}") from None
        return BlurredRoom(strength)
    if low.startswith(("color", "colour")):
        m = _COLOR.match(s)
        if not m:
            raise VbgError(f"bad colour {s!r}: use color:#RRGGBB, e.g. color:#2e7d32")
        r, g, b = (int(m.group(1)[i:i + 2], 16) for i in (0, 2, 4))
        return SolidColor((b, g, r))
    path = Path(s).expanduser()
    if not path.exists():
        raise VbgError(f"background {s!r} is neither blur, color:#RRGGBB, none nor an existing file")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return LoopingVideo(path, live=live)
    return StillImage(path)
