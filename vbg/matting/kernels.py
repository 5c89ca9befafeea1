"""The edge band's per-pixel work in one compiled pass (numba), with OpenCV as the fallback.

For each edge rectangle (vbg/matting/regions.py) the OpenCV path makes about fifteen passes over it, each a
Python call: the filter's coefficients and the model's bound upsampled from the grid, the filter's
value from them and the guide, the bound, the hold against last frame's alpha (vbg/matting/hold.py),
the person's own colour where the edge is soft, the blend, and which cells came out all room or all
person (the next frame's plan). `edge_pass` does it in one pass over the rectangle's rows, on
contiguous rows so that the compiler vectorises it: it upsamples the grid planes itself, separably
and with cv2.resize's weights (along the few grid rows the rectangle needs, then between two of them
per pixel row), which saves the three resize calls per rectangle and their frame-sized buffers. The
room and person rectangles stay plain copies. Both paths give the same alpha and output within a
level (tests/test_kernels.py).

On the frames whose edge band it does, the compiled path also solves the guided filter on the grid
(`_guided_solve`): one loop per plane where OpenCV makes some sixty Python calls on 256x144 planes for
the colour guide, and the cells' room / person classification in the same pass.

Compiling takes seconds, so it happens in a child process that fills numba's cache
(`CompiledKernels.start`), loaded here once it is done, while the OpenCV path composes; `cache=True`
keeps the machine code between runs. Without numba (no wheel for a new Python yet) the OpenCV path is
all there is.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vbg.matting.regions import EDGE, PERSON, ROOM, SOFT_LEVELS

log = logging.getLogger(__name__)

numba = None  # imported on the compiling thread (it takes a quarter of a second): `CompiledKernels._compile`

_f32, _i32, _u16 = np.float32, np.int32, np.uint16
COMPILE_WAIT_S = 120.0  # the longest wait for the compiled pass (the first compile, on a slow machine)
_COMPILE_HERE = "from vbg.matting.kernels import KERNELS; KERNELS._compile()"  # a child process's whole job
SOFT = (12, 243)  # alpha levels between which the person's own colour replaces the camera's; nearer 0 or 1 it hardly shows


def _div255(p):
    """round(x / 255) for x = p - 128 in 0..255*255, with p = x + 128 (exact; what cv2.multiply with a
    scale of 1/255 gives)."""
    return ((p >> 8) + p) >> 8


def _edge_pass(y0, y1, x0, x1, ga, gb, gcap, guide, gray, prev_gray, alpha, image, bg, out, ha, hb, hc, trow, row3,
               keep, motion, trail, shimmer, decontaminate, person, room, track, shown, cells, rows, cols):
    """Fills alpha and out over rows y0:y1, columns x0:x1 (frame-sized arrays, C-contiguous).

    alpha*255 = a . guide + b, at most `cap`, with a (1 or 3 channels), b and cap the grid planes `ga`,
    `gb` and `gcap` upsampled here as cv2.resize upsamples a whole plane (`rows` and `cols`: each one's
    `GridTaps`): first along the rows of the grid the rectangle needs (into `ha`, `hb`, `hc`), then
    between two of those rows for each pixel row, both steps over contiguous rows. Held: a pixel whose
    grey changed by less than `motion` keeps last frame's alpha (in `alpha`) where the new one is within
    `shimmer` of it, else `keep` of it, no further than `trail` from the new value; blended over `bg`;
    where `decontaminate` and the alpha is soft, the camera's colour is replaced by
    F = F^ + a (I - a F^ - (1 - a) B^), F^ and B^ the grid's `person` and `room` colours. With `track`,
    notes in `shown` which of the rectangle's grid cells came out all room or all person (what
    `EdgeRefiner._track_shown` does on the OpenCV path)."""
    channels = ga.shape[2]
    take = _f32(1.0) - keep
    n = x1 - x0
    ys0, ys1, ky0, wy0, wy1, rlo, rhi = rows
    xs0, xs1, kx0, wx0, wx1, clo, chi = cols
    g0 = ys0[y0]
    i0s, i1s, k0s, w0s, w1s = xs0[x0:x1], xs1[x0:x1], kx0[x0:x1], wx0[x0:x1], wx1[x0:x1]
    for g in range(g0, ys1[y1 - 1] + 1):  # along the grid's rows: each pixel column from its two grid columns
        har, hbr, hcr, gar, gbr, gcr = ha[g - g0], hb[g - g0], hc[g - g0], ga[g], gb[g], gcap[g]
        if channels == 1:
            for x in range(n):
                har[x] = gar[i0s[x], 0] * w0s[x] + gar[i1s[x], 0] * w1s[x]
        else:
            for x in range(n):
                for c in range(3):
                    har[3 * x + c] = gar[i0s[x], c] * w0s[x] + gar[i1s[x], c] * w1s[x]
        for x in range(n):
            hbr[x] = gbr[i0s[x]] * w0s[x] + gbr[i1s[x]] * w1s[x]
        for x in range(n):
            hcr[x] = _i32(gcr[i0s[x]]) * k0s[x] + _i32(gcr[i1s[x]]) * (2048 - k0s[x])
    for y in range(y0, y1):
        # each row's segment as its own slice: indexing from 0 is what lets the compiler vectorise
        r0, r1, v0, v1, ky = ys0[y] - g0, ys1[y] - g0, wy0[y], wy1[y], ky0[y]
        a0, a1, b0, b1, c0, c1 = ha[r0], ha[r1], hb[r0], hb[r1], hc[r0], hc[r1]
        gr = guide[y].reshape(-1)[channels * x0:channels * x1]
        now, before, held = gray[y][x0:x1], prev_gray[y][x0:x1], alpha[y][x0:x1]
        if channels == 1:
            for x in range(n):
                trow[x] = (a0[x] * v0 + a1[x] * v1) * _f32(gr[x]) + (b0[x] * v0 + b1[x] * v1)
        else:
            for x in range(n):
                j = 3 * x
                trow[x] = (a0[j] * v0 + a1[j] * v1) * _f32(gr[j]) \
                    + (a0[j + 1] * v0 + a1[j + 1] * v1) * _f32(gr[j + 1]) \
                    + (a0[j + 2] * v0 + a1[j + 2] * v1) * _f32(gr[j + 2]) + (b0[x] * v0 + b1[x] * v1)
        for x in range(n):
            t = min(max(trow[x] + _f32(0.5), _f32(0.0)), _f32(255.0))
            cap = _between_rows8(c0[x], c1[x], ky)
            new = min(_i32(t), cap)
            slack = trail if abs(_i32(now[x]) - _i32(before[x])) < motion else _i32(0)
            last = _i32(held[x])
            kept = last if abs(last - new) <= shimmer else _i32(_f32(last) * keep + _f32(new) * take + _f32(0.5))
            v = min(max(kept, max(new - slack, _i32(0))), min(new + min(new, slack), _i32(255)))
            held[x] = v
            row3[3 * x] = v
            row3[3 * x + 1] = v
            row3[3 * x + 2] = v
        ir, gbr = image[y].reshape(-1)[3 * x0:3 * x1], bg[y].reshape(-1)[3 * x0:3 * x1]
        orow = out[y].reshape(-1)[3 * x0:3 * x1]
        for j in range(3 * n):
            al = _u16(row3[j])
            p = _u16(ir[j]) * al + _u16(128)
            q = _u16(gbr[j]) * (_u16(255) - al) + _u16(128)
            orow[j] = _div255(p) + _div255(q)
        if not decontaminate:
            continue
        gy0, gy1 = ys0[y], ys1[y]
        for x in range(n):  # few pixels are soft: one by one, with the local colours upsampled here
            al = _i32(held[x])
            if al < SOFT[0] or al > SOFT[1]:
                continue
            gx0, gx1, kx = xs0[x0 + x], xs1[x0 + x], kx0[x0 + x]
            for c in range(3):
                f = _upsample8(person[gy0, gx0, c], person[gy0, gx1, c], person[gy1, gx0, c], person[gy1, gx1, c], kx, ky)
                k = _upsample8(room[gy0, gx0, c], room[gy0, gx1, c], room[gy1, gx0, c], room[gy1, gx1, c], kx, ky)
                d = f - k
                ad = _div255(abs(d) * al + 128)
                est = _i32(ir[3 * x + c]) - k - (ad if d >= 0 else -ad)
                ae = _div255(abs(est) * al + 128)
                own = min(max(f + (ae if est >= 0 else -ae), _i32(0)), _i32(255))
                orow[3 * x + c] = _div255(own * al + 128) + _div255(_i32(gbr[3 * x + c]) * (255 - al) + 128)
    if not track:
        return
    # a cell is all room (person) when every pixel it covers is within SOFT_LEVELS of 0 (255)
    cy0, cy1, cx0, cx1 = cells
    lo, hi = row3[:n], row3[n:2 * n]
    for cy in range(cy0, cy1):
        py0, py1 = max(rlo[cy], y0), min(rhi[cy], y1)
        lo[:] = alpha[py0][x0:x1]
        hi[:] = lo
        for y in range(py0 + 1, py1):  # each column's least and most over the cell row's pixel rows
            row = alpha[y][x0:x1]
            for x in range(n):
                lo[x] = min(lo[x], row[x])
                hi[x] = max(hi[x], row[x])
        for cx in range(cx0, cx1):
            least, most = 255, 0
            for x in range(max(clo[cx], x0) - x0, min(chi[cx], x1) - x0):
                least = min(least, _i32(lo[x]))
                most = max(most, _i32(hi[x]))
            shown[cy, cx] = ROOM if most < SOFT_LEVELS[0] else PERSON if least > SOFT_LEVELS[1] else EDGE


def _upsample8(p00, p01, p10, p11, kx, ky):
    """An 8-bit grid plane's bilinear value at a pixel, as cv2.resize computes it (11-bit weights, the
    rounding of its vector code), so that the local colours are the OpenCV path's to the level."""
    return _between_rows8(_i32(p00) * kx + _i32(p01) * (2048 - kx), _i32(p10) * kx + _i32(p11) * (2048 - kx), ky)


def _between_rows8(r0, r1, ky):
    """cv2.resize's vertical step for 8-bit planes: two rows already blended along x (values x 2048)
    weighed by `ky` (11 bits) with the rounding of its vector code."""
    return ((((r0 >> 4) * ky) >> 16) + (((r1 >> 4) * (2048 - ky)) >> 16) + 2) >> 2


def _reflect(i, n):
    """Index `i` of `n` with the border mirrored as cv2.boxFilter's default does (BORDER_REFLECT_101)."""
    if i < 0:
        return -i
    if i >= n:
        return 2 * n - 2 - i
    return i


def _box(u, v, product, dst, r, col, pad):
    """dst = the mean of u (of u * v, with `product`) over (2r + 1)^2 cells, as cv2.boxFilter gives it:
    running column sums in float64 (`col`), then shifted sums along each row (`pad`: the row mirrored
    by r at both ends), which the compiler vectorises."""
    h, w = u.shape
    col[:] = 0.0
    for dy in range(-r, r + 1):
        k = _reflect(dy, h)
        ur, vr = u[k], v[k]
        if product:
            for x in range(w):
                col[x] += ur[x] * vr[x]
        else:
            for x in range(w):
                col[x] += ur[x]
    scale = _f32(1.0 / ((2 * r + 1) * (2 * r + 1)))
    for y in range(h):
        for x in range(w):
            pad[r + x] = col[x]
        for d in range(1, r + 1):
            pad[r - d] = pad[r + d]
            pad[r + w - 1 + d] = pad[r + w - 1 - d]
        out = dst[y]
        for x in range(w):
            out[x] = pad[x]
        for d in range(1, 2 * r + 1):
            shifted = pad[d:d + w]
            for x in range(w):
                out[x] += shifted[x]
        for x in range(w):
            out[x] *= scale
        ka, ks = _reflect(y + r + 1, h), _reflect(y - r, h)
        ua, va, us, vs = u[ka], v[ka], u[ks], v[ks]
        if product:
            for x in range(w):
                col[x] += np.float64(ua[x] * va[x]) - np.float64(us[x] * vs[x])
        else:
            for x in range(w):
                col[x] += np.float64(ua[x]) - np.float64(us[x])


def _guided_solve(guide, mask, cap, r, eps, snap, a_out, b_out, room, person, planes, col, pad):
    """The guided filter's coefficients on the grid (He et al.; vbg/matting/refine.py's `_guided` for a
    1-channel guide, `_guided_color` for 3), with the snap folded in: alpha*255 = a . guide + b, guide
    in 8-bit levels. Also where the cell can only be room (0/1 in `room`: no guide value lifts it above
    0, or `cap` holds it at 0) or only person (`person`), which `EdgeRefiner._classify` does with
    OpenCV. `planes`: float32 scratch, `solve_planes(C)` of them."""
    h, w, C = guide.shape
    inv = _f32(1.0 / 255.0)
    g = planes[:C]
    for y in range(h):
        gr = guide[y]
        for c in range(C):
            row = g[c, y]
            for x in range(w):
                row[x] = _f32(gr[x, c]) * inv
    means = planes[C:]  # I_c, p, I_c p, I_i I_j (i <= j), each boxed
    for c in range(C):
        _box(g[c], g[c], False, means[c], r, col, pad)
    _box(mask, mask, False, means[C], r, col, pad)
    for c in range(C):
        _box(g[c], mask, True, means[C + 1 + c], r, col, pad)
    k = 2 * C + 1
    for i in range(C):
        for j in range(i, C):
            _box(g[i], g[j], True, means[k], r, col, pad)
            k += 1
    coef = means[k:k + C + 1]  # a_c, then b, before their own box
    for y in range(h):
        mp = means[C, y]
        if C == 1:
            mi, mip, mii, qa, qb = means[0, y], means[2, y], means[3, y], coef[0, y], coef[1, y]
            for x in range(w):
                a = (mip[x] - mi[x] * mp[x]) / (mii[x] - mi[x] * mi[x] + eps)
                qa[x] = a
                qb[x] = mp[x] - a * mi[x]
        else:
            m0, m1, m2, p0, p1, p2 = means[0, y], means[1, y], means[2, y], means[4, y], means[5, y], means[6, y]
            s00, s01, s02 = means[7, y], means[8, y], means[9, y]
            s11, s12, s22 = means[10, y], means[11, y], means[12, y]
            q0, q1, q2, q3 = coef[0, y], coef[1, y], coef[2, y], coef[3, y]
            for x in range(w):
                c0 = p0[x] - m0[x] * mp[x]  # cov(I, p)
                c1 = p1[x] - m1[x] * mp[x]
                c2 = p2[x] - m2[x] * mp[x]
                v00 = s00[x] - m0[x] * m0[x] + eps  # var(I) + eps U
                v01 = s01[x] - m0[x] * m1[x]
                v02 = s02[x] - m0[x] * m2[x]
                v11 = s11[x] - m1[x] * m1[x] + eps
                v12 = s12[x] - m1[x] * m2[x]
                v22 = s22[x] - m2[x] * m2[x] + eps
                i00, i01, i02 = v11 * v22 - v12 * v12, v02 * v12 - v01 * v22, v01 * v12 - v02 * v11
                i11, i12, i22 = v00 * v22 - v02 * v02, v01 * v02 - v00 * v12, v00 * v11 - v01 * v01
                det = v00 * i00 + v01 * i01 + v02 * i02
                a0 = (i00 * c0 + i01 * c1 + i02 * c2) / det
                a1 = (i01 * c0 + i11 * c1 + i12 * c2) / det
                a2 = (i02 * c0 + i12 * c1 + i22 * c2) / det
                q0[x], q1[x], q2[x] = a0, a1, a2
                q3[x] = mp[x] - a0 * m0[x] - a1 * m1[x] - a2 * m2[x]
    boxed = means[:C + 1]
    for c in range(C + 1):
        _box(coef[c], coef[c], False, boxed[c], r, col, pad)
    gain = _f32(1.0 / (1.0 - 2.0 * snap))
    for y in range(h):
        ar, br, bb, capr, roomr, personr = a_out[y], b_out[y], boxed[C, y], cap[y], room[y], person[y]
        for x in range(w):
            br[x] = (bb[x] - _f32(snap)) * _f32(255.0) * gain
        for x in range(w):  # the least and the most alpha any guide gives: from the a's signs
            lo, hi = _f32(0.0), _f32(0.0)
            for c in range(C):
                a = boxed[c, y, x] * gain
                ar[x, c] = a
                lo += min(a, _f32(0.0))
                hi += max(a, _f32(0.0))
            roomr[x] = 1 if hi * _f32(255.0) + br[x] <= _f32(0.5) or capr[x] == 0 else 0
            personr[x] = 1 if lo * _f32(255.0) + br[x] >= _f32(254.5) and capr[x] == 255 else 0


class GridTaps(NamedTuple):
    """Where each pixel row (or column) of the frame takes its value from when cv2.resize's INTER_LINEAR
    upsamples a grid plane, and which pixels each grid row (column) covers."""
    first: np.ndarray    # int32: the first of the two grid indices (clamped at the borders)
    second: np.ndarray   # int32: the second
    weight11: np.ndarray  # int32: the first one's weight in 11 bits (8-bit planes)
    weight0: np.ndarray  # float32: the first one's weight (float planes)
    weight1: np.ndarray  # float32: the second one's
    cell_first: np.ndarray  # int32, per grid index: the first pixel it covers (an area average's footprint)
    cell_end: np.ndarray    # int32: one past its last


def bilinear_taps(src: int, dst: int, rows: bool) -> GridTaps:
    """For each of `dst` pixels, where cv2.resize's INTER_LINEAR takes it from (`src` grid indices). A
    column at the border takes all of its weight from one index, a row does not (OpenCV's way, which
    shows in the rounding)."""
    pos = ((np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5).astype(np.float32)
    i0 = np.floor(pos)
    frac = (pos - i0).astype(np.float32)
    if not rows:
        frac[(i0 < 0) | (i0 >= src - 1)] = 0.0
    first = np.round((1.0 - frac.astype(np.float64)) * 2048).astype(np.int32)
    k = np.arange(src + 1, dtype=np.int64)
    return GridTaps(np.clip(i0, 0, src - 1).astype(np.int32), np.clip(i0 + 1, 0, src - 1).astype(np.int32), first,
                    (np.float32(1.0) - frac).astype(np.float32), frac,
                    (k[:-1] * dst // src).astype(np.int32), (-(-k[1:] * dst // src)).astype(np.int32))


class CompiledKernels:
    """The compiled edge pass and grid solve, compiled in a child process and loaded on a thread of
    its own. `edge_pass` and `guided_solve` are usable once `ready` is set; `error` says why they
    never will be (no numba, a failed compile)."""

    def __init__(self):
        self.ready = threading.Event()
        self._done = threading.Event()  # compiled, or failed to
        self.available = importlib.util.find_spec("numba") is not None
        self.error: str | None = None if self.available else "numba is not installed"
        self.compile_s: float | None = None
        self._started = False
        self._lock = threading.Lock()
        self._function = self._solve = None

    def start(self) -> None:
        """Compiles in the background (once per process; later calls return at once)."""
        with self._lock:
            if self._started or not self.available:
                return
            self._started = True
        child = self._compile_elsewhere()  # started here, so that a process quitting at once still has it
        threading.Thread(target=self._build, args=(child,), name="vbg-compile", daemon=True).start()

    def _build(self, child: subprocess.Popen | None = None) -> None:
        """Compiles in a child process into numba's cache, then loads that here. The first compile takes
        seconds, most of them in numba's own Python code: in this process it would hold the GIL the
        frames need (a fresh install showed 5-8 fps while it compiled). The child's work is lost to
        nothing if this process quits meanwhile (it finishes, and the next start finds the cache); if it
        fails, or the cache cannot be written, the load below compiles here instead."""
        if child is not None:
            try:
                child.wait(COMPILE_WAIT_S)
            except subprocess.TimeoutExpired:
                child.kill()
        try:
            # not a daemon: Python waits for it before tearing down. LLVM runs outside the GIL, and a
            # process that exits while LLVM works here aborts in LLVM's own teardown (an assertion,
            # seen on a fresh install that quit within seconds of its first frame, when the whole
            # compile ran here)
            threading.Thread(target=self._compile, name="vbg-compile-load", daemon=False).start()
        except RuntimeError:  # the interpreter is shutting down: nothing is waiting for the pass
            pass

    @staticmethod
    def _compile_elsewhere() -> subprocess.Popen | None:
        """The child process that compiles into numba's cache, or None where it cannot start (a frozen
        app's executable is the app itself, not a Python that takes -c)."""
        if getattr(sys, "frozen", False):
            return None
        package_root = str(Path(__file__).resolve().parents[2])  # the same kernels.py, so the same cache
        path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        try:
            return subprocess.Popen([sys.executable, "-c", _COMPILE_HERE], env=dict(os.environ, PYTHONPATH=path),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None

    def wait(self, timeout: float | None = None) -> bool:
        """Starts compiling if needed and waits for it; True when the compiled path is ready."""
        self.start()
        if not self.available:
            return False
        self._done.wait(timeout)
        return self.ready.is_set()

    def _compile(self) -> None:
        global numba, _div255, _between_rows8, _upsample8, _reflect, _box
        t0 = time.perf_counter()
        try:
            import numba as module
            numba = module
            _div255 = numba.njit(cache=True, inline="always")(getattr(_div255, "py_func", _div255))
            _between_rows8 = numba.njit(cache=True, inline="always")(getattr(_between_rows8, "py_func", _between_rows8))
            _upsample8 = numba.njit(cache=True, inline="always")(getattr(_upsample8, "py_func", _upsample8))
            _reflect = numba.njit(cache=True, inline="always")(getattr(_reflect, "py_func", _reflect))
            options = dict(cache=True, nogil=True, fastmath=True, error_model="numpy")
            _box = numba.njit(**options)(getattr(_box, "py_func", _box))
            function, solve = numba.njit(**options)(_edge_pass), numba.njit(**options)(_guided_solve)
            _warm_up(function, solve)
            for compiled in (function, solve):
                compiled.disable_compile()  # a new argument type raises TypeError, never stalls a frame compiling
        except Exception as e:  # numba raises many kinds; any of them means: stay on OpenCV
            self.error = f"the compiled compositor failed to build ({type(e).__name__}: {str(e).splitlines()[0]})"
            log.warning("%s; compositing with OpenCV", self.error)
            self._done.set()
            return
        self._function, self._solve = function, solve
        self.compile_s = time.perf_counter() - t0
        log.debug("compiled compositor ready in %.1f s", self.compile_s)
        self.ready.set()
        self._done.set()

    def edge_pass(self, *args) -> None:
        self._function(*args)

    def guided_solve(self, *args) -> None:
        self._solve(*args)


def solve_planes(channels: int) -> int:
    """How many float32 grid planes `_guided_solve` needs as scratch for a guide of `channels`."""
    return channels + (2 * channels + 1 + channels * (channels + 1) // 2) + (channels + 1)  # guide, means, coefficients


def _warm_up(function, solve) -> None:
    """One call with each argument type the compositor passes (grey and colour guides, with and
    without the person's own colour), so that the machine code exists before the first real frame."""
    h, w, gh, gw = 4, 6, 2, 3
    frame, plane = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8)
    trow, row3 = np.zeros(w, np.float32), np.zeros(3 * w, np.uint8)
    grid, gplane = np.zeros((gh, gw, 3), np.uint8), np.zeros((gh, gw), np.float32)
    ha, hb, hc = np.zeros((gh, 3 * w), np.float32), np.zeros((gh, w), np.float32), np.zeros((gh, w), np.int32)
    taps = (bilinear_taps(gh, h, rows=True), bilinear_taps(gw, w, rows=False))
    for channels in (1, 3):
        ga = np.zeros((gh, gw, channels), np.float32)
        guide = np.zeros((h, w, channels), np.uint8)
        for decontaminate in (False, True):
            function(0, h, 0, w, ga, gplane, grid[:, :, 0].copy(), guide, plane, plane, plane.copy(),
                     frame, frame, frame.copy(), ha, hb, hc, trow, row3, np.float32(0.5), np.int32(8),
                     np.int32(40), np.int32(6), decontaminate, grid, grid, decontaminate, np.zeros((gh, gw), np.uint8),
                     (0, gh, 0, gw), *taps)
        sh, sw, r = 5, 6, 1  # the solve's grid: at least 2r + 2 cells each way
        cells, plane32 = np.zeros((sh, sw), np.uint8), np.zeros((sh, sw), np.float32)
        solve(np.zeros((sh, sw, channels), np.uint8), plane32, cells, r, np.float32(1e-3), np.float32(0.1),
              np.zeros((sh, sw, channels), np.float32), plane32.copy(), cells.copy(), cells.copy(),
              np.zeros((solve_planes(channels), sh, sw), np.float32), np.zeros(sw), np.zeros(sw + 2 * r, np.float32))


KERNELS = CompiledKernels()
