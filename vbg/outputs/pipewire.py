"""The virtual camera as a PipeWire node: no kernel module (Secure Boot, Flatpak, the camera portal).

vbg publishes a `Video/Source` node with `media.role=Camera` through GStreamer's pipewiresink
(PyGObject): `appsrc (I420) ! identity drop-allocation=true ! pipewiresink mode=provide`. Apps that
take cameras from PipeWire see it: OBS ("Video Capture Device (PipeWire)"), GNOME Snapshot, Firefox
and Chromium with their PipeWire camera options. V4L2-only apps (Zoom, Discord) still need v4l2loopback.

Known behaviour of PipeWire 0.3.65 that this module works around:
- pipewiresink segfaults when the first consumer connects unless an element before it refuses the
  allocation query (`identity drop-allocation=true`).
- When the daemon restarts, pipewiresink says nothing: pushes keep succeeding into a dead stream. The
  daemon's socket is a new file then, so `send` compares the socket's identity once a second, and the
  consumer watcher also notices our node gone; either way the sink reopens it (output.VirtualCameraSink).
- Frames are BT.601 limited range (what OpenCV's BGR->I420 produces), stated in the caps, so consumers
  convert them back with the same matrix.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from vbg.errors import VbgError
from vbg.outputs import DeviceSize

log = logging.getLogger("vbg")

DEFAULT_NODE = "vbg"
INSTALL = ("sudo apt install gstreamer1.0-pipewire gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 "
           "libgirepository1.0-dev && pip install \"vbg[pipewire]\"")


def socket_path() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return Path(runtime) / os.environ.get("PIPEWIRE_REMOTE", "pipewire-0")


def _socket_identity() -> tuple[int, int] | None:
    try:
        st = os.stat(socket_path())
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def load_gstreamer():
    """Gst with pipewiresink, or VbgError saying what to install."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        from gi.repository import Gst
    except (ImportError, ValueError) as e:
        raise VbgError(f"the PipeWire camera needs PyGObject and GStreamer's introspection data ({e}): "
                       f"{INSTALL}") from None
    if not Gst.is_initialized():
        Gst.init(None)
    if Gst.ElementFactory.find("pipewiresink") is None:
        raise VbgError("GStreamer has no pipewiresink: sudo apt install gstreamer1.0-pipewire")
    return Gst


def status() -> list[str]:
    """Lines for `vbg devices`: what is there and what is missing for --vcam-backend pipewire."""
    lines = []
    sock = socket_path()
    lines.append(f"  PipeWire daemon: {'running (' + str(sock) + ')' if sock.exists() else 'not running (no ' + str(sock) + ')'}")
    try:
        Gst = load_gstreamer()
        lines.append(f"  GStreamer {Gst.version_string().split()[-1]} with pipewiresink: yes")
    except VbgError as e:
        lines.append(f"  GStreamer/pipewiresink: missing: {e}")
    return lines


def pw_dump_objects(text: str) -> list[dict]:
    """The objects in `pw-dump`'s output. When the graph changes while it dumps, pw-dump follows the
    first array with more, each object in them the newer state of one already listed (or a new one;
    `"info": null` when it went away): merged by id, in the order first seen."""
    decoder, objects, at = json.JSONDecoder(), {}, 0
    text = text.strip()
    while at < len(text):
        chunk, at = decoder.raw_decode(text, at)
        for o in chunk:
            if o.get("info", True) is None and o.get("type") is None:
                objects.pop(o.get("id"), None)
            else:
                objects[o.get("id")] = o
        while at < len(text) and text[at].isspace():
            at += 1
    return list(objects.values())


class PipeWireReaders:
    """Counts the consumers linked to our node, from `pw-dump` once a second, and notices the node
    gone (a daemon restart). A `Readers` (vbg/outputs/__init__.py)."""

    PERIOD_S = 1.0

    def __init__(self, node_name: str):
        self.node_name = node_name
        self.readers = 0
        self.node_id: int | None = None
        self.lost = False
        self.available = shutil.which("pw-dump") is not None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PipeWireReaders:
        if self.available:
            self._thread = threading.Thread(target=self._run, name="vbg-pipewire-readers", daemon=True)
            self._thread.start()
        return self

    def poll(self) -> None:
        try:
            out = subprocess.run(["pw-dump", "--no-colors"], capture_output=True, text=True, timeout=5).stdout
            objects = pw_dump_objects(out)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            return
        node = next((o for o in objects if o.get("type") == "PipeWire:Interface:Node"
                     and (o.get("info") or {}).get("props", {}).get("node.name") == self.node_name), None)
        if node is None:
            if self.node_id is not None:
                self.lost = True
            return
        if self.node_id is not None and node["id"] != self.node_id:
            self.lost = True
        self.node_id = node["id"]
        consumers = {(o.get("info") or {}).get("input-node-id") for o in objects
                     if o.get("type") == "PipeWire:Interface:Link"
                     and (o.get("info") or {}).get("output-node-id") == self.node_id}
        self.readers = len(consumers - {None})

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.PERIOD_S)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=6)


def _element(Gst, factory: str, **properties):
    element = Gst.ElementFactory.make(factory, None)
    if element is None:
        raise VbgError(f"GStreamer has no {factory} element: sudo apt install gstreamer1.0-plugins-base "
                       "gstreamer1.0-pipewire")
    for name, value in properties.items():
        element.set_property(name.replace("_", "-"), value)
    return element


class PipeWireCamera:
    """Publishes BGR frames as a PipeWire camera node named `device` (default "vbg")."""

    CHECK_EVERY_S = 1.0

    def __init__(self, width: int, height: int, fps: float, device: str | None = None):
        Gst = load_gstreamer()
        self._Gst = Gst
        self.node_name = (device or DEFAULT_NODE).removeprefix("pipewire:")
        self.device = f"pipewire:{self.node_name}"
        self.width, self.height = width - width % 2, height - height % 2   # I420 needs even sizes
        self._socket = _socket_identity()
        if self._socket is None:
            raise VbgError(f"no PipeWire camera: the PipeWire daemon is not running (no {socket_path()}); start "
                           "your desktop's PipeWire, or use --vcam-backend v4l2loopback")
        rate = max(1, round(fps))
        self._pipeline = Gst.Pipeline.new("vbg-pipewire")
        src = _element(Gst, "appsrc", is_live=True, do_timestamp=True, format=Gst.Format.TIME, block=False,
                       max_buffers=2, leaky_type=2,  # 2: drop the oldest frame, never queue
                       caps=Gst.Caps.from_string(
                           f"video/x-raw,format=I420,width={self.width},height={self.height},"
                           f"framerate={rate}/1,colorimetry=bt601,pixel-aspect-ratio=1/1"))
        props = Gst.Structure.new_empty("props")
        for key, value in (("media.class", "Video/Source"), ("media.role", "Camera"),
                           ("node.name", self.node_name), ("node.description", "vbg virtual camera")):
            props.set_value(key, value)
        sink = _element(Gst, "pipewiresink", mode=2, client_name="vbg", stream_properties=props)  # 2: provide
        chain = [src, _element(Gst, "identity", drop_allocation=True), sink]
        for element in chain:
            self._pipeline.add(element)
        for a, b in zip(chain, chain[1:]):
            a.link(b)
        self._src = src
        self._bus = self._pipeline.get_bus()
        if self._pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            error = self._bus_error() or "the GStreamer pipeline did not start"
            self._pipeline.set_state(Gst.State.NULL)
            raise VbgError(f"no PipeWire camera: {error}")
        self._yuv = np.empty((self.height * 3 // 2, self.width), np.uint8)
        self._fit = DeviceSize(self.width, self.height)
        self._readers: PipeWireReaders | None = None
        self._next_check = time.monotonic() + self.CHECK_EVERY_S

    def _bus_error(self) -> str | None:
        msg = self._bus.pop_filtered(self._Gst.MessageType.ERROR)
        if msg is None:
            return None
        error, _ = msg.parse_error()
        return error.message

    def watch_readers(self) -> PipeWireReaders:
        self._readers = PipeWireReaders(self.node_name).start()
        return self._readers

    def send(self, image: np.ndarray) -> None:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.CHECK_EVERY_S
            if _socket_identity() != self._socket or (self._readers is not None and self._readers.lost):
                raise VbgError("the PipeWire daemon restarted")
            error = self._bus_error()
            if error:
                raise VbgError(f"PipeWire stream failed: {error}")
        cv2.cvtColor(self._fit(image), cv2.COLOR_BGR2YUV_I420, dst=self._yuv)
        # GStreamer keeps the buffer after push returns, so it gets its own copy of the frame
        flow = self._src.emit("push-buffer", self._Gst.Buffer.new_wrapped(self._yuv.tobytes()))
        if flow not in (self._Gst.FlowReturn.OK, self._Gst.FlowReturn.FLUSHING):
            raise VbgError(f"PipeWire stream refused a frame ({flow.value_nick})")

    def close(self) -> None:
        if self._readers is not None:
            self._readers.close()
        self._pipeline.set_state(self._Gst.State.NULL)
