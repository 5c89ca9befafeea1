"""Ground truth where segmentation is hard: a ground-truth sequence's person re-composited, with its
true alpha, over rooms that fool a segmenter, moving across them.

The source sequence gives the input I, its background plate B and the true alpha a, so the person's
premultiplied colour is I - (1 - a) B; over a new room C it is exactly I - (1 - a) B + (1 - a) C, and
`vbg eval --video --alpha --plate` scores any system on it against the truth, room kept far from the
edge and trails included. The rooms are drawn here (nothing to license), each with what real rooms put
beside a head: a framed picture and a door edge, a ceiling with dark lines, a skin- and hair-coloured
wall, a bright window, a shelf of books just above the head. The person sways across the room (up to
`SWAY_PX` a side, a swing every `SWAY_FRAMES` frames: fast pans), on top of the head's own turns in the
source.

    python -m vbg.hard_gt OUT_DIR [--source ../shared/data/video_gt/d0_office08]

writes OUT_DIR/<room>/{input.avi, alpha/NNNNNN.png, background.png, meta.json}: test data, not kept in
the repository (about 20 MB a room).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np

ROOMS = ("picture_door", "ceiling_lines", "skin_wall", "bright_window", "shelf_above")
SWAY_PX, SWAY_FRAMES = 160, 26


def room(name: str, shape: tuple[int, int]) -> np.ndarray:
    """A 1280x720-style room (BGR), drawn; any size."""
    h, w = shape
    s = w / 1280
    img = np.empty((h, w, 3), np.uint8)

    def px(v):
        return int(round(v * s))

    if name == "picture_door":
        img[:] = (228, 234, 240)                                   # a warm white wall
        cv2.rectangle(img, (px(60), px(40)), (px(230), h), (55, 75, 105), -1)       # a wooden door
        cv2.rectangle(img, (px(60), px(40)), (px(230), h), (30, 40, 55), px(10))     # its frame
        x0, y0, x1, y1 = px(830), px(200), px(1080), px(470)                         # a picture beside the head
        cv2.rectangle(img, (x0, y0), (x1, y1), (150, 140, 235), -1)                  # pink, like the clips' one
        cv2.circle(img, ((x0 + x1) // 2, (y0 + y1) // 2), px(70), (90, 90, 200), -1)
        cv2.rectangle(img, (x0, y0), (x1, y1), (25, 30, 40), px(14))                 # a dark frame
    elif name == "ceiling_lines":
        img[:] = np.linspace(235, 200, h, dtype=np.float32)[:, None, None].astype(np.uint8)
        vx, vy = w // 2, -px(300)                                  # lines converge above the head
        for k in range(-9, 10):
            cv2.line(img, (vx, vy), (vx + px(160) * k, h), (45, 50, 60), max(1, px(3)), cv2.LINE_AA)
        for y in range(px(60), px(420), px(70)):
            cv2.line(img, (0, y), (w, y), (50, 55, 65), max(1, px(2)), cv2.LINE_AA)
    elif name == "skin_wall":
        img[:] = (140, 170, 215)                                   # a wall of skin tone
        for x in range(0, w, px(150)):
            cv2.rectangle(img, (x, 0), (x + px(40), h), (45, 60, 85), -1)            # hair-brown panels
    elif name == "bright_window":
        img[:] = (120, 125, 130)
        x0, y0, x1, y1 = px(300), px(20), px(1000), px(500)
        img[y0:y1, x0:x1] = (250, 250, 246)                        # a bright window behind the head
        for x in (x0, (x0 + x1) // 2, x1):
            cv2.line(img, (x, y0), (x, y1), (40, 40, 45), px(12))
        cv2.line(img, (x0, (y0 + y1) // 2), (x1, (y0 + y1) // 2), (40, 40, 45), px(12))
    elif name == "shelf_above":
        img[:] = (200, 214, 222)                                   # a pale wall
        rng = np.random.default_rng(7)
        x = 0
        while x < w:                                               # books on a shelf, spines of every colour
            bw = px(rng.integers(14, 40))
            top = px(rng.integers(0, 14))
            colour = tuple(int(v) for v in rng.integers(20, 200, 3))
            if rng.random() < 0.35:
                colour = (40, 45, 55)                              # dark spines, the hair's colour
            cv2.rectangle(img, (x, top), (x + bw - 1, px(34)), colour, -1)
            x += bw + px(2)
        cv2.rectangle(img, (0, px(34)), (w, px(46)), (45, 65, 95), -1)               # the board, a cell or
        cv2.rectangle(img, (0, px(46)), (w, px(49)), (30, 40, 55), -1)               # two above the crown
    else:
        raise ValueError(f"unknown room {name!r}: use one of {', '.join(ROOMS)}")
    return img


def sway(frame: int) -> int:
    return int(round(SWAY_PX * math.sin(2 * math.pi * frame / SWAY_FRAMES)))


def _shifted(image: np.ndarray, dx: int) -> np.ndarray:
    out = np.zeros_like(image)
    if dx >= 0:
        out[:, dx:] = image[:, :image.shape[1] - dx]
    else:
        out[:, :dx] = image[:, -dx:]
    return out


def make(source: Path, out: Path, rooms=ROOMS) -> list[Path]:
    plate = cv2.imread(str(source / "background.png"), cv2.IMREAD_COLOR)
    if plate is None:
        raise SystemExit(f"{source}/background.png is missing: --source is a video_gt sequence")
    plate = plate.astype(np.float32)
    made = []
    for name in rooms:
        target = out / name
        (target / "alpha").mkdir(parents=True, exist_ok=True)
        c = room(name, plate.shape[:2])
        cv2.imwrite(str(target / "background.png"), c)
        cap = cv2.VideoCapture(str(source / "input.avi"))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        writer = cv2.VideoWriter(str(target / "input.avi"), cv2.VideoWriter.fourcc(*"MJPG"), fps,
                                 (plate.shape[1], plate.shape[0]))
        writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 100)
        cf, i = c.astype(np.float32), 0
        while True:
            ok, frame = cap.read()
            alpha_path = source / "alpha" / f"{i:06d}.png"
            if not ok or not alpha_path.exists():
                break
            a8 = cv2.imread(str(alpha_path), cv2.IMREAD_GRAYSCALE)
            a = a8.astype(np.float32)[..., None] / 255
            person = frame.astype(np.float32) - (1 - a) * plate     # premultiplied foreground
            dx = sway(i)
            person, a8 = _shifted(person, dx), _shifted(a8, dx)
            a = a8.astype(np.float32)[..., None] / 255
            writer.write(np.clip(person + (1 - a) * cf, 0, 255).astype(np.uint8))
            cv2.imwrite(str(target / "alpha" / f"{i:06d}.png"), a8)
            i += 1
        writer.release()
        (target / "meta.json").write_text(json.dumps({
            "source": str(source), "room": name, "frames": i, "sway_px": SWAY_PX, "sway_frames": SWAY_FRAMES,
            "truth": "the source's alpha, shifted with the person; background.png is the plate"}, indent=2))
        made.append(target)
    return made


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m vbg.hard_gt", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="folder for the sequences")
    p.add_argument("--source", default=str(Path(__file__).resolve().parents[2] / "shared/data/video_gt/d0_office08"),
                   help="a ground-truth sequence: input.avi, alpha/, background.png")
    p.add_argument("--rooms", default=",".join(ROOMS), help=f"comma-separated, from {', '.join(ROOMS)}")
    args = p.parse_args(argv)
    for target in make(Path(args.source), Path(args.out), [r.strip() for r in args.rooms.split(",") if r.strip()]):
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
