"""A start-up check for a Qt binding that drops references to Python's singletons.

PySide6 6.12.0 on Python 3.11 releases one reference to `True` on every `Signal.emit()` and to `None`
on `setText`/`update`/`processEvents`. Python >= 3.12 makes those objects immortal, so nothing shows
there; on 3.11 the count reaches zero after a few minutes of preview and the interpreter aborts
(`bool_dealloc: deallocating True or False`). pyproject.toml keeps that release out; this check
catches any other build that does the same before the window opens, instead of minutes into a call.
"""

from __future__ import annotations

import sys

from vbg.errors import VbgError

FIX = 'pip install "PySide6-Essentials<6.12"'


def singleton_refcounts() -> tuple[int, int, int]:
    return sys.getrefcount(True), sys.getrefcount(None), sys.getrefcount(False)


def measure_leak(app, calls: int = 40) -> dict[str, int]:
    """References to True/None/False lost over `calls` emits, label updates and event loop turns."""
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QLabel

    class _Probe(QObject):
        value = Signal(object)
        flag = Signal(bool)

    probe, label, received = _Probe(), QLabel(), []
    probe.value.connect(received.append)
    probe.flag.connect(received.append)
    before = singleton_refcounts()
    for i in range(calls):
        probe.value.emit(i)
        probe.flag.emit(True)
        label.setText(str(i))
        label.update()
        app.processEvents()
    after = singleton_refcounts()
    received.clear()
    label.deleteLater()
    return {name: b - a for name, a, b in zip(("True", "None", "False"), before, after)}


def check_qt_binding(app) -> None:
    """Raises VbgError if the Qt binding loses references (it would crash the window later)."""
    if sys.version_info >= (3, 12):  # immortal singletons: a lost reference cannot free them
        return
    lost = {k: -v for k, v in measure_leak(app).items() if v < -10}
    if lost:
        import PySide6

        raise VbgError(f"PySide6 {PySide6.__version__} on Python {sys.version_info[0]}.{sys.version_info[1]} loses "
                       f"references on every signal ({', '.join(f'{k}: -{v}' for k, v in lost.items())} in 40 "
                       f"calls) and would crash the window within minutes: {FIX}")
