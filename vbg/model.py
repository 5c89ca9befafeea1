"""The segmentation model's manifest, and finding, downloading and checking its file."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from vbg.errors import VbgError
from vbg.progress import ProgressBar
from vbg.resources import cache_dir, shipped_dir

MODEL_ENV = "VBG_MODEL"
MODEL_URL_ENV = "VBG_MODEL_URL"  # where to download it from instead of the pinned URL (the sha256 still applies)
DEFAULT_MODEL = "pphumanseg_v2_portrait_lite_256x144"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    file: str
    url: str
    sha256: str
    size: int
    input_name: str
    input_shape: tuple[int, int, int, int]  # N, C, H, W
    scale: float
    mean: float
    std: float
    output_name: str
    output_shape: tuple[int, int, int, int]
    person_channel: int
    licence: str

    @property
    def width(self) -> int:
        return self.input_shape[3]

    @property
    def height(self) -> int:
        return self.input_shape[2]

    @classmethod
    def load(cls, name: str = DEFAULT_MODEL) -> ModelSpec:
        data = json.loads((shipped_dir("models") / f"{name}.json").read_text())
        i, o = data["input"], data["output"]
        return cls(
            name=data["name"], file=data["file"], url=data["url"], sha256=data["sha256"], size=data["size"],
            input_name=i["name"], input_shape=tuple(i["shape"]), scale=i["scale"], mean=i["mean"], std=i["std"],
            output_name=o["name"], output_shape=tuple(o["shape"]), person_channel=o["person_channel"],
            licence=data["licence"],
        )

    def cached_path(self) -> Path:
        return cache_dir() / "models" / self.file


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_model(spec: ModelSpec, explicit: str | os.PathLike | None = None, download: bool = True,
                  progress=None) -> Path:
    """--model PATH, then $VBG_MODEL, then the user cache; otherwise download into the cache.

    A file the user names is used as given (its interface is checked when it loads); the cached
    file must match the manifest's sha256.
    """
    for origin, value in (("--model", explicit), (MODEL_ENV, os.environ.get(MODEL_ENV))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise VbgError(f"model file {path} (from {origin}) does not exist: fix the path, or unset it "
                               f"to use the cached model")
            return path
    cached = spec.cached_path()
    if cached.is_file():
        if sha256_of(cached) == spec.sha256:
            return cached
        raise VbgError(f"model file {cached} has the wrong sha256 (damaged download?): delete it and run vbg "
                       f"again to download it anew")
    if not download:
        raise VbgError(f"model not found: put {spec.url} at {cached}, or pass --model PATH")
    return download_model(spec, cached, progress=progress)


def network_reason(error: Exception, url: str) -> str:
    """Words for a failed download instead of '[Errno -2] Name or service not known'."""
    reason = getattr(error, "reason", error)
    host = urllib.parse.urlsplit(url).hostname
    if isinstance(reason, socket.gaierror):
        return f"no network (cannot look up {host})"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"{host} did not answer within 30 s"
    if isinstance(reason, ConnectionRefusedError):
        return f"{host} refused the connection (a proxy or firewall?)"
    if isinstance(error, urllib.error.HTTPError):
        return f"{host} answered HTTP {error.code} {error.reason}"
    text = getattr(reason, "strerror", None) or str(reason)
    return f"{text} ({host})"


def download_model(spec: ModelSpec, dest: Path, url: str | None = None, progress=None) -> Path:
    url = url or os.environ.get(MODEL_URL_ENV) or spec.url  # a mirror, where the pinned host is blocked
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    progress = progress or ProgressBar(f"downloading {spec.file}", unit=" bytes")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or spec.size)
            done = 0
            while block := response.read(1 << 16):
                out.write(block)
                h.update(block)
                done += len(block)
                progress(done, total)
    except (urllib.error.URLError, OSError, ValueError) as e:
        part.unlink(missing_ok=True)
        raise VbgError(f"cannot download the model: {network_reason(e, url)}. Fetch {url} on a machine that "
                       f"can and save it as {dest}, or choose the file with --model PATH / {MODEL_ENV} (in the "
                       f"window: Model file…)") from None
    if h.hexdigest() != spec.sha256:
        part.unlink(missing_ok=True)
        raise VbgError(f"downloaded model from {url} has sha256 {h.hexdigest()[:12]}…, expected "
                       f"{spec.sha256[:12]}…: the file was not kept; try again, or save the right file as {dest}")
    if isinstance(progress, ProgressBar):
        progress.done()
    os.replace(part, dest)
    return dest
