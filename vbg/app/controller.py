"""The app's one controller: every command of vbg/app/commands.py, background selection, the engine's
lifecycle and the saved settings. The window, the tray, global hotkeys and `vbg ctl` all call it, and
it runs without any widget (tests/test_controller.py drives it headless).

It lives on one thread (the window's). Work that takes long (opening the camera and the model,
downloading photos) runs on a thread of its own, whose result comes back through `post`, which runs a
function on the controller's thread."""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from vbg.app import gallery
from vbg.app.commands import BY_VERB
from vbg.backgrounds import BlurredRoom, parse_background
from vbg.errors import VbgError
from vbg.matting.chain import open_segmenter
from vbg.models import choose_model
from vbg.pipeline import Pipeline
from vbg.resources import config_dir
from vbg.settings import Settings, check_pause_image, edge_preset, parse_positive, parse_size

log = logging.getLogger("vbg")

CAMERA_DEFAULT = "camera default"


def settings_path() -> Path:
    return config_dir() / "settings.json"


class View(Protocol):
    """What shows the controller: told what changed, it reads the controller's state again."""

    def changed(self, what: str) -> None:
        """`what`: "settings" (a setting, the background or pause), "gallery" (the choices), "engine"
        (started, stopped or failed: see `Controller.error`)."""

    def message(self, text: str, seconds: float) -> None:
        """A message for the user (saved a file, refused a background…)."""


class LogView:
    def changed(self, what: str) -> None:
        pass

    def message(self, text: str, seconds: float) -> None:
        log.info("%s", text)


class Controller:
    """`settings` is this run's (saved settings plus command-line overrides); `saved` is what is written
    back when the user changes something, so flags only last for one run. `on_output(image, source)`
    gets every output frame (the window's preview)."""

    MESSAGE_S = 8.0

    def __init__(self, settings: Settings, saved: Settings | None = None, save_path: Path | None = None, *,
                 view: View | None = None, post: Callable[[Callable[[], None]], None] | None = None,
                 on_output: Callable[[np.ndarray, np.ndarray | None], None] | None = None,
                 open_segmenter: Callable = open_segmenter, open_vcam: Callable | None = None):
        self.settings = settings
        self.saved = saved if saved is not None else copy.deepcopy(settings)
        self.save_path = save_path
        self.view: View = view or LogView()
        self._post = post or (lambda fn: fn())
        self._on_output = on_output
        self._open_segmenter, self._open_vcam = open_segmenter, open_vcam
        self.pipeline: Pipeline | None = None
        self.paused = False
        self.error = ""          # why the engine is not running ("" while it runs or starts)
        self.refusal = ""        # why the last background was refused
        self.choices: list[gallery.Choice] = gallery.choices()
        self.extra_commands: dict[str, Callable[[list[str]], str | None]] = {}  # the window's own verbs
        self._starting = False
        self._closing = False
        self._start_thread: threading.Thread | None = None
        self._built: Pipeline | None = None  # the newest pipeline a start thread made, adopted or not
        self._segmenter = None
        self._segmenter_key: tuple | None = None

    # -- the engine --------------------------------------------------------------------------------
    @property
    def starting(self) -> bool:
        return self._starting

    def start_engine(self) -> None:
        """Builds and starts the pipeline on a thread of its own (opening a camera can take a second)."""
        if self._starting or self._closing:
            return
        self._starting = True
        self.error = ""
        old, self.pipeline = self.pipeline, None
        self.view.changed("engine")
        settings = copy.deepcopy(self.settings)

        def build():
            try:
                if old is not None:
                    old.stop()
                key = (settings.segment.model, settings.segment.device)
                if self._segmenter is None or self._segmenter_key != key:
                    self._segmenter, self._segmenter_key = self._open_segmenter(settings), key
                if self._closing:
                    self._post(lambda: self._start_ended(None, ""))
                    return
                pipeline = Pipeline(settings, on_output=self._on_output, segmenter=self._segmenter,
                                    open_vcam=self._open_vcam, vcam_required=False, camera_required=False)
                self._built = pipeline.start()
                self._post(lambda: self._start_ended(pipeline, ""))
            except VbgError as e:
                message = str(e)
                self._post(lambda: self._start_ended(None, message))
            except Exception as e:  # never let a failed start take the app down
                log.exception("engine failed to start")
                message = f"the engine failed to start: {e}"
                self._post(lambda: self._start_ended(None, message))

        self._start_thread = threading.Thread(target=build, name="vbg-start", daemon=True)
        self._start_thread.start()

    def _start_ended(self, pipeline: Pipeline | None, error: str) -> None:
        self._starting = False
        if self._closing:
            return
        self.pipeline, self.error = pipeline, error
        if pipeline is not None:
            try:  # what changed while the engine started
                pipeline.update(self.settings)
            except VbgError as e:
                self.notify(str(e))
            if self.paused:
                pipeline.pause()
        self.view.changed("engine")

    def stop(self) -> None:
        """Stops the engine for good (the app quits)."""
        self._closing = True
        if self._start_thread is not None:
            self._start_thread.join(timeout=10)
        for pipeline in {self.pipeline, self._built} - {None}:
            pipeline.stop()
        self.pipeline = None

    def _apply(self) -> None:
        """The settings to the engine: the one path, so nothing changed during start-up is lost
        (`_start_ended` applies them again once the engine is up)."""
        if self.pipeline is not None:
            self.pipeline.update(self.settings)
        self.view.changed("settings")

    def _save(self, **changes) -> None:
        """Records a change the user made: in this run and in the saved settings."""
        for key, value in changes.items():
            section, name = key.split("__")
            setattr(getattr(self.settings, section), name, value)
            setattr(getattr(self.saved, section), name, value)
        if self.save_path is not None:
            try:
                self.saved.save(self.save_path)
            except OSError as e:
                self.notify(f"cannot save settings to {self.save_path}: {e}")

    def notify(self, text: str, seconds: float = MESSAGE_S) -> None:
        log.info("%s", text)
        self.view.message(text, seconds)

    # -- backgrounds -------------------------------------------------------------------------------
    def refresh_gallery(self) -> None:
        self.choices = gallery.choices()
        self.view.changed("gallery")

    @property
    def current_index(self) -> int:
        """The current background's place in the gallery; -1 when it is not there (a file picked elsewhere)."""
        spec = self.settings.composite.background
        return next((i for i, c in enumerate(self.choices) if c.spec == spec), -1)

    def select_index(self, index: int) -> bool:
        if not 0 <= index < len(self.choices):
            return False
        return self.select_spec(self.choices[index].spec)

    def select_spec(self, spec: str) -> bool:
        """Applies a background; a bad one is reported and the current one stays."""
        try:
            if self.pipeline is not None:
                self.pipeline.set_background(spec)
            else:
                parse_background(spec).close()
        except VbgError as e:
            self.refusal = str(e)
            self.notify(str(e))
            self.view.changed("settings")
            return False
        self._save(composite__background=spec)
        self.view.changed("settings")
        return True

    def select_name(self, name: str) -> bool:
        wanted = name.strip().lower()
        for i, c in enumerate(self.choices):
            if wanted in (c.label.lower(), c.spec.lower(), (c.path.stem.lower() if c.path else "")):
                return self.select_index(i)
        return self.select_spec(name)

    def step_background(self, step: int) -> None:
        current = self.current_index
        for k in range(1, len(self.choices) + 1):  # skip broken entries
            if self.select_index((current + step * k) % len(self.choices)):
                return

    def add_backgrounds(self, paths: list[Path]) -> None:
        added = None
        for path in paths:
            try:
                added = gallery.add_to_user_folder(path)
            except (VbgError, OSError) as e:
                self.notify(f"not added: {e}")
        self.refresh_gallery()
        if added is not None:
            self.select_spec(str(added))

    def get_rooms(self, done: Callable[[], None] = lambda: None) -> None:
        """Downloads the room photos on a thread of its own; the gallery shows them when they are in."""
        self.notify("downloading room photos…", seconds=60)

        def fetch():
            try:
                added = gallery.download_rooms()
                message = (f"added {len(added)} room photos to the gallery" if added
                           else "the room photos are already in the gallery")
            except VbgError as e:
                message = str(e)
            self._post(lambda: (self.refresh_gallery(), self.notify(message), done()))

        threading.Thread(target=fetch, name="vbg-rooms", daemon=True).start()

    @property
    def blur_strength(self) -> int | None:
        """The blur strength of the current background, or None when it is not a blur."""
        spec = self.settings.composite.background
        if Path(spec).expanduser().exists():
            return None
        try:
            background = parse_background(spec, live=False)
        except VbgError:
            return None
        background.close()
        return int(background.strength) if isinstance(background, BlurredRoom) else None

    def set_blur(self, strength: int) -> bool:
        return self.select_spec(BlurredRoom(strength).name)

    # -- settings ----------------------------------------------------------------------------------
    @property
    def edge(self) -> str:
        """auto, fine, standard or off."""
        refine = self.settings.refine
        return refine.edge if refine.enabled else "off"

    def set_edge(self, key: str) -> None:
        enabled = key != "off"
        preset = key if enabled else "auto"
        self.settings.refine = edge_preset(self.settings.refine, preset)
        self.saved.refine = edge_preset(self.saved.refine, preset)  # the preset's numbers, as they load
        self._save(refine__enabled=enabled)
        self._apply()

    def set_smoothing(self, strength: float) -> None:
        self._save(smooth__strength=strength)
        self._apply()

    def set_mirror(self, on: bool) -> None:
        self._save(composite__mirror=on)
        self._apply()

    def set_vcam(self, on: bool) -> None:
        self._save(output__vcam=on)
        self._apply()

    def set_vcam_backend(self, backend: str) -> None:
        self._save(output__vcam_backend=backend)
        self._apply()

    def retry_vcam(self) -> None:
        if not self.settings.output.vcam:
            self.set_vcam(True)   # turning it on retries
        elif self.pipeline is not None:
            self.pipeline.vcam.retry()

    def set_pause_image(self, value: str) -> bool:
        try:
            value = check_pause_image(value)
        except VbgError as e:
            self.notify(str(e))
            self.view.changed("settings")
            return False
        self._save(output__pause_image=value)
        self._apply()
        return True

    def set_paused(self, paused: bool) -> None:
        """Once this returns with `paused`, no camera pixel reaches any output (Pipeline.pause)."""
        self.paused = paused
        if self.pipeline is not None:
            self.pipeline.pause() if paused else self.pipeline.resume()
        self.view.changed("settings")

    def set_source(self, target: str, size: str | None = None, fps: str | None = None) -> str | None:
        """Captures from a camera (index or device) or a video file, at `size` and `fps` ("camera
        default", or None to keep them); restarts the engine. Returns why not, if not."""
        target = target.strip()
        if not (target.isdigit() or target.startswith("/dev/") or os.path.isfile(target)):
            return (f"no camera or video file at {target!r}: give a camera index (0), a device (/dev/video0) "
                    "or an existing video file; the source is unchanged")
        cap = self.settings.capture
        try:
            new_size = cap.size if size is None else None if size == CAMERA_DEFAULT else parse_size(size)
            new_fps = cap.fps if fps is None else None if fps == CAMERA_DEFAULT else parse_positive(fps, "fps")
        except VbgError as e:
            return str(e)
        cap.size, cap.fps = new_size, new_fps
        if os.path.isfile(target):
            cap.input, cap.loop = target, True   # a file lasts one run: it is not saved
        else:
            cap.input = None
            self._save(capture__camera=target, capture__size=new_size, capture__fps=new_fps)
        self.view.changed("settings")
        self.start_engine()
        return None

    def set_device(self, device: str) -> None:
        self._save(segment__device=device)
        self.start_engine()

    def set_model(self, path: str) -> None:
        """Uses this model file (checked when the engine starts; a bad one is reported there)."""
        self._save(segment__model=path)
        self._segmenter = None
        self.view.changed("settings")
        self.start_engine()

    @property
    def model_words(self) -> tuple[str, str]:
        """(what the window shows, its tooltip) for the model in use."""
        model, path = choose_model(self.settings.segment.model)
        if path:
            return Path(path).name, f"{path} (as the {model.title})"
        return model.title, "found via VBG_MODEL, the cache, or downloaded once"

    def set_window(self, **changes) -> None:
        """The window's own saved settings (its view, the auto-cycle)."""
        self._save(**{f"window__{k}": v for k, v in changes.items()})

    def snapshot(self, path: str) -> bool:
        ok = self.pipeline is not None and self.pipeline.snapshot(path, timeout=0.5)
        self.notify(f"saved {path}" if ok else f"could not save {path}")
        return ok

    # -- state -------------------------------------------------------------------------------------
    def status(self) -> dict:
        """The app's state, as `vbg ctl` answers it."""
        s = self.pipeline.status() if self.pipeline is not None else None
        current = self.current_index
        return {
            "ok": True,
            "backgrounds": [c.label for c in self.choices],
            "background": self.choices[current].label if current >= 0 else self.settings.composite.background,
            "background_spec": self.settings.composite.background,
            "fps": round(s.fps, 1) if s else 0.0,
            "provider": s.provider if s else None,
            "camera": s.camera if s else "stopped",
            "source": self.settings.capture.input or self.settings.capture.camera,
            "virtual_camera": s.vcam.words if s else "stopped",
            "paused": self.paused,
        }

    # -- commands (vbg/app/commands.py) ------------------------------------------------------------
    def handle(self, verb: str, args: list[str]) -> dict:
        """A command from keys, the tray, global hotkeys or `vbg ctl`: runs `cmd_<verb>` (or the window's
        own), which returns an error text or None; answers with the app's state."""
        handler = self.extra_commands.get(verb) or getattr(self, f"cmd_{verb}", None)
        if verb not in BY_VERB or handler is None:
            return {"ok": False, "error": f"unknown command {verb!r}"}
        error = handler(args)
        return {"ok": False, "error": error} if error else self.status()

    def cmd_next(self, args) -> None:
        self.step_background(1)

    def cmd_prev(self, args) -> None:
        self.step_background(-1)

    def cmd_select(self, args) -> str | None:
        names = ", ".join(c.label for c in self.choices)
        name = " ".join(args).strip()
        if not name:
            return f"select needs a name ({names}), a file, or blur:N / color:#RRGGBB"
        if self.select_name(name):
            return None
        if os.path.exists(name) or ":" in name:  # a file or spec that was refused: say why
            return self.refusal
        return f"no background named {name!r}: choose one of {names}; or a file, blur:N, color:#RRGGBB"

    def cmd_list(self, args) -> None:
        return None  # the answer carries the list

    def cmd_status(self, args) -> None:
        return None

    def cmd_source(self, args) -> str | None:
        if not args:
            return "source needs a camera (index or /dev/videoN) or a video file"
        return self.set_source(" ".join(args))

    def cmd_blur(self, args) -> None:
        self.select_spec("blur")

    def cmd_off(self, args) -> None:
        self.select_spec("none")

    def cmd_mirror(self, args) -> None:
        self.set_mirror(not self.settings.composite.mirror)

    def cmd_toggle(self, args) -> None:
        self.set_paused(not self.paused)

    def cmd_pause(self, args) -> None:
        self.set_paused(True)

    def cmd_resume(self, args) -> None:
        self.set_paused(False)

    def cmd_snapshot(self, args) -> str | None:
        if not args:
            return "snapshot needs a PATH"
        return None if self.snapshot(os.path.abspath(args[0])) else f"could not write {args[0]}"
