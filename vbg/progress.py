import sys


class ProgressBar:
    """A one-line progress bar on stderr; off a terminal (logs, CI) one line per quarter instead."""

    def __init__(self, label: str, total: int | None = None, stream=None, unit: str = ""):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self._last = None
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int | None = None) -> None:
        total = total or self.total
        if total:
            pct = min(100, done * 100 // max(total, 1))
            step = pct if self._tty else pct // 25 * 25
            if step == self._last:
                return
            self._last = step
            text = f"\r{self.label} [{'#' * (pct // 4):<25}] {pct:3d}% ({done}/{total}{self.unit})"
        else:
            text = f"\r{self.label}: {done}{self.unit}"
        self.stream.write(text if self._tty else text.lstrip("\r") + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self._tty:
            self.stream.write("\n")
        self.stream.flush()
