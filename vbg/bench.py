"""`vbg bench`: the real pipeline, unthrottled (or paced), with per-stage timings and CPU cost."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from vbg.capture.source import FileSource
from vbg.capture.source import open_video
from vbg.errors import VbgError
from vbg.matting.chain import open_segmenter
from vbg.matting.kernels import COMPILE_WAIT_S, KERNELS
from vbg.pipeline import Pipeline
from vbg.settings import Settings
from vbg.timing import STAGES

WARMUP_FRAMES = 15


def synthetic_clip(folder: Path, width: int, height: int, frames: int = 90, fps: float = 30.0) -> Path:
    """A clip of a person-like shape moving over a textured room, for when no clip is given."""
    path = folder / f"synthetic_{width}x{height}.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    rng = np.random.default_rng(0)
    room = cv2.resize(rng.integers(40, 200, (9, 16, 3), dtype=np.uint8), (width, height),
                      interpolation=cv2.INTER_CUBIC)
    for i in range(frames):
        img = room.copy()
        cx = int(width * (0.5 + 0.2 * np.sin(i / 15)))
        cv2.ellipse(img, (cx, height), (width // 5, height // 2), 0, 180, 360, (60, 80, 150), -1)
        cv2.circle(img, (cx, int(height * 0.38)), height // 7, (120, 150, 200), -1)
        writer.write(img)
    writer.release()
    return path


def scaled_clip(source: Path, folder: Path, width: int, height: int, max_frames: int = 300) -> Path:
    """The clip re-encoded at another size (MJPG, like a webcam), so resizing is not timed as capture."""
    path = folder / f"{source.stem}_{width}x{height}.avi"
    cap, fps, _ = open_video(source)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    n = 0
    while n < max_frames:
        ok, img = cap.read()
        if not ok:
            break
        h, w = img.shape[:2]
        scale = max(width / w, height / h)
        img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA if scale < 1
                         else cv2.INTER_LINEAR)
        y, x = (img.shape[0] - height) // 2, (img.shape[1] - width) // 2
        writer.write(np.ascontiguousarray(img[y:y + height, x:x + width]))
        n += 1
    writer.release()
    cap.release()
    return path


def run_bench(settings: Settings, input_path: str | None, size: tuple[int, int] | None, frames: int,
              paced_fps: float | None = None, log=print) -> dict:
    settings = dataclasses.replace(settings)
    with tempfile.TemporaryDirectory(prefix="vbg-bench-") as tmp:
        tmpdir = Path(tmp)
        if input_path is None:
            w, h = size or (1280, 720)
            clip = synthetic_clip(tmpdir, w, h)
        else:
            clip = Path(input_path)
            probe = FileSource(dataclasses.replace(settings.capture, input=str(clip)))
            native = (probe.width, probe.height)
            probe.close()
            if size and size != native:
                log(f"re-encoding {clip.name} at {size[0]}x{size[1]} (MJPG) for the benchmark")
                clip = scaled_clip(clip, tmpdir, *size)
        settings.capture = dataclasses.replace(settings.capture, input=str(clip), loop=True,
                                               paced=paced_fps is not None, fps=paced_fps)
        settings.output = dataclasses.replace(settings.output, vcam=False, record=None)
        segmenter = open_segmenter(settings)
        source = FileSource(settings.capture)
        if paced_fps:
            source.fps = paced_fps
        pipeline = Pipeline(settings, lossless=paced_fps is None, segmenter=segmenter, source=source)
        try:
            pipeline.start()
            pipeline.wait(frames=WARMUP_FRAMES)
            wanted = settings.composite.compositor
            if wanted != "opencv" and KERNELS.available and not KERNELS.wait(COMPILE_WAIT_S):
                log(f"the compiled compositor is not ready after {COMPILE_WAIT_S:g} s; timing the OpenCV path")
            if wanted == "compiled" and not KERNELS.ready.is_set():
                raise VbgError(f"--compositor compiled: {KERNELS.error or 'not compiled in time'}")
            pipeline.wait(frames=pipeline.counters.frames_out + 3)  # past frames composed while it compiled
            paths0 = dict(pipeline.chain.compositor.frames_by_path)
            pipeline.times.reset()
            pipeline.latency.reset()
            start_frames = pipeline.counters.frames_out
            before = pipeline.status()
            t0, c0 = time.perf_counter(), time.process_time()
            pipeline.wait(frames=start_frames + frames)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            done = pipeline.counters.frames_out - start_frames
            paths = {k: v - paths0[k] for k, v in pipeline.chain.compositor.frames_by_path.items()}
            after = pipeline.status()
            model_share, head_share = after.shares_since(before)
        finally:
            pipeline.stop()
        dropped = after.dropped

        # The bare model on the same session, same thread settings, same run.
        model_wall, model_cpu = [], []
        for _ in range(100):
            a, b = time.perf_counter(), time.process_time()
            segmenter.infer()
            model_wall.append(time.perf_counter() - a)
            model_cpu.append(time.process_time() - b)

    stats = pipeline.times.summary()
    lat = pipeline.latency.samples("latency")
    model_ms = float(np.median(model_wall) * 1e3)
    model_cpu_ms = float(np.median(model_cpu) * 1e3)
    cpu_per_frame = cpu / max(done, 1)
    return {
        "fps": round(done / wall, 2),
        "frames": done,
        "cpu_s_per_frame": round(cpu_per_frame, 5),
        "cpu_ratio_to_model": round(cpu_per_frame * 1e3 / model_cpu_ms, 3) if model_cpu_ms else None,
        "stages_ms": {s: stats[s] for s in STAGES if s in stats},
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 2), "p99": round(float(np.percentile(lat, 99)), 2)}
        if len(lat) else None,
        "model_infer_ms": round(model_ms, 3),
        "model_share": round(model_share, 3),  # frames the model ran on (below 1 with --adaptive auto)
        "head_share": round(head_share, 3),  # of them, on the head (vbg/matting/focus.py)
        "model_infer_cpu_ms": round(model_cpu_ms, 3),
        "provider": segmenter.provider,
        "threads": segmenter.threads,
        "size": f"{pipeline.size[0]}x{pipeline.size[1]}",
        "input": Path(input_path).name if input_path else "synthetic",
        "paced_fps": paced_fps,
        "dropped": dropped,
        "background": settings.composite.background,
        "compositor": "compiled" if paths["compiled"] >= paths["opencv"] else "opencv",
        "composed_by": paths,  # frames each path composed while timed (the OpenCV path also serves what
                               # the compiled one does not: erosion, feathering, a threshold, no refinement)
        "compile_s": round(KERNELS.compile_s, 2) if KERNELS.compile_s is not None else None,
    }


def run_reference(model_path: str, clip: str | None, size: tuple[int, int] | None, frames: int,
                  threads: int, log=print) -> dict:
    """An lfbw-style pipeline in the same run, for scale: Linux-Fake-Background-Webcam's approach as
    its README describes it (MediaPipe's selfie model, the float mask upscaled and softened at full
    size, a full-size 21x21 Gaussian blur of the room as its defaults say, a float32 blend in numpy,
    one loop, no threads).
    Written here from that description; the model is ../shared/peers' MediaPipe ONNX (never shipped)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    with tempfile.TemporaryDirectory(prefix="vbg-ref-") as tmp:
        path = Path(clip) if clip else synthetic_clip(Path(tmp), *(size or (1280, 720)))
        if clip and size:
            path = scaled_clip(path, Path(tmp), *size)
        cap, _, _ = open_video(path)
        for i in range(WARMUP_FRAMES + frames):
            if i == WARMUP_FRAMES:
                t0, c0 = time.perf_counter(), time.process_time()
            ok, frame = cap.read()
            if not ok:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = cap.read()
            h, w = frame.shape[:2]
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            x = cv2.resize(rgb, (256, 144), interpolation=cv2.INTER_AREA).astype(np.float32)[None] / 255.0
            mask = session.run(None, {"input": x})[0][0, :, :, 0]
            mask = cv2.blur(cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR), (9, 9))[..., None]
            room = cv2.GaussianBlur(frame, (21, 21), 7)  # lfbw's defaults: --background-blur 21, sigma k/3
            _ = (frame * mask + room * (1.0 - mask)).astype(np.uint8)  # what lfbw writes to its device
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        cap.release()
    return {"fps": round(frames / wall, 2), "cpu_s_per_frame": round(cpu / frames, 5)}


def format_report(r: dict) -> str:
    lines = [f"vbg bench: {r['input']} {r['size']}, {r['frames']} frames, {r['provider']} "
             f"({r['threads']} thread(s)), background {r['background']}, {r['compositor']} compositor"
             + (f", paced at {r['paced_fps']:g} fps" if r["paced_fps"] else ", unthrottled"),
             f"  fps                {r['fps']:8.1f}",
             f"  CPU s/frame        {r['cpu_s_per_frame'] * 1e3:8.2f} ms  ({r['cpu_ratio_to_model']}x the bare model's "
             f"CPU time)",
             f"  bare model         {r['model_infer_ms']:8.2f} ms wall, {r['model_infer_cpu_ms']:.2f} ms CPU"
             + (f"; ran on {100 * r['model_share']:.0f}% of frames" if r["model_share"] < 1 else "")
             + (f" ({100 * r['head_share']:.0f}% on the head)" if r["head_share"] else ""),
             "  stage              median      p99 (ms)"]
    for name, s in r["stages_ms"].items():
        lines.append(f"  {name:<16} {s['median']:8.2f} {s['p99']:8.2f}")
    if r["latency_ms"]:
        lines.append(f"  capture->output  {r['latency_ms']['p50']:8.2f} {r['latency_ms']['p99']:8.2f}")
    if r["dropped"]:
        lines.append(f"  dropped frames     {r['dropped']} (newest-frame hand-off)")
    ref = r.get("reference")
    if ref:
        lines.append(f"  lfbw-style reference, same clip and threads: {ref['fps']:.1f} fps, "
                     f"{ref['cpu_s_per_frame'] * 1e3:.2f} CPU-ms a frame; vbg: {r['fps'] / ref['fps']:.2f}x its fps, "
                     f"{r['cpu_s_per_frame'] / ref['cpu_s_per_frame']:.2f}x its CPU a frame")
    return "\n".join(lines)
