"""Where vbg's shipped files and the user's per-platform folders are."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """`models/` or `backgrounds/`: inside the installed wheel (vbg/_data/NAME) or beside vbg/ in a checkout."""
    installed = _PACKAGE / "_data" / name
    return installed if installed.is_dir() else _PACKAGE.parent / name


def cache_dir() -> Path:
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "vbg" / "Cache"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches" / "vbg"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vbg"
    return base


def config_dir() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / "vbg"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "vbg"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "vbg"
