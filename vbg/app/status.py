"""The window's status line, in words for people; the stage timings go behind it as details."""

from __future__ import annotations

from vbg.outputs.sinks import VirtualCameraStatus
from vbg.pipeline import PipelineStatus
from vbg.timing import SHORT_NAMES


def virtual_camera_words(vcam: VirtualCameraStatus) -> str:
    if not vcam.enabled:
        return "virtual camera off"
    if not vcam.open:
        return "virtual camera not available" if vcam.error else "virtual camera starting"
    readers = vcam.readers
    if readers is None:
        return "virtual camera on"
    if readers == 0:
        return "virtual camera: no app is using it"
    words = f"virtual camera: in use by {readers} app{'s' * (readers != 1)}"
    if vcam.one_reader:
        words += " (other apps are refused: v4l2loopback lets one app read at a time)"
    return words


def device_words(provider: str) -> str:
    return "GPU (CUDA)" if provider.startswith("CUDA") else "GPU" if "Tensorrt" in provider else "CPU"


def status_text(status: PipelineStatus) -> tuple[str, str]:
    """(line, details): e.g. '30 fps · virtual camera: in use by 1 app · CPU', and the stage timings."""
    s = status
    line = f"{s.camera_words} · {virtual_camera_words(s.vcam)} · {device_words(s.provider)}"
    stages = " · ".join(f"{SHORT_NAMES.get(k, k)} {v:.1f}" for k, v in s.stage_ms.items())
    details = (f"stage medians (ms): {stages}\nlatency {s.latency_ms:.0f} ms · dropped {s.dropped} · errors {s.errors}"
               + (f" · damaged camera frames dropped {s.damaged}" if s.damaged else "")
               + f"\n{s.provider_note}\n{s.vcam.words}")
    return line, details
