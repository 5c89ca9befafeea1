"""Frames and the hand-offs between pipeline threads.

A `Frame` is a reusable record from a fixed `FramePool`: the full-resolution image plus whatever
per-frame buffers later stages attach (the model-size image, the mask). Whoever holds a frame owns it
and calls `release()` when done; a `LatestSlot` that replaces an unconsumed frame releases it. So the
pool bounds memory, nothing is queued, and no per-frame image is allocated once the pool is warm.
"""

from __future__ import annotations

import threading

import numpy as np


class Frame:
    __slots__ = ("image", "index", "t_capture", "_pool", "buffers")

    def __init__(self, pool: FramePool | None = None):
        self.image: np.ndarray = np.empty((0, 0, 3), np.uint8)
        self.index = 0
        self.t_capture = 0.0
        self._pool = pool
        self.buffers: dict[str, np.ndarray] = {}

    def buffer(self, name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        """A named per-frame buffer, allocated once and reused while the shape stays the same."""
        buf = self.buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self.buffers[name] = np.empty(shape, dtype)
        return buf

    def release(self) -> None:
        if self._pool is not None:
            self._pool.give_back(self)


class FramePool:
    """A fixed number of frames. `take()` waits (bounded) when all are in use."""

    def __init__(self, count: int):
        self._free = [Frame(self) for _ in range(count)]
        self._cond = threading.Condition()
        self.count = count

    def take(self, shape: tuple[int, int, int], timeout: float = 1.0) -> Frame | None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._free, timeout):
                return None
            frame = self._free.pop()
        if frame.image.shape != shape:
            frame.image = np.empty(shape, np.uint8)
        return frame

    def give_back(self, frame: Frame) -> None:
        with self._cond:
            self._free.append(frame)
            self._cond.notify()

    def free_count(self) -> int:
        with self._cond:
            return len(self._free)


class LatestSlot:
    """A one-frame hand-off. `put` replaces (and releases) a frame nobody took yet, so a slow
    consumer always gets the newest frame. With `lossless=True`, `put` waits instead (offline runs
    and benchmarks, where every frame must be processed)."""

    def __init__(self, lossless: bool = False):
        self._frame: Frame | None = None
        self._closed = False
        self._lossless = lossless
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, frame: Frame) -> bool:
        """Hands `frame` over; returns False (and releases it) if the slot is closed."""
        with self._cond:
            if self._lossless:
                self._cond.wait_for(lambda: self._frame is None or self._closed)
            if self._closed:
                frame.release()
                return False
            stale, self._frame = self._frame, frame
            self._cond.notify_all()
        if stale is not None:
            self.dropped += 1
            stale.release()
        return True

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest frame, or None on timeout or once closed and drained."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout):
                return None
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        """No more frames will be put; a frame already waiting is still delivered."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """Closed and drained: nothing more will come out."""
        with self._cond:
            return self._closed and self._frame is None
