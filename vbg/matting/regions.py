"""Where the frame needs work: the edge band, the person, the room, as rectangles of whole grid cells.

Outside a band a few pixels wide around the person's outline the alpha is exactly 0 or 1, so the
compositor only copies there (room or camera pixels); refining and blending, the costly per-pixel
work, is done in the band's rectangles alone. Rectangles follow the mask grid so that upsampling a
grid plane into one of them gives exactly what upsampling the whole plane would (`GridToFrame`).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import cv2
import numpy as np

ROOM, PERSON, EDGE = 0, 1, 2
SOFT_LEVELS = (3, 252)  # a held alpha closer than this to 0 or 1 may jump there unseen: a cell of it is room or person


@dataclass(frozen=True)
class Region:
    kind: int                              # ROOM (alpha 0), PERSON (alpha 1) or EDGE (work to do)
    cells: tuple[int, int, int, int]       # rows, then columns, of the mask grid: y0, y1, x0, x1
    pixels: tuple[int, int, int, int]      # the same rectangle in the frame


class GridToFrame:
    """Bilinear upsampling from the mask grid to the frame (as cv2.resize of the whole plane does it),
    one rectangle at a time.

    A rectangle whose borders fall on pixel borders of the grid (every cell at 720p, every 2nd at
    1080p: the `period`) is upsampled from its cells plus a margin of one period, with the same scale,
    so every pixel gets exactly the neighbours and weights it would get in a whole-frame resize.
    """

    def __init__(self, grid: tuple[int, int], frame: tuple[int, int]):
        self.grid, self.frame = grid, frame
        self.period = (grid[0] // gcd(grid[0], frame[0]), grid[1] // gcd(grid[1], frame[1]))
        self._taps = None

    @property
    def taps(self) -> tuple:
        """Where each row, then each column, takes its value from (vbg/matting/kernels.py's `GridTaps`)."""
        if self._taps is None:
            from vbg.matting.kernels import bilinear_taps
            self._taps = (bilinear_taps(self.grid[0], self.frame[0], rows=True),
                          bilinear_taps(self.grid[1], self.frame[1], rows=False))
        return self._taps

    def pixel_y(self, cell_row: int) -> int:
        return cell_row * self.frame[0] // self.grid[0]

    def pixel_x(self, cell_col: int) -> int:
        return cell_col * self.frame[1] // self.grid[1]

    def covering(self, pixels: tuple[int, int, int, int]) -> Region:
        """The smallest EDGE region (whole periods of cells) that contains the rectangle `pixels`."""
        (gh, gw), (fh, fw), (py, px) = self.grid, self.frame, self.period
        y0, y1, x0, x1 = pixels
        cy0, cx0 = y0 * gh // fh // py * py, x0 * gw // fw // px * px
        cy1 = min(gh, _ceil_div(_ceil_div(y1 * gh, fh), py) * py)
        cx1 = min(gw, _ceil_div(_ceil_div(x1 * gw, fw), px) * px)
        return Region(EDGE, (cy0, cy1, cx0, cx1),
                      (self.pixel_y(cy0), self.pixel_y(cy1), self.pixel_x(cx0), self.pixel_x(cx1)))

    def upsample(self, plane: np.ndarray, region: Region, scratch: np.ndarray) -> np.ndarray:
        """`plane` (grid-sized) upsampled over `region`, in place in `scratch` (frame-sized): returns the
        region's view. The margin around it is written too, with the values a whole-frame resize gives."""
        (gh, gw), (py, px) = self.grid, self.period
        cy0, cy1, cx0, cx1 = region.cells
        by0, by1, bx0, bx1 = max(0, cy0 - py), min(gh, cy1 + py), max(0, cx0 - px), min(gw, cx1 + px)
        top, left = self.pixel_y(by0), self.pixel_x(bx0)
        out = scratch[top:self.pixel_y(by1), left:self.pixel_x(bx1)]
        cv2.resize(plane[by0:by1, bx0:bx1], out.shape[1::-1], dst=out, interpolation=cv2.INTER_LINEAR)
        y0, y1, x0, x1 = region.pixels
        return scratch[y0:y1, x0:x1]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def cell_kinds(room: np.ndarray, person: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Each grid cell's kind (uint8 `out`) from where the upsampled alpha is flat at 0 (`room`) or at 1
    (`person`), both uint8 0/1. A pixel interpolates its own cell and the next one on each side, so a
    cell is ROOM or PERSON only when its 3x3 neighbourhood is."""
    out.fill(EDGE)
    out[cv2.erode(room, None) > 0] = ROOM
    out[cv2.erode(person, None) > 0] = PERSON
    return out


def plan(kinds: np.ndarray, mapping: GridToFrame, strip_px: int = 40, min_run_px: int = 24) -> list[Region]:
    """Cuts the frame into rectangles: horizontal strips about `strip_px` tall, each split into runs
    of columns that are all ROOM, all PERSON, or anything else (EDGE). Runs narrower than `min_run_px`
    join the edge (a copy that small saves less than the extra call costs); strips that cut alike are
    merged, so the room above the head is one rectangle."""
    gh, gw = kinds.shape
    py, px = mapping.period
    fh, fw = mapping.frame
    strip = max(py, round(strip_px * gh / fh / py) * py)
    min_units = max(1, round(min_run_px * gw / fw / px))
    units = gw // px
    regions: list[Region] = []
    previous: list[tuple[int, int, int]] | None = None
    first: list[int] = []                        # index in `regions` of the previous strip's rectangles
    for cy0 in range(0, gh, strip):
        cy1 = min(gh, cy0 + strip)
        block = kinds[cy0:cy1].reshape(cy1 - cy0, units, px)
        kind = np.full(units, EDGE, np.uint8)
        kind[(block == ROOM).all(axis=(0, 2))] = ROOM
        kind[(block == PERSON).all(axis=(0, 2))] = PERSON
        runs = _runs(kind, min_units)
        if runs == previous:                     # the same cut: grow the strip above
            y1 = mapping.pixel_y(cy1)
            for i in first:
                r = regions[i]
                regions[i] = Region(r.kind, (r.cells[0], cy1) + r.cells[2:], (r.pixels[0], y1) + r.pixels[2:])
            continue
        previous, first = runs, []
        y0, y1 = mapping.pixel_y(cy0), mapping.pixel_y(cy1)
        for k, u0, u1 in runs:
            first.append(len(regions))
            regions.append(Region(k, (cy0, cy1, u0 * px, u1 * px),
                                  (y0, y1, mapping.pixel_x(u0 * px), mapping.pixel_x(u1 * px))))
    return regions


def _runs(kind: np.ndarray, min_units: int) -> list[tuple[int, int, int]]:
    """(kind, start, end) runs of `kind`, short copy runs folded into the edge."""
    cuts = [0, *(np.flatnonzero(np.diff(kind)) + 1).tolist(), kind.size]
    runs = [[int(kind[a]), a, b] for a, b in zip(cuts, cuts[1:])]
    for r in runs:
        if r[0] != EDGE and r[2] - r[1] < min_units and len(runs) > 1:
            r[0] = EDGE
    merged: list[tuple[int, int, int]] = []
    for k, a, b in runs:
        if merged and merged[-1][0] == k:
            merged[-1] = (k, merged[-1][1], b)
        else:
            merged.append((k, a, b))
    return merged
