"""`vbg eval`: cut-out quality of the pipeline beside the bare model and a plain EMA, on stills or video.

Every variant runs the same offline path as `vbg render`; only the stages differ:
  pipeline  the app's settings (aspect-kept input, motion-gated smoothing, guided-filter edge)
  raw       the bare model: frame stretched to 256x144, bilinear upsampling, no smoothing or refinement
  ema       raw plus a plain exponential moving average (0.5) of the mask
  pred      alphas written by anything else (--pred DIR), scored with the same code
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from vbg import metrics
from vbg.backgrounds import IMAGE_SUFFIXES
from vbg.errors import VbgError
from vbg.matting.chain import MatteChain
from vbg.matting.segment import Segmenter
from vbg.matting.smooth import EmaSmoother, MaskSmoother
from vbg.progress import ProgressBar
from vbg.render import InputItems
from vbg.settings import RefineSettings, Settings, SmoothSettings

VARIANTS = ("pipeline", "raw", "ema")
COLOURS = (0.0, 255.0)  # composites are scored over black and over white
MOTION_SHARE = 0.1  # "frames with the most motion": the top 10% by true alpha change


def _read_alpha(path: Path) -> np.ndarray:
    alpha = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if alpha is None:
        raise VbgError(f"cannot read alpha/mask {path}: expected an 8-bit PNG (0 = background, 255 = person)")
    return alpha.astype(np.float32) / 255.0


class _Variant:
    """Produces the alpha of each item for one variant."""

    def __init__(self, name: str, settings: Settings, segmenter: Segmenter | None, pred_dir: Path | None = None):
        self.name, self.segmenter, self.pred_dir = name, segmenter, pred_dir
        if name == "pred":
            return
        if name == "pipeline":
            self.keep_aspect, self.matter = True, MatteChain(settings, segmenter)
            return
        bare = dataclasses.replace(settings, smooth=SmoothSettings(strength=0.0), refine=RefineSettings(enabled=False),
                                   segment=dataclasses.replace(settings.segment, adaptive="off", focus="off"))
        smoother = EmaSmoother(0.5) if name == "ema" else MaskSmoother(0.0)
        self.keep_aspect, self.matter = False, MatteChain(bare, segmenter, smoother=smoother)

    def alpha(self, name: str, image: np.ndarray) -> np.ndarray:
        if self.name == "pred":
            return _read_alpha(self.pred_dir / f"{name}.png")
        self.segmenter.keep_aspect = self.keep_aspect  # one session shared by the variants
        alpha, _ = self.matter.process(image)
        return alpha.astype(np.float32) / 255.0

    def foreground(self, image: np.ndarray) -> np.ndarray:
        """The colour pasted where the person is, for the frame just scored: the chain's own (with its
        edge colour estimate) for the pipeline, the camera pixels for the rest."""
        return self.matter.foreground if self.name == "pipeline" else image

    def reset(self) -> None:
        if self.name != "pred":
            self.matter.reset()


class _Baseline:
    """A peer model run beside vbg for comparison only (never shipped): RobustVideoMatting (recurrent
    matting with its own foreground estimate) or MediaPipe's selfie segmenter (a Meet-style mask)."""

    KINDS = ("rvm", "mediapipe")

    def __init__(self, name: str, path: str):
        import onnxruntime as ort

        if name not in self.KINDS:
            raise VbgError(f"unknown baseline {name!r}: use {' or '.join(self.KINDS)}=PATH")
        if not Path(path).is_file():
            raise VbgError(f"baseline model {path} does not exist")
        self.name = name
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self._fg: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        self._state = [np.zeros((1, 1, 1, 1), np.float32) for _ in range(4)]

    def alpha(self, name: str, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        if self.name == "mediapipe":
            x = cv2.resize(rgb, (256, 144), interpolation=cv2.INTER_AREA)[None]
            mask = self.session.run(None, {"input": x})[0][0, :, :, 0]
            self._fg = None
            return cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        ratio = 0.25 if max(h, w) >= 1920 else 0.375 if max(h, w) >= 1280 else 0.6  # RVM's advice per size
        feeds = {"src": rgb.transpose(2, 0, 1)[None], "downsample_ratio": np.array([ratio], np.float32)}
        feeds.update({f"r{i + 1}i": s for i, s in enumerate(self._state)})
        fgr, pha, *state = self.session.run(["fgr", "pha", "r1o", "r2o", "r3o", "r4o"], feeds)
        self._state = state
        self._fg = cv2.cvtColor(np.clip(fgr[0].transpose(1, 2, 0) * 255, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
        return pha[0, 0]

    def foreground(self, image: np.ndarray) -> np.ndarray:
        return self._fg if self._fg is not None else image


def _variants(names, settings, segmenter, pred_dir, baselines=None):
    out = [_Variant("pred", settings, None, Path(pred_dir))] if pred_dir else []
    out += [_Baseline(name, path) for name, path in (baselines or {}).items()]
    return out + [_Variant(n, settings, segmenter) for n in names]


def eval_stills(images: str, masks: str, settings: Settings, segmenter: Segmenter | None,
                variants=VARIANTS, pred_dir: str | None = None, limit: int | None = None, progress=True,
                baselines: dict[str, str] | None = None) -> dict:
    """Each variant and peer (`baselines`, reset before every photo) on each photo with a mask."""
    image_dir, mask_dir = Path(images), Path(masks)
    for d in (image_dir, mask_dir):
        if not d.is_dir():
            raise VbgError(f"{d} is not a folder")
    pairs = []
    for img in sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        mask = next((m for m in (mask_dir / f"{img.stem}{s}" for s in (".png", ".jpg", ".bmp")) if m.exists()), None)
        if mask is not None:
            pairs.append((img, mask))
    if not pairs:
        raise VbgError(f"no image in {image_dir} has a mask with the same name in {mask_dir}")
    pairs = pairs[:limit] if limit else pairs
    runs = _variants(variants, settings, segmenter, pred_dir, baselines)
    scores = {v.name: [] for v in runs}
    bar = ProgressBar("eval stills", len(pairs)) if progress else None
    for i, (img_path, mask_path) in enumerate(pairs):
        image = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        if image is None:
            raise VbgError(f"cannot read image {img_path}")
        truth = _read_alpha(mask_path)
        for v in runs:
            v.reset()
            a = v.alpha(img_path.stem, image)
            scores[v.name].append((img_path.stem, metrics.iou(a, truth), metrics.boundary_f(a, truth),
                                   metrics.mad(a, truth)))
        if bar:
            bar(i + 1)
    if bar:
        bar.done()
    report = {"kind": "stills", "items": len(pairs), "variants": {}}
    for name, rows in scores.items():
        arr = np.array([r[1:] for r in rows])
        report["variants"][name] = {"iou": float(arr[:, 0].mean()), "boundary_f": float(arr[:, 1].mean()),
                                    "mad": float(arr[:, 2].mean())}
    first = "pipeline" if "pipeline" in scores else runs[0].name
    worst = sorted(scores[first], key=lambda r: r[1])[:5]
    report["worst"] = [{"item": r[0], "iou": round(r[1], 4), "boundary_f": round(r[2], 4)} for r in worst]
    report["worst_of"] = first
    return report


def eval_video(video: str, alpha_dir: str | None, settings: Settings, segmenter: Segmenter | None,
               variants=VARIANTS, pred_dir: str | None = None, limit: int | None = None, progress=True,
               plate: str | None = None, baselines: dict[str, str] | None = None,
               size: tuple[int, int] | None = None, crop: tuple[int, int] | None = None) -> dict:
    """With `plate` (the true background behind the person), also scores what the viewer sees: the
    output over black and over white against the true composite, over all pixels and in the edge band.
    With `crop` (width, height), frames, alpha and plate are cut to that window, centred on the person
    in the first frame's truth: the same scene through a camera of another shape (a phone held upright,
    a 4:3 webcam). With `size` (width, height: no larger than the video or its crop, of its shape), they
    are area-averaged down to it: the same scene through a smaller camera."""
    items = InputItems(video)
    if items.kind != "video":
        raise VbgError(f"{video} is not a video")
    truth_dir = Path(alpha_dir) if alpha_dir else None
    if truth_dir is not None and not (truth_dir / "000000.png").exists():
        raise VbgError(f"{truth_dir} has no 000000.png: --alpha needs the ground truth as 000000.png, 000001.png, …")
    window = _window_on_person(crop, truth_dir) if crop else None
    plate_image = None
    if plate is not None:
        if truth_dir is None:
            raise VbgError("--plate needs --alpha: the true composite is made from the true alpha")
        plate_image = cv2.imread(str(plate), cv2.IMREAD_COLOR)
        if plate_image is None:
            raise VbgError(f"cannot read background plate {plate}")
        plate_image = _scaled(_cut(plate_image, window), size)
    runs = _variants(variants, settings, segmenter, pred_dir, baselines)
    composite = {v.name: [] for v in runs}
    temporal = {v.name: metrics.TemporalScores() for v in runs}
    per_frame = {v.name: [] for v in runs}
    truth_motion, prev_truth = [], None
    bar = ProgressBar(f"eval {items.path.name}", items.count) if progress else None
    n = 0
    for name, image in items:
        if limit and n >= limit:
            break
        image = _cut(image, window)
        if n == 0 and size is not None:
            _check_size(size, image.shape)  # against the window with --crop: that is what gets scaled
        image = _scaled(image, size)
        truth = None
        if truth_dir is not None:
            path = truth_dir / f"{name}.png"
            if not path.exists():
                break
            truth = _scaled(_cut(_read_alpha(path), window), size)
            truth_motion.append(float(np.abs(truth - prev_truth).mean()) if prev_truth is not None else 0.0)
            prev_truth = truth
        if plate_image is not None:
            band = metrics.edge_band(truth)
            truths = [metrics.true_composite(image, plate_image, truth, c) for c in COLOURS]
        for v in runs:
            a = v.alpha(name, image)
            temporal[v.name].add(a, truth)
            if truth is not None:
                per_frame[v.name].append((name, metrics.iou(a, truth), metrics.boundary_f(a, truth),
                                          metrics.mad(a, truth)))
            if plate_image is not None:
                fg = v.foreground(image)
                composite[v.name].append([e for c, t in zip(COLOURS, truths)
                                          for e in metrics.composite_errors(metrics.composite_over(fg, a, c), t, band)])
        n += 1
        if bar:
            bar(n)
    if bar:
        bar.done()
    report = {"kind": "video", "items": n, "ground_truth": truth_dir is not None, "variants": {}}
    moving = None
    if truth_motion:
        k = max(1, int(round(MOTION_SHARE * len(truth_motion))))
        moving = set(np.argsort(truth_motion)[-k:].tolist())
    for v in runs:
        entry = dict(temporal[v.name].result())
        rows = per_frame[v.name]
        if rows:
            arr = np.array([r[1:] for r in rows])
            entry.update(iou=float(arr[:, 0].mean()), boundary_f=float(arr[:, 1].mean()), mad=float(arr[:, 2].mean()),
                         iou_motion=float(np.mean([arr[i, 0] for i in moving])))
        if composite[v.name]:
            errors = np.mean(composite[v.name], axis=0)
            for (colour, part), value in zip([(c, p) for c in ("black", "white") for p in ("all", "edge", "beyond")],
                                             errors):
                entry[f"composite_{part}_{colour}"] = float(value)
        report["variants"][v.name] = entry
    first = "pipeline" if "pipeline" in per_frame else runs[0].name
    if per_frame[first]:
        worst = sorted(per_frame[first], key=lambda r: r[1])[:5]
        report["worst"] = [{"item": r[0], "iou": round(r[1], 4), "boundary_f": round(r[2], 4)} for r in worst]
        report["worst_of"] = first
    return report


def _check_size(size: tuple[int, int], shape) -> None:
    (w, h), (vh, vw) = size, shape[:2]
    if w > vw or h > vh or abs(w / h - vw / vh) > 0.02 * vw / vh:
        raise VbgError(f"--size {w}x{h} must be no larger than the video ({vw}x{vh}) and of its shape")


def _window_on_person(crop: tuple[int, int], truth_dir: Path | None) -> tuple[slice, slice]:
    """The rows and columns of a `crop` (width, height) window centred on the first frame's person."""
    if truth_dir is None:
        raise VbgError("--crop needs --alpha: the window is centred on the person in the ground truth")
    truth = _read_alpha(truth_dir / "000000.png")
    (w, h), (th, tw) = crop, truth.shape
    if w > tw or h > th:
        raise VbgError(f"--crop {w}x{h} must fit in the video ({tw}x{th})")
    ys, xs = np.nonzero(truth >= 0.5)
    cy, cx = (th // 2, tw // 2) if ys.size == 0 else (int(ys.mean()), int(xs.mean()))
    y0, x0 = min(max(0, cy - h // 2), th - h), min(max(0, cx - w // 2), tw - w)
    return slice(y0, y0 + h), slice(x0, x0 + w)


def _cut(image: np.ndarray, window: tuple[slice, slice] | None) -> np.ndarray:
    return image if window is None else np.ascontiguousarray(image[window])


def _scaled(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or image.shape[1::-1] == tuple(size):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


COLUMNS = (("iou", "IoU", 4), ("boundary_f", "boundary F", 4), ("mad", "alpha MAD", 4), ("dtssd", "dtSSD", 5),
           ("flicker", "flicker", 6), ("iou_motion", "IoU (motion)", 4),
           ("composite_edge_black", "edge/black", 2), ("composite_edge_white", "edge/white", 2),
           ("composite_all_black", "all/black", 3), ("composite_all_white", "all/white", 3),
           ("composite_beyond_black", "beyond/black", 3), ("composite_beyond_white", "beyond/white", 3))


def format_report(report: dict) -> str:
    variants = report["variants"]
    cols = [c for c in COLUMNS if any(c[0] in v for v in variants.values())]
    head = f"{'variant':<10}" + "".join(f"{title:>14}" for _, title, _ in cols)
    lines = [f"vbg eval: {report['kind']}, {report['items']} items", head]
    for name, v in variants.items():
        lines.append(f"{name:<10}" + "".join(f"{v[key]:>14.{digits}f}" if key in v else f"{'-':>14}"
                                             for key, _, digits in cols))
    if "raw" in variants:
        for name, v in variants.items():
            if name == "raw":
                continue
            ratios = [f"{title} {v[key] / variants['raw'][key]:.2f}x" for key, title, _ in cols
                      if key in ("flicker", "dtssd") and key in v and variants["raw"].get(key)]
            if ratios:
                lines.append(f"{name} vs raw: " + ", ".join(ratios))
    if report.get("worst"):
        first = report.get("worst_of") or next(iter(variants))
        lines.append(f"worst items ({first}): " + ", ".join(f"{w['item']} (IoU {w['iou']:.3f})" for w in report["worst"]))
    return "\n".join(lines)


# -- real clips without ground truth: what the viewer sees of the room ---------------------------------

SEEN = 64 / 255           # alpha above this shows (room kept), below it the person is gone (person lost)
REFERENCE_REACH = 7       # px: room this near a reference's person is not counted; person this deep is sure
STAGES = ("model", "fused", "smoothed")  # the pipeline's grid masks, upsampled as they are to the frame


class Consensus:
    """What the reference models agree on, per frame: `near` = within REFERENCE_REACH px of where any of
    them sees a person (alpha > SEEN); `sure` = REFERENCE_REACH px inside where every one of them does.
    Room kept is alpha > SEEN outside `near`; person lost is alpha < SEEN inside `sure`. Both are
    agreement with other models, not truth: a room object all references call person is invisible to
    it, and so is hair the references lose too."""

    def __init__(self, references: list, cache: Path | None = None):
        self.references, self.cache = references, cache
        self._disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * REFERENCE_REACH + 1,) * 2)

    def reset(self) -> None:
        for r in self.references:
            r.reset()

    def __call__(self, name: str, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        path = self.cache / f"{name}.npz" if self.cache is not None else None
        if path is not None and path.exists():
            with np.load(path) as data:
                shape = tuple(data["shape"])
                return tuple(np.unpackbits(data[k], count=shape[0] * shape[1]).reshape(shape).astype(bool)
                             for k in ("near", "sure"))
        seen = [r.alpha(name, image) for r in self.references]
        anyone = np.zeros(image.shape[:2], np.uint8)
        everyone = np.ones(image.shape[:2], np.uint8)
        for a in seen:
            anyone |= (a > SEEN).astype(np.uint8)
            everyone &= (a > 0.5).astype(np.uint8)
        near = cv2.dilate(anyone, self._disk) > 0
        sure = cv2.erode(everyone, self._disk, borderType=cv2.BORDER_CONSTANT, borderValue=1) > 0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(path, shape=np.array(near.shape), near=np.packbits(near), sure=np.packbits(sure))
        return near, sure


def room_and_person(alpha: np.ndarray, near: np.ndarray, sure: np.ndarray,
                    box: tuple[int, int, int, int] | None = None) -> tuple[float, float, int]:
    """(room kept ‰, person lost ‰ of the frame, room-kept pixels inside `box` (x0, y0, x1, y1))."""
    shows = alpha > SEEN
    kept = shows & ~near
    lost = ~shows & sure
    in_box = 0
    if box is not None:
        x0, y0, x1, y1 = box
        in_box = int(np.count_nonzero(kept[y0:y1, x0:x1]))
    return 1000.0 * np.count_nonzero(kept) / kept.size, 1000.0 * np.count_nonzero(lost) / lost.size, in_box


def eval_clip(video: str, settings: Settings, segmenter: Segmenter, references: dict[str, str],
              limit: int | None = None, progress=True, box: tuple[int, int, int, int] | None = None,
              cache: str | None = None, stages: bool = True) -> dict:
    """Room kept and person lost on a real clip, for the pipeline, the bare model (raw) and, with
    `stages`, each of the pipeline's grid stages upsampled to the frame; judged against the consensus of
    `references` (NAME=PATH peers, `_Baseline`)."""
    if not references:
        raise VbgError("--clip needs at least one --baseline NAME=PATH to judge against (rvm, mediapipe)")
    items = InputItems(video)
    if items.kind != "video":
        raise VbgError(f"{video} is not a video")
    consensus = Consensus([_Baseline(n, p) for n, p in references.items()], Path(cache) if cache else None)
    pipeline, raw = _Variant("pipeline", settings, segmenter), _Variant("raw", settings, segmenter)
    names = ["pipeline", "raw"] + (list(STAGES) if stages else [])
    rows = {n: [] for n in names}
    bar = ProgressBar(f"eval {items.path.name}", items.count) if progress else None
    upsampled = None
    n = 0
    for name, image in items:
        if limit and n >= limit:
            break
        near, sure = consensus(name, image)
        h, w = image.shape[:2]
        rows["pipeline"].append(room_and_person(pipeline.alpha(name, image), near, sure, box))
        if stages:
            chain = pipeline.matter
            for stage, grid in zip(STAGES, chain.stage_masks()):
                if upsampled is None or upsampled.shape != (h, w):
                    upsampled = np.empty((h, w), np.float32)
                cv2.resize(grid, (w, h), dst=upsampled, interpolation=cv2.INTER_LINEAR)
                rows[stage].append(room_and_person(upsampled, near, sure, box))
        rows["raw"].append(room_and_person(raw.alpha(name, image), near, sure, box))
        n += 1
        if bar:
            bar(n)
    if bar:
        bar.done()
    report = {"kind": "clip", "items": n, "references": sorted(references), "box": box, "variants": {}}
    for name, values in rows.items():
        arr = np.array(values, np.float64).reshape(-1, 3)
        entry = {"room_kept": float(arr[:, 0].mean()), "room_kept_p95": float(np.percentile(arr[:, 0], 95)),
                 "person_lost": float(arr[:, 1].mean()), "person_lost_p95": float(np.percentile(arr[:, 1], 95))}
        if box is not None:
            entry["box_px"] = float(arr[:, 2].mean())
        report["variants"][name] = entry
    return report


def format_clip_report(report: dict) -> str:
    box = report.get("box")
    lines = [f"vbg eval: clip, {report['items']} frames, judged against {' + '.join(report['references'])} "
             f"(‰ of the frame; room kept: alpha > 64 over {REFERENCE_REACH} px from any reference's person; "
             f"person lost: alpha < 64 {REFERENCE_REACH} px inside every reference's)",
             f"{'variant':<10}{'room kept':>12}{'p95':>9}{'person lost':>13}{'p95':>9}"
             + (f"{'box px':>10}" if box else "")]
    for name, v in report["variants"].items():
        lines.append(f"{name:<10}{v['room_kept']:>12.3f}{v['room_kept_p95']:>9.3f}{v['person_lost']:>13.3f}"
                     f"{v['person_lost_p95']:>9.3f}" + (f"{v['box_px']:>10.1f}" if box else ""))
    return "\n".join(lines)
