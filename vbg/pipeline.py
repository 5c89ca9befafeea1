"""The live pipeline: capture thread -> segmentation thread -> compositing/output thread.

Frames flow through two `LatestSlot`s, so each stage works on the newest frame and a slow stage makes
the others drop frames instead of queueing them. Each stage times itself into one `StageTimes`.
"""

from __future__ import annotations

import copy
import logging
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vbg.backgrounds import parse_background
from vbg.capture.source import CameraAbsent, CaptureThread, FrameSource, open_source
from vbg.errors import VbgError
from vbg.frames import FramePool, LatestSlot
from vbg.matting.chain import MatteChain, open_segmenter
from vbg.matting.segment import Segmenter
from vbg.outputs import Sink, close_quietly, vcam_opener
from vbg.outputs.cards import PAUSED_TEXT, privacy_image, status_card
from vbg.outputs.sinks import Recorder, VirtualCameraSink, VirtualCameraStatus
from vbg.settings import Settings
from vbg.timing import SHORT_NAMES, StageTimes

log = logging.getLogger("vbg")

POOL_FRAMES = 6  # capture + slot + segmentation + slot + compositor, and one spare
IDLE_GRACE_S = 2.0
IDLE_REPEAT_S = 1.0
STARTING_TEXT = "vbg: starting camera"


def rss_mb() -> float:
    if sys.platform.startswith("linux"):
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1e6 if sys.platform == "darwin" else 1e3)


CAMERA_WORDS = {"starting": "camera starting", "lost": "camera lost, reconnecting", "absent": "no camera found",
                "ended": "video ended", "idle": "camera off until an app uses the virtual camera"}
RATE_WINDOW_S = 2.0   # the output rate and the model's share are measured over about this long
RATE_SAMPLE_S = 0.5


@dataclass(frozen=True)
class RunSample:
    """The counters at one moment, taken by the composite thread (the rates are differences of two)."""
    t: float
    frames_out: int
    gated: int
    model_runs: int
    head_runs: int


@dataclass(frozen=True)
class PipelineStatus:
    """The engine's state at one moment: reading it changes nothing. The window, the tray, `vbg ctl`,
    `--status-every` and `vbg bench` all format this one snapshot."""
    paused: bool
    camera: str            # the capture thread's state: starting, live, lost, absent, ended, idle
    camera_stalled: bool   # live, but no frame for a while
    fps: float             # frames out a second, over the last RATE_WINDOW_S
    model_share: float     # the model's runs a frame, over the same window
    head_share: float      # of which on the head view
    provider: str
    provider_note: str
    vcam: VirtualCameraStatus
    stage_ms: dict[str, float]
    latency_ms: float
    totals: RunSample      # the counters since the start, now
    dropped: int
    errors: int
    damaged: int
    rss_mb: float

    def shares_since(self, earlier: PipelineStatus) -> tuple[float, float]:
        """The model's share of frames, and the head view's, between two snapshots."""
        a, b = earlier.totals, self.totals
        gated = max(1, b.gated - a.gated)
        return min(1.0, (b.model_runs - a.model_runs) / gated), (b.head_runs - a.head_runs) / gated

    @property
    def camera_words(self) -> str:
        """What people are told first: paused, the camera's trouble, or the rate."""
        if self.paused:
            return "paused: calls see the privacy image"
        if self.camera in CAMERA_WORDS:
            return CAMERA_WORDS[self.camera]
        if self.camera_stalled:
            return CAMERA_WORDS["lost"]
        return f"{self.fps:.0f} fps"

    def line(self) -> str:
        """One line for logs and soaks (`vbg run --status-every`)."""
        ms = " ".join(f"{SHORT_NAMES.get(k, k)} {v:.1f}" for k, v in self.stage_ms.items())
        ms += f" | model on {100 * self.model_share:.0f}% of frames"
        if self.head_share:
            ms += f" ({100 * self.head_share:.0f}% on the head)"
        return (f"{self.fps:5.1f} fps | ms: {ms} | latency {self.latency_ms:.0f} ms | {self.provider} | camera "
                f"{self.camera} | {self.vcam.words} | dropped {self.dropped} | rss {self.rss_mb:.0f} MB | errors {self.errors}"
                + (f" | damaged camera frames dropped {self.damaged}" if self.damaged else ""))


@dataclass
class Counters:
    frames_out: int = 0
    cards: int = 0
    repeated: int = 0  # the last frame sent again to keep the virtual camera at its advertised rate
    errors: int = 0


class Pipeline:
    def __init__(self, settings: Settings, *, lossless: bool = False, alpha_dir: str | None = None,
                 on_output: Callable[[np.ndarray, np.ndarray | None], None] | None = None,
                 segmenter: Segmenter | None = None, source: FrameSource | None = None,
                 open_source: Callable = open_source, open_vcam: Callable | None = None,
                 vcam_required: bool = True, camera_required: bool = True):
        """Opens everything that can fail (model, background, input, virtual camera, recording) so
        errors surface here as VbgError, before any thread starts. With `vcam_required=False` (the
        window) a missing virtual camera is reported in `vcam.error` and retried instead; with
        `camera_required=False` a camera that does not exist yet is waited for instead."""
        self.settings = copy.deepcopy(settings)  # the engine's own: callers change it through update()
        self.times = StageTimes()
        self.latency = StageTimes(("latency",))
        self.counters = Counters()
        self.on_output = on_output
        self._stop = threading.Event()
        self._closed = False
        self.segmenter = segmenter or open_segmenter(settings)
        out = settings.output
        self.chain = MatteChain(settings, self.segmenter, parse_background(settings.composite.background, live=True),
                                times=self.times)
        self.chain.compositor.one_path = lossless  # a lossless run is compared with offline renders
        self.alpha_dir = Path(alpha_dir) if alpha_dir else None
        if self.alpha_dir is not None:
            try:
                self.alpha_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise VbgError(f"cannot create folder {self.alpha_dir}: {e.strerror}") from None
        cap = settings.capture
        if source is None:
            try:
                source = open_source(cap)
            except VbgError as e:
                if cap.input or (camera_required and isinstance(e, CameraAbsent)):
                    raise
                log.warning("%s — will keep retrying", e)
        w, h = (source.width, source.height) if source else (cap.size or (1280, 720))
        fps = (source.fps if source and source.fps else None) or cap.fps or 30.0
        self.size, self.fps = (w, h), fps
        self.vcam = None
        self.sinks: list[Sink] = []   # every frame out goes to each, in order (vbg/outputs: Sink)
        try:
            self.vcam = VirtualCameraSink((w, h), fps, out.vcam_device, enabled=out.vcam,
                                          watch_readers=out.idle_when_unwatched, required=vcam_required,
                                          first_frame=status_card((h, w, 3), STARTING_TEXT),
                                          open_camera=open_vcam or vcam_opener(out.vcam_backend))
            self.sinks.append(self.vcam)
            if out.record:
                self.sinks.append(Recorder(out.record, w, h, fps))
        except VbgError:
            if source:
                source.close()
            self._close_outputs()
            self.chain.background.close()
            raise
        self.pool = FramePool(POOL_FRAMES)
        self.capture_slot = LatestSlot(lossless=lossless)
        self.composite_slot = LatestSlot(lossless=lossless)
        self.capture = CaptureThread(cap, self.capture_slot, self.pool, self.times, source=source,
                                     open_source=open_source)
        self._threads = [
            self.capture,
            threading.Thread(target=self._segment_loop, name="vbg-segment", daemon=True),
            threading.Thread(target=self._composite_loop, name="vbg-composite", daemon=True),
            threading.Thread(target=self._pace_loop, name="vbg-vcam-pace", daemon=True),
        ]
        self.last_output: np.ndarray | None = None
        self._vcam_sent_at = 0.0
        self._card: tuple[tuple, np.ndarray] | None = None
        # held while anything is sent and while the run state (paused, idle, the camera wanted) changes:
        # once pause() has it, a composite already in flight is dropped instead of sent
        self._output_lock = threading.Lock()
        self.paused = False
        self.dropped_paused = 0  # frames in flight when a pause came, never sent
        self._snapshot: tuple[str, threading.Event, list] | None = None
        self._idle = False
        self._unwatched_since = time.monotonic()
        self._samples: tuple[RunSample, ...] = (self._sample(time.monotonic()),)  # written by the composite thread
        self.finished = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Pipeline:
        cam = self.vcam.camera
        log.info("inference: %s, %d thread(s); output %dx%d @ %g fps%s", self.segmenter.provider_note,
                 self.segmenter.threads, *self.size, self.fps, f"; virtual camera {cam.device}" if cam else "")
        for t in self._threads:
            t.start()
        return self

    def request_stop(self) -> None:
        """Safe from a signal handler: `wait()` returns and the caller then calls `stop()`.

        (Raising KeyboardInterrupt instead can land inside Thread.start(), leaving a running thread
        that is_alive() does not report yet; the process then exits under it and aborts.)"""
        self._stop.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stops every thread and closes every output. Waits for a stage that is inside native code
        (an inference, a camera read): leaving it running while the interpreter exits aborts the
        process ("terminate called without an active exception")."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self.capture.stop()
        self.capture_slot.close()
        self.composite_slot.close()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            if t.is_alive():
                t.join(max(0.05, deadline - time.monotonic()))
                if t.is_alive():
                    log.warning("%s did not stop within %g s", t.name, timeout)
        for slot in (self.capture_slot, self.composite_slot):  # frames nobody will take now
            while (frame := slot.get(timeout=0)) is not None:
                frame.release()
        self._close_outputs()
        self.chain.background.close()

    def _close_outputs(self) -> None:
        close_quietly(*self.sinks)

    def wait(self, frames: int | None = None, duration: float | None = None,
             status_every: float | None = None, status: Callable[[str], None] | None = None) -> None:
        """Blocks until the input ends, `frames` were output, `duration` passed, or stop()."""
        t_end = time.monotonic() + duration if duration else None
        next_status = time.monotonic() + (status_every or 0)
        while not self.finished.is_set() and not self._stop.is_set():
            if frames is not None and self.counters.frames_out >= frames:
                break
            if t_end is not None and time.monotonic() >= t_end:
                break
            self.finished.wait(0.05)
            if status_every and status and time.monotonic() >= next_status:
                next_status += status_every
                status(self.status_line())

    # -- threads ---------------------------------------------------------------------------------
    def _segment_loop(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self.capture_slot.get(timeout=0.25)
                if frame is None:
                    if self.capture_slot.closed:
                        break
                    continue
                try:
                    self.chain.segment(frame)
                except Exception:
                    frame.release()
                    self.counters.errors += 1
                    log.exception("segmentation failed on frame %d", frame.index)
                    continue
                self.composite_slot.put(frame)
        finally:
            self.composite_slot.close()

    def _composite_loop(self) -> None:
        last_out = time.monotonic()
        try:
            while True:
                frame = self.composite_slot.get(timeout=0.25)
                now = time.monotonic()
                if frame is None:
                    if self.composite_slot.closed:
                        break
                    self._update_idle(now)
                    self._take_sample(now)
                    if now - last_out > 0.5:
                        with self._output_lock:  # the card said is the state's now, not before a pause
                            text = self._card_text()
                            if text:
                                key = (text, self.settings.output.pause_image, self.settings.composite.background)
                                self._send(self._card_for(key, text), card=True)
                                last_out = now
                    continue
                try:
                    image = self.chain.compose(frame, need_alpha=self.alpha_dir is not None)
                    if self.alpha_dir is not None:
                        cv2.imwrite(str(self.alpha_dir / f"{frame.index:06d}.png"), self.chain.alpha)
                    t1 = time.perf_counter()
                    self._emit(image, source=frame.image)
                    t2 = time.perf_counter()
                    self.times.add("output", (t2 - t1) * 1e3)
                    self.latency.add("latency", (t2 - frame.t_capture) * 1e3)
                except Exception as e:
                    self.counters.errors += 1
                    log.warning("frame %d not composited: %s", frame.index, e)
                finally:
                    frame.release()
                last_out = now
                self._update_idle(now)
                self._take_sample(now)
        finally:
            self.finished.set()

    def _pace_loop(self) -> None:
        """Keeps the virtual camera at the rate it advertises: call apps (browsers) take that rate as what
        the camera delivers, so when no new frame came for a period the last one is sent again. Its own
        thread, so a long composite never stalls it; the compositor's previous output stays intact while
        the next is composed, and the lock keeps a pause's privacy image the last frame."""
        while not self._stop.is_set():
            with self._output_lock:
                # idle, the "starting" card once a second: an app that opens the device gets a frame at
                # once, before vbg has even noticed it (Chromium gives up on a camera silent for 10 s)
                period = IDLE_REPEAT_S if self._idle else 1.0 / self.fps
                now = time.monotonic()
                due = self._vcam_sent_at + period
                if now >= due:
                    if self.last_output is not None and self.vcam.camera is not None:
                        self.vcam.send(self.last_output)
                        self.counters.repeated += 1
                    self._vcam_sent_at = now
                    due = now + period
            self._stop.wait(max(0.002, min(due - time.monotonic(), 1.0 / self.fps)))

    def _card_text(self) -> str | None:
        """What the output says while no frames come, or None to keep the last frame."""
        if self.paused:
            return PAUSED_TEXT
        if self.capture.state == "absent":
            return CAMERA_WORDS["absent"]
        if self.capture.state == "lost" or self.capture.stalled:
            return CAMERA_WORDS["lost"]
        if not self._idle and self.capture.state in ("starting", "idle"):
            return STARTING_TEXT  # an app that just opened the device sees this until the camera's first frame
        return None

    def _card_for(self, key: tuple, text: str) -> np.ndarray:
        if self._card is None or self._card[0] != key:
            self._card = (key, self._card_image(text))
        return self._card[1]

    def _card_image(self, text: str) -> np.ndarray:
        shape = (self.size[1], self.size[0], 3)
        if text == PAUSED_TEXT:
            return privacy_image(shape, self.settings.output.pause_image, self.settings.composite.background)
        return status_card(shape, text)

    def _apply_wanted(self) -> None:
        if self.paused or self._idle:
            self.capture.idle_reason = "paused" if self.paused else "no app is reading the virtual camera"
            self.capture.wanted.clear()
        else:
            self.capture.wanted.set()

    # -- controls (any thread) ---------------------------------------------------------------------
    def pause(self) -> None:
        """Stops camera and model; the call sees the privacy image (`OutputSettings.pause_image`), never
        the camera: when this returns the privacy image has been sent, and frames still in flight are
        dropped, never sent."""
        with self._output_lock:
            self.paused = True
            self._apply_wanted()
            key = (PAUSED_TEXT, self.settings.output.pause_image, self.settings.composite.background)
            self._send(self._card_for(key, PAUSED_TEXT), card=True)

    def resume(self) -> None:
        with self._output_lock:
            self.paused = False
            self._apply_wanted()

    def update(self, settings: Settings) -> None:
        """The one way to change a running engine: every setting that can change live takes effect
        from the next frame (the background raises VbgError and stays as it was if it is bad)."""
        old, new = self.settings.output, settings.output
        if settings.composite.background != self.settings.composite.background:
            self.chain.set_background(parse_background(settings.composite.background, live=True))
        retry = new.vcam and not old.vcam
        self.settings = copy.deepcopy(settings)
        self.chain.update(self.settings)
        self.vcam.enabled = new.vcam
        if (new.vcam_backend, new.vcam_device) != (old.vcam_backend, old.vcam_device):
            self.vcam.switch(new.vcam_device, vcam_opener(new.vcam_backend))
        if retry:
            self.vcam.retry()

    def set_background(self, spec: str) -> None:
        """Switches the background; raises VbgError (and keeps the current one) if `spec` is bad."""
        settings = copy.deepcopy(self.settings)
        settings.composite.background = spec
        self.update(settings)

    def snapshot(self, path: str, timeout: float = 2.0) -> bool:
        """Writes the next output frame (or the last one, if none comes) to `path` as an image."""
        done, result = threading.Event(), []
        self._snapshot = (path, done, result)
        if not done.wait(timeout):
            self._snapshot = None
            return self.last_output is not None and cv2.imwrite(path, self.last_output)
        return bool(result and result[0])

    def _emit(self, image: np.ndarray, card: bool = False, source: np.ndarray | None = None) -> None:
        """Sends `image` to every output, unless it is made from the camera and a pause came first."""
        with self._output_lock:
            if self.paused and not card:
                self.dropped_paused += 1
                return
            self._send(image, card, source)

    def _send(self, image: np.ndarray, card: bool = False, source: np.ndarray | None = None) -> None:
        for sink in self.sinks:
            sink.send(image)
        self._vcam_sent_at = time.monotonic()
        if self.on_output is not None:
            self.on_output(image, source)
        if self._snapshot is not None:
            path, done, result = self._snapshot
            self._snapshot = None
            result.append(cv2.imwrite(path, image))
            done.set()
        self.last_output = image
        if not card:
            self._card = None
        if card:
            self.counters.cards += 1
        else:
            self.counters.frames_out += 1

    def _update_idle(self, now: float) -> None:
        with self._output_lock:
            self._update_idle_locked(now)

    def _update_idle_locked(self, now: float) -> None:
        readers = self.vcam.readers
        if readers is None:
            if self._idle:  # the device went away: never stay idle without one
                self._idle = False
                self._apply_wanted()
            return
        if readers > 0:
            self._unwatched_since = now
            if self._idle:
                self._idle = False
                self._apply_wanted()
                log.info("an app opened the virtual camera: resuming")
        elif not self._idle and now - self._unwatched_since > IDLE_GRACE_S:
            self._idle = True
            self._apply_wanted()
            # what the next app to open the device sees first, instead of a composite from long ago
            self._send(status_card((self.size[1], self.size[0], 3), STARTING_TEXT), card=True)

    # -- reporting -------------------------------------------------------------------------------
    def _sample(self, now: float) -> RunSample:
        gate = self.chain.gate
        return RunSample(now, self.counters.frames_out, gate.frames, gate.runs, gate.head_runs)

    def _take_sample(self, now: float) -> None:
        if now - self._samples[-1].t >= RATE_SAMPLE_S:
            keep = int(RATE_WINDOW_S / RATE_SAMPLE_S)
            self._samples = (*self._samples[-keep:], self._sample(now))  # one reference swap: readers see either

    def status(self) -> PipelineStatus:
        """A snapshot of the engine, safe from any thread and free of side effects."""
        samples = self._samples
        first, last = samples[0], samples[-1]
        span = last.t - first.t
        gated = max(1, last.gated - first.gated)
        now = self._sample(time.monotonic())
        camera = self.capture.state
        vcam = self.vcam
        return PipelineStatus(
            paused=self.paused, camera=camera, camera_stalled=self.capture.stalled,
            fps=(last.frames_out - first.frames_out) / span if span > 0 else 0.0,
            model_share=min(1.0, (last.model_runs - first.model_runs) / gated),
            head_share=(last.head_runs - first.head_runs) / gated,
            provider=self.segmenter.provider, provider_note=self.segmenter.provider_note,
            vcam=vcam.status(),
            stage_ms={name: self.times.median(name) for name in self.times.names},
            latency_ms=self.latency.median("latency"), totals=now,
            dropped=self.capture_slot.dropped + self.composite_slot.dropped,
            errors=self.counters.errors + vcam.errors, damaged=self.capture.damaged, rss_mb=rss_mb())

    def status_line(self) -> str:
        return self.status().line()
