"""Compositing at full resolution: refine the mask's edge against the frame, then blend.

Refinement is a fast guided filter (He & Sun, 2015): the filter's linear coefficients are solved on
the mask grid against the frame's grey levels there, upsampled, and applied to the full-resolution
grey frame, so the outline follows the real edges of hair and shoulders rather than the blocky
256x144 grid. The blend is done in 8-bit with preallocated buffers; nothing per frame is allocated.
"""

from __future__ import annotations

import cv2
import numpy as np

from vbg.backgrounds import Background, Passthrough
from vbg.settings import CompositeSettings
from vbg.smooth import EdgeHold


class EdgeRefiner:
    """Mask-grid probability -> full-resolution 8-bit alpha, steadied over time by `hold`
    (vbg/smooth.py's EdgeHold, with the temporal smoothing it belongs to)."""

    def __init__(self, settings: CompositeSettings, hold: EdgeHold | None = None):
        self.settings = settings
        self.hold = hold or EdgeHold()
        self._grid_shape = None
        self._full_shape = None
        self._cshape = None  # grid buffers of the colour guide
        self._lifted: np.ndarray | None = None

    def reset(self) -> None:
        self.hold.reset()

    def _grid_buffers(self, shape):
        if self._grid_shape != shape:
            self._gi = np.empty(shape, np.float32)
            self._mi, self._mp, self._mip, self._mii = (np.empty(shape, np.float32) for _ in range(4))
            self._a, self._b, self._t = (np.empty(shape, np.float32) for _ in range(3))
            self._ggray = np.empty(shape, np.uint8)
            self._grid_shape = shape

    def _full_buffers(self, shape):
        if self._full_shape != shape:
            self.gray = np.empty(shape, np.uint8)
            self._A, self._B = np.empty(shape, np.float32), np.empty(shape, np.float32)
            self.alpha = np.empty(shape, np.uint8)
            self._kernels = {}
            self._region = np.empty(shape, np.uint8)
            self._guide = np.empty(shape + (3,), np.uint8)
            self._full_shape = shape

    def __call__(self, image: np.ndarray, small: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Returns the full-size alpha (uint8, an internal buffer reused next call)."""
        h, w = image.shape[:2]
        self._full_buffers((h, w))
        s = self.settings
        if s.refine and s.mask_gamma != 1.0:
            # the model is under-confident on hair and shoulders (its alpha falls short of the truth there
            # by 40 levels on video_gt): lifting the soft probabilities puts the edge where the hair is
            if self._lifted is None or self._lifted.shape != mask.shape:
                self._lifted = np.empty_like(mask)
            cv2.pow(mask, s.mask_gamma, self._lifted)
            mask = self._lifted
        if s.refine and s.color_guide:
            self._guided_color(image, small, mask)
            self.gray = self.hold(self.alpha, self.gray)
        elif s.refine:
            self._guided(image, small, mask)
            self.gray = self.hold(self.alpha, self.gray)
        else:
            cv2.resize(mask, (w, h), dst=self._A, interpolation=cv2.INTER_LINEAR)
            cv2.multiply(self._A, 255.0, self.alpha, dtype=cv2.CV_8U)
        if s.threshold is not None:
            cv2.threshold(self.alpha, s.threshold * 255, 255, cv2.THRESH_BINARY, dst=self.alpha)
        if s.erode > 0:
            cv2.erode(self.alpha, self._kernel(s.erode), dst=self.alpha)
        if s.feather > 0:
            k = 2 * s.feather + 1
            cv2.GaussianBlur(self.alpha, (k, k), 0, dst=self.alpha)
        return self.alpha

    def _kernel(self, px):
        k = self._kernels.get(px)
        if k is None:
            k = self._kernels[px] = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
        return k

    def _guided(self, image, small, mask):
        self._grid_buffers(mask.shape)
        h, w = image.shape[:2]
        r = (2 * self.settings.radius + 1,) * 2
        gi, mi, mp, mip, mii, a, b = self._gi, self._mi, self._mp, self._mip, self._mii, self._a, self._b
        cv2.cvtColor(small, cv2.COLOR_BGR2GRAY, dst=self._ggray)
        cv2.multiply(self._ggray, 1.0 / 255.0, gi, dtype=cv2.CV_32F)
        cv2.boxFilter(gi, -1, r, dst=mi)
        cv2.boxFilter(mask, -1, r, dst=mp)
        cv2.multiply(gi, mask, mip)
        cv2.boxFilter(mip, -1, r, dst=mip)
        cv2.multiply(gi, gi, mii)
        cv2.boxFilter(mii, -1, r, dst=mii)
        # a = cov(I, p) / (var(I) + eps); b = mean(p) - a mean(I)
        t = self._t
        np.subtract(mip, np.multiply(mi, mp, out=t), out=mip)
        np.subtract(mii, np.multiply(mi, mi, out=t), out=mii)
        np.add(mii, self.settings.eps, out=mii)
        np.divide(mip, mii, out=a)
        np.subtract(mp, np.multiply(a, mi, out=t), out=b)
        cv2.boxFilter(a, -1, r, dst=a)
        cv2.boxFilter(b, -1, r, dst=b)
        # snap: alpha' = (alpha - snap) / (1 - 2 snap), folded into a and b; then
        # alpha'*255 = a * grey + 255 b at full size; grey stays 8-bit, alpha saturates into 8-bit
        gain = 1.0 / (1.0 - 2.0 * self.settings.snap)
        np.multiply(a, gain, out=a)
        np.subtract(b, self.settings.snap, out=b)
        np.multiply(b, 255.0 * gain, out=b)
        cv2.resize(a, (w, h), dst=self._A, interpolation=cv2.INTER_LINEAR)
        cv2.resize(b, (w, h), dst=self._B, interpolation=cv2.INTER_LINEAR)
        cv2.cvtColor(image, cv2.COLOR_BGR2GRAY, dst=self.gray)
        # The coefficients carry the edge's gain to every full-size pixel, sensor noise included; a
        # 3x3 box on the guide halves the edge shimmer that causes (measured on video_gt).
        cv2.blur(self.gray, (3, 3), dst=self.gray)
        cv2.multiply(self.gray, self._A, self._A, dtype=cv2.CV_32F)
        cv2.add(self._A, self._B, self.alpha, dtype=cv2.CV_8U)

    def _guided_color(self, image, small, mask):
        """The guided filter with the frame's colour as the guide (He et al.'s colour version): skin or
        hair against a wall of the same brightness but another hue still gets an edge, where the grey
        guide sees none and lets the mask's blur through (ears and hair cut off over light walls)."""
        self._grid_buffers(mask.shape)
        h, w = image.shape[:2]
        r = (2 * self.settings.radius + 1,) * 2
        gh, gw = mask.shape
        if self._cshape != mask.shape:
            self._gc = np.empty((gh, gw, 3), np.float32)
            self._mc, self._mcp = np.empty((gh, gw, 3), np.float32), np.empty((gh, gw, 3), np.float32)
            self._cov = np.empty((gh, gw, 6), np.float32)
            self._ac = np.empty((gh, gw, 3), np.float32)
            self._cshape = mask.shape
        gc, mc, mcp, cov, ac, mp = self._gc, self._mc, self._mcp, self._cov, self._ac, self._mp
        cv2.multiply(small, 1.0 / 255.0, gc, dtype=cv2.CV_32F)
        cv2.boxFilter(gc, -1, r, dst=mc)
        cv2.boxFilter(mask, -1, r, dst=mp)
        np.multiply(gc, mask[..., None], out=mcp)
        cv2.boxFilter(mcp, -1, r, dst=mcp)
        mcp -= mc * mp[..., None]                                   # cov(I_c, p)
        pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
        for k, (i, j) in enumerate(pairs):
            cov[..., k] = cv2.boxFilter(gc[..., i] * gc[..., j], -1, r) - mc[..., i] * mc[..., j]
        eps = self.settings.eps
        a00, a01, a02, a11, a12, a22 = (cov[..., k] + (eps if i == j else 0.0) for k, (i, j) in enumerate(pairs))
        # inverse of the symmetric 3x3 (var(I) + eps U), times cov(I, p)
        i00, i01, i02 = a11 * a22 - a12 * a12, a02 * a12 - a01 * a22, a01 * a12 - a02 * a11
        i11, i12, i22 = a00 * a22 - a02 * a02, a01 * a02 - a00 * a12, a00 * a11 - a01 * a01
        det = a00 * i00 + a01 * i01 + a02 * i02
        c0, c1, c2 = mcp[..., 0], mcp[..., 1], mcp[..., 2]
        ac[..., 0] = (i00 * c0 + i01 * c1 + i02 * c2) / det
        ac[..., 1] = (i01 * c0 + i11 * c1 + i12 * c2) / det
        ac[..., 2] = (i02 * c0 + i12 * c1 + i22 * c2) / det
        b = self._b
        np.subtract(mp, (ac * mc).sum(axis=2), out=b)
        cv2.boxFilter(ac, -1, r, dst=ac)
        cv2.boxFilter(b, -1, r, dst=b)
        gain = 1.0 / (1.0 - 2.0 * self.settings.snap)
        ac *= gain / 255.0
        np.subtract(b, self.settings.snap, out=b)
        np.multiply(b, 255.0 * gain, out=b)
        # Away from the edge the coefficients vanish and alpha is b, saturated to 0 or 255 by the snap:
        # a cheap 8-bit upscale. Only pixels near the edge get the colour product, evaluated at exactly
        # the points (and with the same bilinear weights) a full-size resize would give them.
        cv2.max(b, 0.0, dst=self._t)
        cv2.convertScaleAbs(self._t, self._ggray)  # (on the clamped copy: it takes absolute values)
        cv2.resize(self._ggray, (w, h), dst=self.alpha, interpolation=cv2.INTER_LINEAR)
        active = ((np.abs(ac).sum(axis=2) * 255.0 > 0.5) | ((b > 0.5) & (b < 254.5))).astype(np.uint8)
        cv2.dilate(active, None, dst=active)
        xs, ys = edge_points(active, (h, w), self._region)
        if xs.size:
            mx, my = grid_coords(xs, ys, (gh, gw), (h, w))
            coef = np.concatenate([ac, b[..., None]], axis=2)
            at = sample(coef, mx, my)
            # the guide through a 3x3 box, as for grey: sensor noise would otherwise become edge shimmer
            cv2.blur(image, (3, 3), dst=self._guide)
            guide = np.take(self._guide.reshape(-1, 3), ys * w + xs, axis=0)
            values = np.einsum("ij,ij->i", guide, at[:, :3]) * 255.0 + at[:, 3]
            self.alpha[ys, xs] = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        cv2.cvtColor(image, cv2.COLOR_BGR2GRAY, dst=self.gray)
        cv2.blur(self.gray, (3, 3), dst=self.gray)                  # the hold's motion test uses it


def edge_points(active: np.ndarray, full: tuple[int, int], region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full-size (x, y) of the pixels under active grid cells."""
    cv2.resize(active, (full[1], full[0]), dst=region, interpolation=cv2.INTER_NEAREST)
    pts = cv2.findNonZero(region)
    if pts is None:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    pts = pts.reshape(-1, 2)
    return pts[:, 0].astype(np.intp), pts[:, 1].astype(np.intp)


def grid_coords(xs: np.ndarray, ys: np.ndarray, grid: tuple[int, int], full: tuple[int, int]):
    """Where full-size pixels fall on the grid, as cv2.resize's bilinear upscaling places them."""
    return ((xs + 0.5) * (grid[1] / full[1]) - 0.5).astype(np.float32), \
        ((ys + 0.5) * (grid[0] / full[0]) - 0.5).astype(np.float32)


def sample(grid_image: np.ndarray, mx: np.ndarray, my: np.ndarray) -> np.ndarray:
    """Bilinear samples of a multi-channel grid image at (mx, my): (N, channels)."""
    n, cols = mx.size, 4096                      # remap takes at most 32767 columns: fold the points
    rows = -(-n // cols)
    pad = rows * cols - n
    fx, fy = (np.pad(v, (0, pad)).reshape(rows, cols) for v in (mx, my))
    out = cv2.remap(grid_image, fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(rows * cols, -1)[:n]


class Compositor:
    """frame + mask -> output image, at the frame's full size. Not thread-safe: one thread composes;
    `background` may be swapped from another thread between frames."""

    def __init__(self, matte: CompositeSettings, background: Background, mirror: bool = False,
                 hold: EdgeHold | None = None):
        self.refiner = EdgeRefiner(matte, hold)
        self.background = background
        self.mirror = mirror
        self._next_background: Background | None = None
        self._shape = None
        self._outputs = None
        self._turn = 0
        self._image: np.ndarray | None = None  # the last frame composed
        self._edge = None                       # (x, y, colour, alpha) of its decontaminated edge pixels
        self._soft: np.ndarray | None = None    # where 0 < alpha < 1 (the decontaminated pixels)

    def _buffers(self, shape):
        if self._shape != shape:
            self._alpha3 = np.empty(shape, np.uint8)
            self._inv3 = np.empty(shape, np.uint8)
            self._fg = np.empty(shape, np.uint8)
            self._blend = np.empty(shape, np.uint8)
            # two outputs, so the previous one stays valid while the next is composed (preview, vcam)
            self._outputs = (np.empty(shape, np.uint8), np.empty(shape, np.uint8))
            self._shape = shape

    def _decontaminate(self, image, small, mask, alpha) -> None:
        """The person's own colour at the soft edge instead of the camera pixel, which there is part old
        room (the halo of the old wall, the colour fringe): blur-fusion foreground estimation (Germer et
        al., 2021), F = F^ + a (I - a F^ - (1 - a) B^), with the local foreground and background colours
        F^ and B^ averaged on the model grid, where it costs nothing, and applied only to the pixels
        with 0 < alpha < 1. Leaves (x, y, F) in `_edge` for the blend."""
        gh, gw = mask.shape
        h, w = image.shape[:2]
        if self._soft is None or self._soft.shape != (h, w):
            self._soft = np.empty((h, w), np.uint8)
        cv2.inRange(alpha, 12, 243, dst=self._soft)  # nearer 0 or 1 the pasted colour hardly shows
        pts = cv2.findNonZero(self._soft)
        if pts is None:
            self._edge = None
            return
        pts = pts.reshape(-1, 2)
        xs, ys = pts[:, 0].astype(np.intp), pts[:, 1].astype(np.intp)
        r = (7, 7)
        sm = small.astype(np.float32)
        m = mask[..., None]
        fw = cv2.boxFilter(mask, -1, r)[..., None] + 1e-4
        bw = cv2.boxFilter(1.0 - mask, -1, r)[..., None] + 1e-4
        colours = np.concatenate([cv2.boxFilter(sm * m, -1, r) / fw, cv2.boxFilter(sm * (1.0 - m), -1, r) / bw], axis=2)
        mx, my = grid_coords(xs, ys, (gh, gw), (h, w))
        at = sample(colours, mx, my)
        f_hat, b_hat = at[:, :3], at[:, 3:]
        a = alpha[ys, xs].astype(np.float32)[:, None] / 255.0
        f = f_hat + a * (image[ys, xs] - a * f_hat - (1.0 - a) * b_hat)
        self._edge = (xs, ys, np.clip(f, 0, 255), a)

    @property
    def foreground(self) -> np.ndarray | None:
        """The colour pasted where the person is, last frame (a new image when the edge was estimated)."""
        if self._edge is None or self._image is None:
            return self._image
        xs, ys, f, _ = self._edge
        out = self._image.copy()
        out[ys, xs] = np.rint(f).astype(np.uint8)
        return out

    def set_background(self, background: Background) -> None:
        """Takes effect at the next frame, on the composing thread (which then closes the old one)."""
        self._next_background = background

    def compose(self, image: np.ndarray, small: np.ndarray, mask: np.ndarray, need_alpha: bool = False) -> np.ndarray:
        """Returns the composited frame: always an internal buffer, valid until the call after next,
        never `image` (a pooled camera frame that capture overwrites once it is released)."""
        if self._next_background is not None:
            old, self.background, self._next_background = self.background, self._next_background, None
            if old is not self.background:
                old.close()
        background = self.background
        if isinstance(background, Passthrough):
            self._image, self._edge = image, None
            if need_alpha:  # offline: the alpha, and the colour a cut-out would carry
                alpha = self.refiner(image, small, mask)
                if self.refiner.settings.decontaminate and self.refiner.settings.refine:
                    self._decontaminate(image, small, mask, alpha)
            self._buffers(image.shape)
            if self.mirror:
                result = image
            else:
                self._turn ^= 1
                result = self._outputs[self._turn]
                np.copyto(result, image)
        else:
            self._buffers(image.shape)
            alpha = self.refiner(image, small, mask)
            self._image, self._edge = image, None
            if self.refiner.settings.decontaminate and self.refiner.settings.refine:
                self._decontaminate(image, small, mask, alpha)
            bg = background.render(image.shape, small, mask)
            cv2.cvtColor(alpha, cv2.COLOR_GRAY2BGR, dst=self._alpha3)
            cv2.bitwise_not(self._alpha3, self._inv3)
            cv2.multiply(image, self._alpha3, self._fg, 1.0 / 255.0)
            if self._edge is not None:
                xs, ys, f, a = self._edge
                self._fg[ys, xs] = np.rint(f * a).astype(np.uint8)
            cv2.multiply(bg, self._inv3, self._blend, 1.0 / 255.0)
            result = self._blend
            if not self.mirror:
                self._turn ^= 1
                result = self._outputs[self._turn]
            cv2.add(self._fg, self._blend, result)
        if self.mirror:
            self._buffers(image.shape)
            self._turn ^= 1
            out = self._outputs[self._turn]
            cv2.flip(result, 1, dst=out)
            return out
        return result
