"""`vbg install-desktop`: the menu entry, icon, AppStream metainfo and the start-at-login entry (XDG).

Everything goes in the user's own folders (no root), and `--remove` takes exactly those files away.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from vbg import __version__

APP_ID = "io.github.vbg"
ICON = Path(__file__).with_name("vbg.svg")


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def launcher() -> list[str]:
    """The command that starts this installation of vbg, whatever PATH the session has."""
    script = shutil.which("vbg")
    if script and Path(script).resolve().parent == Path(sys.executable).resolve().parent:
        return [str(Path(script).absolute())]
    return [sys.executable, "-m", "vbg"]


_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def _exec(args: list[str]) -> str:
    """An Exec= value (Desktop Entry spec): arguments with reserved characters in double quotes, with
    ", `, $ and \\ escaped; then \\ escaped again as in any string value, and % doubled."""
    def quoted(arg: str) -> str:
        if not _RESERVED & set(arg):
            return arg
        return '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'

    return " ".join(quoted(a) for a in args).replace("\\", "\\\\").replace("%", "%%")


def desktop_entry(args: list[str], autostart: bool = False) -> str:
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Name=vbg",
        "GenericName=Virtual Background",
        "Comment=Blur or replace the room behind you in video calls, without a green screen",
        f"Exec={_exec(args)}",
        f"Icon={APP_ID}",
        "Terminal=false",
        "Categories=AudioVideo;Video;",
        "Keywords=webcam;camera;background;blur;virtual;zoom;meet;",
        "StartupNotify=false" if autostart else "StartupNotify=true",
        "StartupWMClass=vbg",
    ]
    if autostart:
        lines += ["X-GNOME-Autostart-enabled=true", "X-GNOME-Autostart-Delay=3"]
    return "\n".join(lines) + "\n"


def metainfo() -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<component type="desktop-application">
  <id>{APP_ID}</id>
  <metadata_license>CC0-1.0</metadata_license>
  <project_license>GPL-2.0-or-later</project_license>
  <name>vbg</name>
  <summary>Blur or replace the room behind you in video calls</summary>
  <description>
    <p>vbg is a virtual background for your webcam. It finds you in each frame with a small neural
    network, smooths the outline over time, and blurs or replaces everything else. Call apps see the
    result as a camera (a v4l2loopback device).</p>
  </description>
  <launchable type="desktop-id">{APP_ID}.desktop</launchable>
  <developer id="io.github.vbg"><name>The vbg developers</name></developer>
  <content_rating type="oars-1.1"/>
  <releases>
    <release version="{__version__}" date="2026-11-22"/>
  </releases>
</component>
"""


@dataclass(frozen=True)
class DesktopFiles:
    entry: Path
    icon: Path
    metainfo: Path
    autostart: Path

    @classmethod
    def here(cls) -> DesktopFiles:
        data = data_home()
        return cls(entry=data / "applications" / f"{APP_ID}.desktop",
                   icon=data / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg",
                   metainfo=data / "metainfo" / f"{APP_ID}.metainfo.xml",
                   autostart=config_home() / "autostart" / f"{APP_ID}.desktop")


def install(autostart: bool = False) -> list[Path]:
    """Writes the files; `autostart` adds the start-at-login entry (the window starts in the tray)."""
    files = DesktopFiles.here()
    args = launcher()
    written = [files.entry, files.icon, files.metainfo]
    for path in written:
        path.parent.mkdir(parents=True, exist_ok=True)
    files.entry.write_text(desktop_entry(args + ["gui"]))
    shutil.copyfile(ICON, files.icon)
    files.metainfo.write_text(metainfo())
    if autostart:
        files.autostart.parent.mkdir(parents=True, exist_ok=True)
        files.autostart.write_text(desktop_entry(args + ["gui", "--tray"], autostart=True))
        written.append(files.autostart)
    else:
        files.autostart.unlink(missing_ok=True)
    return written


def remove() -> list[Path]:
    files = DesktopFiles.here()
    removed = []
    for path in (files.entry, files.icon, files.metainfo, files.autostart):
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed
