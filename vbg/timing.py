"""Per-stage timings: each stage records its own durations into a fixed ring."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import numpy as np

STAGES = ("capture", "preprocess", "inference", "smoothing", "composite", "output")
SHORT_NAMES = {"capture": "capture", "preprocess": "pre", "inference": "infer", "smoothing": "smooth",
               "composite": "composite", "output": "out"}


class StageTimes:
    """A bounded ring of recent durations (ms) for each named stage.

    One thread writes each stage; readers get a consistent-enough snapshot for status lines.
    """

    def __init__(self, stages: tuple[str, ...] = STAGES, capacity: int = 4096):
        self._rings = {name: np.zeros(capacity, np.float64) for name in stages}
        self._counts = {name: 0 for name in stages}
        self._capacity = capacity

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._rings)

    def add(self, stage: str, ms: float) -> None:
        n = self._counts[stage]
        self._rings[stage][n % self._capacity] = ms
        self._counts[stage] = n + 1

    @contextmanager
    def measure(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, (time.perf_counter() - t0) * 1e3)

    def samples(self, stage: str) -> np.ndarray:
        n = min(self._counts[stage], self._capacity)
        return self._rings[stage][:n]

    def median(self, stage: str) -> float:
        s = self.samples(stage)
        return float(np.median(s)) if len(s) else 0.0

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for name in self._rings:
            s = self.samples(name)
            if len(s):
                out[name] = {"median": round(float(np.median(s)), 3), "p99": round(float(np.percentile(s, 99)), 3)}
        return out

    def reset(self) -> None:
        for name in self._counts:
            self._counts[name] = 0


class Pacer:
    """Keeps a loop at `fps` (a video file played at its own rate): each `wait` sleeps until the next
    period is due, or until `stop` is set; a loop that fell more than a period behind counts again from
    now instead of rushing through frames to catch up."""

    def __init__(self, fps: float, stop: threading.Event):
        self.period = 1.0 / fps
        self._stop = stop
        self._next = time.perf_counter()

    def wait(self) -> None:
        self._next += self.period
        delay = self._next - time.perf_counter()
        if delay > 0:
            self._stop.wait(delay)
        elif delay < -self.period:
            self._next = time.perf_counter()


class Backoff:
    """Waits that grow with each failure in a row, up to the last one: a lost camera or virtual camera is
    retried soon, then less and less often, never in a busy loop."""

    def __init__(self, delays: tuple[float, ...]):
        self.delays = delays
        self.failures = 0

    def next_delay(self) -> float:
        delay = self.delays[min(self.failures, len(self.delays) - 1)]
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0

    @property
    def longest(self) -> float:
        return self.delays[-1]
