"""The state of a v4l2loopback device (Linux): its driver's version, what it reports, repairing a stale
one, who holds it.

v4l2loopback 0.12.x (Debian 12 and Ubuntu 24.04 ship 0.12.7) with `exclusive_caps=1` advertises
*output* while no writer is attached and *capture* once one has sent frames. A writer that only calls
`write()` (as pyvirtualcam does) is never registered as a writer, so when it closes, the device
advertises neither and the next run is refused ("not a video output device") until the module is
reloaded (v4l2loopback#470, pyvirtualcam#61). `VIDIOC_STREAMON` on the output queue is what registers
an opener as the writer, so on 0.12 vbg calls it on pyvirtualcam's own descriptor after opening (the
device then also advertises capture at once, before the first frame) and, for a device some other
program left stale, opens it, calls it and closes it again, which makes the driver advertise output again.

0.13 and later (bookworm-backports 0.13.2; Debian 13, Fedora and Arch 0.15) register a `write()`-only
writer themselves, so none of that is needed, and their STREAMON without buffers is refused (EINVAL on
0.14+). They also let one app read while a writer streams: a second app is refused ("device busy").
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import struct
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

VIDIOC_QUERYCAP = 0x80685600  # _IOR('V', 0, struct v4l2_capability), 104 bytes
VIDIOC_STREAMON = 0x40045612  # _IOW('V', 18, int)
VIDIOC_S_PARM = 0xC0CC5616  # _IOWR('V', 22, struct v4l2_streamparm), 204 bytes
BUF_TYPE_VIDEO_OUTPUT = 2
CAP_VIDEO_CAPTURE = 0x00000001
CAP_VIDEO_OUTPUT = 0x00000002
CAP_DEVICE_CAPS = 0x80000000
LOOPBACK_DRIVER = "v4l2 loopback"


def driver_version() -> tuple[int, ...] | None:
    """The loaded v4l2loopback module's version, e.g. (0, 15, 0); None when it is not loaded or says none."""
    try:
        text = Path("/sys/module/v4l2loopback/version").read_text().strip()
    except OSError:
        return None
    return parse_version(text)


def parse_version(text: str) -> tuple[int, ...] | None:
    found = re.match(r"\d+(?:\.\d+)*", text.strip())
    return tuple(int(part) for part in found.group().split(".")) if found else None


def registers_writers(version: tuple[int, ...] | None) -> bool:
    """Whether the driver registers a write()-only writer itself (0.13+). A module that declares no
    version is 0.12 or older."""
    return version is not None and version >= (0, 13)


def one_reader(version: tuple[int, ...] | None) -> bool:
    """Whether the driver refuses a second app while one reads (0.13+)."""
    return registers_writers(version)


def version_text(version: tuple[int, ...] | None) -> str:
    """0.12's module declares no version (0.13 and later do)."""
    return "v4l2loopback " + (".".join(map(str, version)) if version else "0.12 or older")


@dataclass(frozen=True)
class DeviceState:
    path: str
    driver: str
    card: str
    capture: bool
    output: bool

    @property
    def is_loopback(self) -> bool:
        return self.driver == LOOPBACK_DRIVER

    @property
    def stale(self) -> bool:
        """A loopback device that advertises neither direction: a writer closed it without streaming."""
        return self.is_loopback and not self.capture and not self.output

    def describe(self) -> str:
        caps = " and ".join(n for n, on in (("output", self.output), ("capture", self.capture)) if on) or "nothing"
        return f"{self.path} ({self.card}, {self.driver}) advertises {caps}"


def query(path: str) -> DeviceState | None:
    """What the device says about itself, or None if it cannot be opened or is no V4L2 device."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _querycap(fd, path)
    finally:
        os.close(fd)


def _querycap(fd: int, path: str) -> DeviceState | None:
    buf = bytearray(104)
    try:
        fcntl.ioctl(fd, VIDIOC_QUERYCAP, buf)
    except OSError:
        return None
    driver, card = (bytes(buf[a:b]).split(b"\0", 1)[0].decode(errors="replace") for a, b in ((0, 16), (16, 48)))
    capabilities, device_caps = struct.unpack_from("<II", buf, 84)
    caps = device_caps if capabilities & CAP_DEVICE_CAPS else capabilities
    return DeviceState(path, driver, card, bool(caps & CAP_VIDEO_CAPTURE), bool(caps & CAP_VIDEO_OUTPUT))


def stream_on(fd: int) -> bool:
    """Registers `fd` as the device's writer (see the module's note). False if the driver refused."""
    try:
        fcntl.ioctl(fd, VIDIOC_STREAMON, struct.pack("<i", BUF_TYPE_VIDEO_OUTPUT))
        return True
    except OSError:
        return False


def set_frame_rate(fd: int, fps: float) -> bool:
    """Makes the device advertise `fps` to readers (browsers report it as the track's rate). Without it
    v4l2loopback advertises 30 whatever the writer sends. False if the driver refused."""
    rate = Fraction(fps).limit_denominator(1001)
    parm = bytearray(204)  # type, then v4l2_outputparm: capability, outputmode, timeperframe (n/d), ...
    struct.pack_into("<IIIII", parm, 0, BUF_TYPE_VIDEO_OUTPUT, 0, 0, rate.denominator, rate.numerator)
    try:
        fcntl.ioctl(fd, VIDIOC_S_PARM, parm)
        return True
    except OSError:
        return False


def repair(path: str) -> DeviceState | None:
    """Makes a stale loopback device advertise output again; returns its state afterwards.

    The driver marks an opener as the writer before it looks at buffers, so STREAMON counts even
    when it fails for want of a format; closing that opener is what restores the output capability.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        stream_on(fd)
    finally:
        os.close(fd)
    return query(path)


def own_descriptor(path: str) -> int | None:
    """The descriptor this process has open on `path` (the one pyvirtualcam opened), if exactly one."""
    if not sys.platform.startswith("linux"):
        return None
    target = os.path.realpath(path)
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                found.append(int(fd))
        except OSError:
            continue
    return found[0] if len(found) == 1 else None


def holders(path: str) -> list[tuple[int, str]]:
    """Other processes that have `path` open: (pid, command name)."""
    target = os.path.realpath(path)
    me = os.getpid()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == target for fd in os.listdir(f"/proc/{pid}/fd")):
                found.append((int(pid), Path(f"/proc/{pid}/comm").read_text().strip()))
        except OSError:  # gone, or another user's process
            continue
    return found


def loopback_devices() -> list[DeviceState]:
    """Every v4l2loopback device on this machine, in /dev/videoN order."""
    if not sys.platform.startswith("linux"):
        return []
    paths = sorted(Path("/dev").glob("video*"), key=lambda p: (len(p.name), p.name))
    states = (query(str(p)) for p in paths)
    return [s for s in states if s is not None and s.is_loopback]


def prepare(device: str | None) -> str | None:
    """Before opening the virtual camera: repairs stale loopback devices (`device`, or all when None).

    Returns a one-line reason the device cannot be used as it is, or None when it looks usable
    (or when this is not Linux, or there is nothing to inspect)."""
    if not sys.platform.startswith("linux"):
        return None
    if device is None:
        if registers_writers(driver_version()):
            return None
        for state in loopback_devices():
            if state.stale:
                repair(state.path)
        return None
    state = query(device)
    if state is None:
        return None  # let pyvirtualcam say what it makes of it
    if not state.is_loopback:
        return f"{device} is not a v4l2loopback device (it is '{state.card}', driver {state.driver})"
    if state.stale:
        if registers_writers(driver_version()):
            return (f"{device} advertises neither output nor capture; close the apps using it, then: sudo modprobe "
                    "-r v4l2loopback && sudo modprobe v4l2loopback exclusive_caps=1 card_label=vbg")
        fixed = repair(device)
        if fixed is None or fixed.stale:
            return (f"{device} is stuck: the v4l2loopback driver advertises neither output nor capture and vbg "
                    "could not reset it; close the apps using it, then: sudo modprobe -r v4l2loopback && "
                    "sudo modprobe v4l2loopback exclusive_caps=1 card_label=vbg")
        state = fixed
    if not state.output:
        who = ", ".join(f"PID {pid} {name}" for pid, name in holders(device)) or "an unknown process"
        return f"{device} is in use: another program is writing to it ({who}); close it or pick another --vcam-device"
    return None


def is_gone(fd: int) -> bool:
    """True once the device behind `fd` no longer answers (its module was unloaded, or it was removed)."""
    buf = bytearray(104)
    try:
        fcntl.ioctl(fd, VIDIOC_QUERYCAP, buf)
        return False
    except OSError as e:
        return e.errno in (errno.ENODEV, errno.ENXIO, errno.EIO, errno.EBADF)
