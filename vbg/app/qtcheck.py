"""Start-up checks: the system libraries Qt needs, and a Qt binding that drops references to Python's singletons.

PySide6 6.12.0 on Python 3.11 releases one reference to `True` on every `Signal.emit()` and to `None`
on `setText`/`update`/`processEvents`. Python >= 3.12 makes those objects immortal, so nothing shows
there; on 3.11 the count reaches zero after a few minutes of preview and the interpreter aborts
(`bool_dealloc: deallocating True or False`). pyproject.toml keeps that release out; this check
catches any other build that does the same before the window opens, instead of minutes into a call.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def debian_package(soname: str) -> str:
    """Debian's name for the package holding a library: libxcb-icccm.so.4 -> libxcb-icccm4,
    libxkbcommon-x11.so.0 -> libxkbcommon-x11-0 (a hyphen when the name ends in a digit)."""
    name, _, version = soname.partition(".so.")
    name = name.lower().replace("_", "-")  # libgssapi_krb5.so.2 -> libgssapi-krb5-2
    return f"{name}{'-' if name[-1:].isdigit() else ''}{version.split('.')[0]}"


def missing_libraries(binaries: list[Path]) -> list[str]:
    """Shared libraries that `binaries` need and the system lacks, as the dynamic linker sees them."""
    missing: list[str] = []
    for binary in binaries:
        try:
            out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return []  # no ldd: let Qt speak for itself
        for line in out.splitlines():
            soname, sep, where = line.strip().partition(" => ")
            if sep and where.strip() == "not found" and soname not in missing:
                missing.append(soname)
    return missing


def check_platform_libraries() -> None:
    """Raises VbgError naming every system library the X11 platform plugin lacks. Qt itself aborts
    the process and names only libxcb-cursor0, even when that one is installed and others are not."""
    if not sys.platform.startswith("linux"):
        return
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform not in ("", "xcb") or (not platform and os.environ.get("WAYLAND_DISPLAY")):
        return
    import PySide6

    qt = Path(PySide6.__file__).parent / "Qt"
    plugin = qt / "plugins" / "platforms" / "libqxcb.so"
    if not plugin.is_file():
        return
    # the X11 plugin, and QtNetwork for the `vbg ctl` socket (from PySide6 6.12 it needs Kerberos' GSSAPI)
    missing = missing_libraries([plugin] + [lib for lib in (qt / "lib" / "libQt6Network.so.6",) if lib.is_file()])
    if missing:
        packages = " ".join(dict.fromkeys(debian_package(m) for m in missing))
        raise VbgError(f"the window cannot open: Qt needs {', '.join(missing)}, which this system lacks: "
                       f"sudo apt install {packages} (Debian/Ubuntu package names)")
