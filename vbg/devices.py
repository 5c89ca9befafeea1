"""`vbg devices`: cameras, virtual-camera devices and inference providers, and what to do about gaps."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2

from vbg.matting.segment import CUDA, cuda_library_missing, nvidia_driver_present
from vbg.model import MODEL_ENV, sha256_of
from vbg.models import choose_model, names
from vbg.outputs import loopback
from vbg.outputs import BACKENDS


def video_devices() -> tuple[list[str], list[str]]:
    """(cameras, loopback outputs) as printable lines."""
    cameras, loopbacks = [], []
    if sys.platform.startswith("linux"):
        version = loopback.driver_version()
        for node in sorted(Path("/sys/class/video4linux").glob("video*"), key=lambda p: int(p.name[5:] or 0)):
            name = (node / "name").read_text().strip() if (node / "name").exists() else "?"
            virtual = "/virtual/" in str(node.resolve())
            line = f"/dev/{node.name}  {name}"
            state = loopback.query(f"/dev/{node.name}")
            if state is not None and state.is_loopback:
                fix = ("reload the module: sudo modprobe -r v4l2loopback && sudo modprobe v4l2loopback "
                       "exclusive_caps=1" if loopback.registers_writers(version) else "vbg resets it when it starts")
                line += (f"  STUCK (advertises neither output nor capture; {fix})"
                         if state.stale else "  " + ", ".join(n for n, on in (("output", state.output),
                                                                               ("capture", state.capture)) if on))
            if state is not None and state.is_loopback and loopback.one_reader(version):
                line += f"; {loopback.version_text(version)}: one app at a time reads it, a second is refused"
            (loopbacks if virtual or "loopback" in name.lower() else cameras).append(line)
    else:
        for index in range(5):
            cap = cv2.VideoCapture(index, cv2.CAP_DSHOW if sys.platform == "win32" else cv2.CAP_ANY)
            if cap.isOpened():
                cameras.append(f"{index}  {int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))}x"
                               f"{int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))}")
            cap.release()
    return cameras, loopbacks


def report(model_arg: str | None = None) -> str:
    import onnxruntime as ort

    lines = []
    cameras, _ = video_devices()
    lines.append("cameras:")
    lines += [f"  {c}" for c in cameras] or ["  none found — plug in a webcam, or use `vbg run --input FILE`"]
    for backend in BACKENDS.values():
        if backend.report is not None:
            lines.append(f"virtual camera, --vcam-backend {backend.name} ({backend.label}: {backend.help}):")
            lines += [f"  {line.strip()}" for line in backend.report()]
    providers = ort.get_available_providers()
    lines.append(f"onnxruntime {ort.__version__} providers: {', '.join(providers)}")
    if CUDA in providers:
        if not nvidia_driver_present():
            lines.append("  CUDA: no NVIDIA driver found, so vbg uses the CPU")
        elif missing := cuda_library_missing(ort):
            lines.append(f"  CUDA: NVIDIA driver found, but {missing} is missing, so vbg uses the CPU: "
                         "pip install 'vbg[cuda]' brings the CUDA and cuDNN libraries")
        else:
            lines.append("  CUDA: NVIDIA driver and CUDA libraries found; `--device auto` uses CUDA")
    else:
        lines.append("  CUDA: not in this onnxruntime (install onnxruntime-gpu on Linux/Windows with an NVIDIA GPU)")
    lines.append(compositor_line())
    model, given = choose_model(model_arg)
    spec = model.spec
    cached = spec.cached_path()
    lines.append(f"model: {model.title} (vbg knows: {', '.join(names())})")
    chosen = [(origin, value) for origin, value in (("--model", given), (MODEL_ENV, os.environ.get(MODEL_ENV)))
              if value]
    for i, (origin, value) in enumerate(chosen):
        path = Path(value).expanduser()
        state = ("in use" if i == 0 else f"not used: {chosen[0][0]} wins") if path.is_file() else "MISSING: fix the path"
        lines.append(f"  {origin} {value} ({state})")
    if chosen:
        lines.append(f"  cache {cached} (not used while {chosen[0][0]} names a model)")
    elif cached.is_file():
        ok = sha256_of(cached) == spec.sha256
        lines.append(f"  cache {cached} ({'sha256 ok' if ok else 'WRONG sha256: delete it'})")
    else:
        lines.append(f"  cache {cached} (not downloaded yet; vbg downloads {spec.url} on first run)")
    return "\n".join(lines)


def compositor_line() -> str:
    """Which path does the edge band (vbg/matting/kernels.py), without importing numba."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return (f"compositor: the compiled edge pass (numba {version('numba')}; compiled once, in the "
                "background, while OpenCV composes the first frames)")
    except PackageNotFoundError:
        return "compositor: OpenCV (pip install numba for the compiled edge pass: 0.8-0.9x the CPU a frame)"
