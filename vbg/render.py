"""Offline, deterministic matting of an image, a folder of images, or a video.

Same stages as live, run in order on every frame: no frame is dropped. Video frames share the
temporal smoothing; images in a folder are independent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from vbg.backgrounds import IMAGE_SUFFIXES, VIDEO_SUFFIXES, parse_background
from vbg.capture.source import open_video
from vbg.errors import VbgError
from vbg.matting.chain import MatteChain
from vbg.matting.segment import Segmenter
from vbg.outputs.sinks import Recorder
from vbg.progress import ProgressBar
from vbg.settings import Settings


class InputItems:
    """The frames of an image, a folder of images, or a video, with a name each."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise VbgError(f"input {self.path} does not exist")
        if self.path.is_dir():
            self.kind = "folder"
            self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise VbgError(f"folder {self.path} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            self.count = len(self.files)
        elif self.path.suffix.lower() in IMAGE_SUFFIXES:
            self.kind, self.files, self.count = "image", [self.path], 1
        else:
            self.kind = "video"
            cap, self.fps, self.count = open_video(self.path, "not an image, a folder or a video OpenCV can decode")
            cap.release()

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        if self.kind == "video":
            cap, _, _ = open_video(self.path)
            index = 0
            buf = None
            while True:
                ok, buf = cap.read(buf)
                if not ok:
                    break
                yield f"{index:06d}", buf
                index += 1
            cap.release()
            return
        for f in self.files:
            image = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if image is None:
                raise VbgError(f"cannot read image {f}: not an image OpenCV can decode")
            yield f.stem, image


def _write_image(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        raise VbgError(f"cannot write {path}: check the folder exists and is writable, and the extension")


def render(input_path: str, output: str, settings: Settings, segmenter: Segmenter, background: str = "blur",
           alpha_dir: str | None = None, show_progress: bool = True) -> tuple[int, int | None]:
    """Renders every frame; returns (frames rendered, frames the input said it has, if it said).

    Interrupted (Ctrl-C), a partial video file is removed and a partial folder is named, as VbgError
    with exit code 130."""
    items = InputItems(input_path)
    transparent = background == "transparent"
    bg = None if transparent else parse_background(background, live=False)
    matter = MatteChain(settings, segmenter, bg)
    out = Path(output)
    alpha_out = Path(alpha_dir) if alpha_dir else None
    writer = None
    to_folder = items.kind == "folder" or (items.kind == "video" and out.suffix.lower() not in VIDEO_SUFFIXES)
    if items.kind == "image" and transparent and out.suffix.lower() != ".png":
        raise VbgError(f"--background transparent writes RGBA: name the output .png, not {out.name}")
    if items.kind == "video" and transparent and not to_folder:
        raise VbgError(f"--background transparent keeps the alpha in RGBA PNG frames, which {out.suffix} video "
                       f"cannot hold: name a folder instead (e.g. -o {out.with_suffix('')}_frames)")
    for folder in ([out] if to_folder else [out.parent]) + ([alpha_out] if alpha_out else []):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise VbgError(f"cannot create folder {folder}: {e.strerror}") from None
    progress = ProgressBar(f"render {items.path.name}", items.count) if show_progress and items.kind != "image" else None
    rgba = None
    n = 0
    try:
        for name, image in items:
            if items.kind == "folder":
                matter.reset()
            alpha, composite = matter.process(image)
            if transparent:
                if rgba is None or rgba.shape[:2] != image.shape[:2]:
                    rgba = np.empty(image.shape[:2] + (4,), np.uint8)
                rgba[..., :3] = matter.foreground  # with --edge fine, the person's own colour at the edge
                rgba[..., 3] = alpha
                result = rgba
            else:
                result = composite if composite is not None else image
            if to_folder:
                _write_image(out / f"{name}.png", result)
            elif items.kind == "image":
                _write_image(out, result)
            else:
                if writer is None:  # the same writer as `vbg run --record`
                    writer = Recorder(str(out), result.shape[1], result.shape[0], items.fps)
                writer.send(result)
            if alpha_out is not None:
                _write_image(alpha_out / f"{name}.png", alpha)
            n += 1
            if progress:
                progress(n)
    except KeyboardInterrupt:
        if writer is not None:
            writer.close()
            writer = None
            out.unlink(missing_ok=True)
            raise VbgError(f"interrupted after {n} frames: removed the partial {out}", exit_code=130) from None
        where = out if to_folder else alpha_out
        raise VbgError(f"interrupted after {n} frames" + (f": the frames so far are in {where}" if where else ""),
                       exit_code=130) from None
    finally:
        if writer is not None:
            writer.close()
        if progress:
            progress.done()
        if bg is not None:
            bg.close()
    if not to_folder and items.kind == "video" and n and (not out.is_file() or out.stat().st_size < 1024):
        raise VbgError(f"the video writer produced no video in {out}: try .avi (MJPG), or a folder of PNG frames")
    return n, items.count
