"""Settings: plain dataclasses, one per stage, shared by the CLI, `vbg run`, `vbg render` and the window."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from vbg.errors import VbgError

log = logging.getLogger("vbg")


@dataclass
class CaptureSettings:
    camera: str = "0"                      # index or device path
    input: str | None = None               # a video file instead of a camera
    loop: bool = False
    size: tuple[int, int] | None = None    # requested (width, height); the camera may grant another
    fps: float | None = None
    mjpg: bool = True                      # ask cameras for MJPG (USB 2 webcams give 720p30 only that way)
    paced: bool = True                     # play files at their own fps (live); False = as fast as possible


@dataclass
class SegmentSettings:
    model: str | None = None
    device: str = "auto"                   # auto | cpu | cuda
    threads: int = 0                       # onnxruntime intra-op threads; 0 = pick for this machine
    adaptive: str = "auto"                 # auto: skip the model while the picture holds still; off
    focus: str = "head"                    # head: every other model run looks at the head at 1.75x (vbg/matting/focus.py); off


def _tuned(default):
    """A number set by measurement (docs/quality.md), not by the user: never saved, so a settings file
    does not keep an old version's value once the measurement changes it."""
    return field(default=default, metadata={"saved": False})


def _saved(section) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(section) if f.metadata.get("saved", True)]


COMPOSITORS = ("auto", "compiled", "opencv")


@dataclass
class SmoothSettings:
    strength: float = 0.9                  # hold on the mask grid where the image is still; 0 = all smoothing off


@dataclass
class RefineSettings:
    """The edge at full size (vbg/matting/refine.py), and its hold over time (vbg/matting/hold.py)."""
    enabled: bool = True                   # off: the model's mask, upsampled
    radius: int = 3                        # guided-filter radius on the mask grid
    eps: float = 1e-3                      # guided-filter regularisation (grey levels in [0, 1])
    snap: float = 0.12                     # refined alpha within this of 0 or 1 becomes 0 or 1
    mask_gamma: float = 0.8                # P(person) ** gamma before the edge filter: < 1 keeps more hair
    color_guide: bool = False              # guide the edge by the frame's colour, not only its brightness
    decontaminate: bool = False            # estimate the person's own colour at the soft edge
    unmix: float = 1.0                     # pull the unsure edge towards the local colours' verdict (0-1)
    mask_contrast: float = 1.0             # then (P - 0.5) * contrast + 0.5: > 1 firms up what the model half-saw
    edge: str = "auto"                     # the preset the fields above came from (EDGE_PRESETS)
    threshold: float | None = None         # hard cut-out at this alpha (0-1); None keeps the soft edge
    erode: int = 0                         # shrink the person by this many full-size pixels
    feather: int = 0                       # soften the edge by this many full-size pixels
    edge_hold: float = _tuned(0.85)        # the grid's smoothing at full size, on the refined edge (0 = off)
    edge_motion_levels: int = _tuned(8)    # full-size grey change (after a 3x3 box) that counts as motion;
                                           # raised to 4x the camera's noise where that is more (vbg/matting/hold.py)


@dataclass
class CompositeSettings:
    background: str = "blur"               # blur[:1-100], color:#RRGGBB, none, or an image or video file
    mirror: bool = False
    # which path composes: "compiled" (vbg/matting/kernels.py, once compiled), "opencv", or "auto" (compiled when
    # numba is there); a choice for `vbg bench`, never saved
    compositor: str = field(default="auto", metadata={"saved": False})


@dataclass
class OutputSettings:
    vcam: bool = True
    vcam_device: str | None = None         # /dev/videoN, or the PipeWire node name
    vcam_backend: str = "v4l2loopback"     # a name in vbg.outputs.BACKENDS
    record: str | None = None
    idle_when_unwatched: bool = True       # pause camera and model while no app reads the virtual camera
    pause_image: str = "background"        # what the call sees while paused: background | black | an image file


@dataclass
class WindowSettings:
    view: str = "output"                   # output | camera | side
    auto_cycle_s: float = 0.0              # switch to the next background every N seconds; 0 = off


@dataclass
class Settings:
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    segment: SegmentSettings = field(default_factory=SegmentSettings)
    smooth: SmoothSettings = field(default_factory=SmoothSettings)
    refine: RefineSettings = field(default_factory=RefineSettings)
    composite: CompositeSettings = field(default_factory=CompositeSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    window: WindowSettings = field(default_factory=WindowSettings)

    def to_json(self) -> str:
        return json.dumps({part.name: {f.name: getattr(getattr(self, part.name), f.name)
                                       for f in _saved(getattr(self, part.name))}
                           for part in dataclasses.fields(self)}, indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> Settings:
        """Known keys with values of the right type; anything else is ignored (older or newer files)."""
        settings = cls()
        data = dict(data)
        if isinstance(data.get("matte"), dict) or isinstance(data.get("output"), dict):  # files from 0.1
            moved = {k: v for k, v in (data.get("output") or {}).items() if k in ("background", "mirror")}
            data["composite"] = {**(data.get("matte") or {}), **moved, **(data.get("composite") or {})}
        composite = data.get("composite")
        if isinstance(composite, dict) and not isinstance(data.get("refine"), dict):  # the edge was filed there
            refine = {f.name: composite[f.name] for f in dataclasses.fields(RefineSettings) if f.name in composite}
            if "refine" in composite:
                refine["enabled"] = composite["refine"]
            data["refine"] = refine
        for part in dataclasses.fields(cls):
            section, values = getattr(settings, part.name), data.get(part.name)
            if not isinstance(values, dict):
                continue
            for f in _saved(section):
                if f.name in values:
                    value, default = values[f.name], getattr(section, f.name)
                    if isinstance(value, list):
                        value = tuple(value)
                    if default is None or value is None or isinstance(value, type(default)) or (
                            isinstance(default, float) and isinstance(value, int)):
                        setattr(section, f.name, value)
        named = data["refine"].get("edge") if isinstance(data.get("refine"), dict) else None
        if named in EDGE_PRESETS:
            # the numbers behind a named edge are the preset's: a file saved by an older version gets
            # today's fine edge, not a frozen copy of the one it was saved with
            settings.refine = edge_preset(settings.refine, named)
        return settings

    @classmethod
    def load(cls, path: Path) -> Settings:
        if not path.exists():
            return cls()
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError) as e:
            log.warning("settings file %s is unreadable (%s): using defaults", path, e)
            return cls()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json())
        os.replace(tmp, path)


EDGE_PRESETS = ("auto", "standard", "fine")


def apply_edge_preset(settings: Settings, preset: str) -> None:
    settings.refine = edge_preset(settings.refine, preset)


def edge_preset(refine: RefineSettings, preset: str) -> RefineSettings:
    """`refine` with the edge of `preset`. 'fine': the edge guided by the frame's colour over a wider
    window, and the person's own colour at it: on video_gt it halves the edge-band composite error
    over white (docs/quality.md), for about 7 CPU-ms more a 720p frame on 2 cores. 'standard': the grey-guided
    edge. 'auto' (the default): fine where the room is replaced and its halo would show, standard
    under a blur, whose background is the old room anyway (`resolve_edge`)."""
    if preset not in EDGE_PRESETS:
        raise VbgError(f"unknown edge preset {preset!r}: use {', '.join(EDGE_PRESETS)}")
    fine, defaults = preset == "fine", RefineSettings()
    return dataclasses.replace(refine, color_guide=fine, decontaminate=fine, edge=preset,
                               radius=4 if fine else defaults.radius,
                               mask_gamma=0.7 if fine else defaults.mask_gamma,
                               eps=1e-4 if fine else defaults.eps,
                               mask_contrast=2.0 if fine else defaults.mask_contrast)


def resolve_edge(refine: RefineSettings, room_replaced: bool) -> RefineSettings:
    """The edge the chain runs: with 'auto', the fine or the standard one."""
    if refine.edge != "auto":
        return refine
    return edge_preset(refine, "fine" if room_replaced else "standard")


MAX_SIDE = 7680  # 8K: no camera or video call goes beyond


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m:
        raise VbgError(f"bad size {text!r}: use WIDTHxHEIGHT, e.g. 1280x720")
    w, h = int(m.group(1)), int(m.group(2))
    if not (16 <= w <= MAX_SIDE and 16 <= h <= MAX_SIDE):
        raise VbgError(f"bad size {text!r}: width and height must each be 16 to {MAX_SIDE} pixels, e.g. 1280x720")
    return w, h


def parse_positive(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise VbgError(f"bad {what} {text!r}: use a positive number") from None
    if not value > 0:
        raise VbgError(f"bad {what} {text!r}: it must be greater than 0")
    return value


PAUSE_IMAGES = ("background", "black")  # or the path of a still image


def check_pause_image(value: str) -> str:
    """A --pause-image value: background, black, or an image file; raises VbgError otherwise."""
    if value in PAUSE_IMAGES:
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise VbgError(f"pause image {value!r} is neither {', '.join(PAUSE_IMAGES)} nor an existing image file")
    return str(path)
