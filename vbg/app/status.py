"""The window's status line, in words for people; the stage timings go behind it as details."""

from __future__ import annotations

from vbg import loopback
from vbg.pipeline import Pipeline

CAMERA_WORDS = {"starting": "camera starting", "lost": "camera lost, reconnecting", "absent": "no camera found",
                "ended": "video ended"}


def virtual_camera_words(pipeline: Pipeline) -> str:
    vcam = pipeline.vcam
    if not pipeline.settings.output.vcam:
        return "virtual camera off"
    if vcam.camera is None:
        return "virtual camera not available" if vcam.error else "virtual camera starting"
    readers = vcam.readers
    if readers is None:
        return "virtual camera on"
    if readers == 0:
        return "virtual camera: no app is using it"
    words = f"virtual camera: in use by {readers} app{'s' * (readers != 1)}"
    if loopback.one_reader(getattr(vcam.camera, "driver", None)):
        words += " (other apps are refused: v4l2loopback lets one app read at a time)"
    return words


def device_words(provider: str) -> str:
    return "GPU (CUDA)" if provider.startswith("CUDA") else "GPU" if "Tensorrt" in provider else "CPU"


def status_text(pipeline: Pipeline) -> tuple[str, str]:
    """(line, details): e.g. '30 fps · virtual camera: in use by 1 app · CPU', and the stage timings.
    Call `pipeline.status_line()` first: it updates the measured fps."""
    p = pipeline
    if p.paused:
        first = "paused: calls see the privacy image"
    elif p.capture.state in CAMERA_WORDS:
        first = CAMERA_WORDS[p.capture.state]
    elif p.capture.state == "idle":
        first = "camera off until an app uses the virtual camera"
    elif p.capture.stalled:
        first = CAMERA_WORDS["lost"]
    else:
        first = f"{p.output_fps:.0f} fps"
    line = f"{first} · {virtual_camera_words(p)} · {device_words(p.segmenter.provider)}"
    details = (f"stage medians (ms): {p.times.medians_text(' · ')}\nlatency {p.latency.median('latency'):.0f} ms "
               f"· dropped {p.capture_slot.dropped + p.composite_slot.dropped} · errors "
               f"{p.counters.errors + p.vcam.errors}"
               + (f" · damaged camera frames dropped {p.capture.damaged}" if p.capture.damaged else "")
               + f"\n{p.segmenter.provider_note}\n{p.vcam.state()}")
    return line, details
