"""Every command the app takes, in one table: its `vbg ctl` verb, window keys and global hotkey.

Adding a command is one row here and one `cmd_<verb>` method on the controller (vbg/app/controller.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    verb: str                        # `vbg ctl VERB`, and the window's `cmd_<verb>` handler
    help: str
    keys: tuple[str, ...] = ()       # window shortcuts (Qt key names)
    hotkey: str | None = None        # global hotkey (pynput syntax)
    arg: str | None = None           # the argument `vbg ctl` passes (a path is made absolute there)
    public: bool = True              # offered by `vbg ctl`


COMMANDS = (
    Command("next", "next background", ("N", "Right"), "<ctrl>+<alt>+n"),
    Command("prev", "previous background", ("P", "Left"), "<ctrl>+<alt>+p"),
    Command("select", "a background by name, file or spec", arg="NAME"),
    Command("list", "the backgrounds, the current one marked"),
    Command("blur", "blur the room", ("B",), "<ctrl>+<alt>+b"),
    Command("off", "no effect: the camera as it is", ("O",), "<ctrl>+<alt>+o"),
    Command("mirror", "mirror on or off", ("M",)),
    Command("toggle", "pause or resume", ("Space",), "<ctrl>+<alt>+<space>"),
    Command("pause", "stop camera and model; the call sees a 'paused' card"),
    Command("resume", "start them again"),
    Command("source", "capture from another camera or a video file", arg="CAMERA|FILE"),
    Command("snapshot", "write the current output frame to PATH", arg="PATH"),
    Command("screenshot", "write a picture of the window to PATH", arg="PATH"),
    Command("status", "print the app's state as JSON"),
    Command("raise", "bring the window forward", public=False),
)
BY_VERB = {c.verb: c for c in COMMANDS}
PUBLIC_VERBS = tuple(c.verb for c in COMMANDS if c.public)


def usage() -> str:
    return " | ".join(f"{c.verb} {c.arg}" if c.arg else c.verb for c in COMMANDS if c.public)


def hotkey_summary() -> str:
    def shown(hotkey: str) -> str:
        return hotkey.replace("<ctrl>", "Ctrl").replace("<alt>", "Alt").replace("<space>", "Space").title()

    return ", ".join(f"{shown(c.hotkey)} {c.help}" for c in COMMANDS if c.hotkey)
