"""Segmentation: one onnxruntime session, aspect-preserving preprocessing into fixed buffers."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import logging
import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np

from vbg.errors import VbgError, brief
from vbg.model import ModelSpec
from vbg.models import SegmentationModel, load_model

log = logging.getLogger("vbg")

DEVICES = ("auto", "cpu", "cuda")
CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


def nvidia_driver_present() -> bool:
    """Cheap check before asking onnxruntime for CUDA (which logs a loud error when it can't load)."""
    name = "nvcuda.dll" if sys.platform == "win32" else (ctypes.util.find_library("cuda") or "libcuda.so.1")
    try:
        ctypes.CDLL(name)
        return True
    except OSError:
        return False


def preload_cuda(ort) -> None:
    """Loads the CUDA and cuDNN libraries that `pip install 'vbg[cuda]'` put in the environment (the
    nvidia-* wheels), so a machine with only the NVIDIA driver gets the CUDA provider. onnxruntime's
    CUDA provider finds them only on the system's library path otherwise."""
    if not hasattr(ort, "preload_dlls"):
        return
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a line for each library it did not find
        try:
            ort.preload_dlls(directory="")
        except Exception as e:  # a broken wheel must not cost the CPU fallback
            log.debug("onnxruntime.preload_dlls: %s", e)


def cuda_library_missing(ort) -> str | None:
    """The first library onnxruntime's CUDA provider cannot load (e.g. 'libcudnn.so.9'), or None when it loads."""
    preload_cuda(ort)
    capi = Path(ort.__file__).parent / "capi"
    names = (("onnxruntime_providers_shared.dll", "onnxruntime_providers_cuda.dll") if sys.platform == "win32" else
             ("libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"))
    if not (capi / names[1]).exists():
        return f"{names[1]} (this onnxruntime has no CUDA provider)"
    try:
        for name in names:
            ctypes.CDLL(str(capi / name))
        return None
    except OSError as e:
        found = re.search(r"([\w.+-]+\.(?:so[\w.]*|dll))", str(e))
        return found.group(1) if found else brief(e, 100)


def default_threads() -> int:
    # Leave cores for capture (decoding) and compositing, which run in their own threads.
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def area_resize(src: np.ndarray, dst: np.ndarray, scratch: dict) -> None:
    """Area-averaging downscale of `src` into `dst` (which may be a view).

    OpenCV's INTER_AREA is fast only for integer ratios (1.2 ms for 1280x720 -> 256x144) and slow
    otherwise (6.9 ms for 1280x960 -> 192x144). Exact 2x bilinear steps are 2x2 box averages, so halve
    first and let INTER_AREA do the last, small step.
    """
    h, w = dst.shape[:2]
    while src.shape[0] >= 2 * h and src.shape[1] >= 2 * w:
        sh, sw = src.shape[:2]
        if sh % h == 0 and sw % w == 0 and sh // h == sw // w:
            break  # an integer ratio: INTER_AREA's fast path does it in one go
        half_shape = (sh // 2, sw // 2) + src.shape[2:]
        half = scratch.get(half_shape)
        if half is None:
            half = scratch[half_shape] = np.empty(half_shape, src.dtype)
        cv2.resize(src, (half_shape[1], half_shape[0]), dst=half, interpolation=cv2.INTER_LINEAR)
        src = half
    cv2.resize(src, (w, h), dst=dst, interpolation=cv2.INTER_AREA)


class Segmenter:
    """Runs a segmentation model (vbg/models/) on a frame and returns P(person) on the model grid.

    The frame is fitted into the model's input keeping its aspect ratio (the rest is padded with
    mid-grey) and the probability is cropped back to the same region, so it maps onto the frame
    exactly. A portrait frame is shown to the model `PORTRAIT_WIDEN` times wider than it is (the
    probability is narrowed back to the grid): letterboxed, an upright person is a thin strip of the
    16:9 input, and widened the model finds their outline more surely (docs/quality.md).
    All buffers are allocated once per frame size.
    """

    PORTRAIT_WIDEN = 1.3

    def __init__(self, model_path: Path, model: SegmentationModel | ModelSpec, device: str = "auto",
                 threads: int = 0, keep_aspect: bool = True):
        import onnxruntime as ort

        if device not in DEVICES:
            raise VbgError(f"unknown device {device!r}: use one of {', '.join(DEVICES)}")
        if isinstance(model, ModelSpec):
            model = load_model(model.name)
        self.model = model
        self.spec = spec = model.spec
        self.keep_aspect = keep_aspect  # False stretches the frame (only the `raw` baseline of vbg eval)
        self.threads = threads or default_threads()
        self.session, self.provider_note = self._open(ort, model_path, device)
        self.provider = self.session.get_providers()[0]
        self._check_interface(model_path)

        _, c, h, w = spec.input_shape
        self.input = np.zeros((1, c, h, w), np.float32)
        self.output = np.zeros(spec.output_shape, np.float32)
        self.padded = np.full((h, w, 3), 128, np.uint8)
        self._binding = self.session.io_binding()
        self._binding.bind_cpu_input(spec.input_name, self.input)
        self._binding.bind_ortvalue_output(spec.output_name, ort.OrtValue.ortvalue_from_numpy(self.output))
        self._scratch: dict = {}
        self._frame_shape: tuple | None = None
        self._bars_covered = False  # a view (infer_view) filled the letterbox's bars
        self.grid = (h, w)  # the mask grid: rows, columns
        self.roi = (0, 0, w, h)  # x, y, w, h of the frame inside the model input (wider than the grid: widened)
        self._narrowed: np.ndarray | None = None  # a widened frame's probability, back on the grid

    def _open(self, ort, model_path: Path, device: str):
        def session(providers, quiet=False):
            so = ort.SessionOptions()
            so.intra_op_num_threads = self.threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # Spinning worker threads burn a core between frames: bad for laptops, no gain at this size.
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if quiet:
                so.log_severity_level = 4
            try:
                if quiet:
                    ort.set_default_logger_severity(4)
                return ort.InferenceSession(str(model_path), so, providers=providers)
            except Exception as e:  # onnxruntime raises several unrelated types for a bad file
                cached = Path(model_path) == self.spec.cached_path()
                fix = ("delete the file to download it again" if cached else
                       f"this file is not a usable {self.model.title} (ONNX): fetch it again, or choose another "
                       "with --model / $VBG_MODEL")
                raise VbgError(f"cannot load model {model_path}: {brief(e)} — {fix}") from None
            finally:
                if quiet:
                    ort.set_default_logger_severity(2)

        available = ort.get_available_providers()
        if device != "cpu" and CUDA in available:
            preload_cuda(ort)
        if device == "cpu":
            return session([CPU]), "CPU (asked for)"
        if device == "cuda":
            if CUDA not in available:
                raise VbgError("--device cuda: this onnxruntime has no CUDA provider: install onnxruntime-gpu, "
                               "or use --device cpu")
            s = session([CUDA, CPU])
            if CUDA not in s.get_providers():
                missing = cuda_library_missing(ort)
                why = (f"{missing} is missing: pip install 'vbg[cuda]' brings CUDA and cuDNN" if missing else
                       "is the NVIDIA driver installed?" if not nvidia_driver_present() else "see `vbg devices`")
                raise VbgError(f"--device cuda: onnxruntime could not start CUDA ({why}), or use --device cpu")
            return s, "CUDA (asked for)"
        if CUDA in available and nvidia_driver_present():
            s = session([CUDA, CPU], quiet=True)
            if CUDA in s.get_providers():
                return s, "CUDA (auto)"
            missing = cuda_library_missing(ort)
            return session([CPU]), ("CPU (auto: CUDA did not start: " +
                                    (f"{missing} missing; pip install 'vbg[cuda]')" if missing else "see `vbg devices`)"))
        reason = "no NVIDIA driver" if CUDA in available else "onnxruntime has no CUDA provider"
        return session([CPU]), f"CPU (auto: {reason})"

    def _check_interface(self, model_path: Path) -> None:
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        want_in, want_out = list(self.spec.input_shape), list(self.spec.output_shape)
        got_in = ins[0].shape if len(ins) == 1 else None
        got_out = outs[0].shape if outs else None
        if got_in != want_in or got_out != want_out or ins[0].name != self.spec.input_name \
                or outs[0].name != self.spec.output_name:
            raise VbgError(f"model {model_path} has input {got_in} and output {got_out}, expected {want_in} -> "
                           f"{want_out}: it is not the {self.model.title}")

    def fit(self, frame_h: int, frame_w: int) -> tuple[int, int]:
        """Sets up the letterbox for this frame size; returns the mask grid (rows, cols)."""
        if self._frame_shape != (frame_h, frame_w, self.keep_aspect, self.PORTRAIT_WIDEN):
            _, _, mh, mw = self.spec.input_shape
            scale = min(mw / frame_w, mh / frame_h)
            cw, ch = max(1, round(frame_w * scale)), max(1, round(frame_h * scale))
            if not self.keep_aspect:
                cw, ch = mw, mh
            vw = min(mw, round(cw * self.PORTRAIT_WIDEN)) if frame_h > frame_w else cw
            self.grid = (ch, cw)
            self.roi = ((mw - vw) // 2, (mh - ch) // 2, vw, ch)
            self._narrowed = np.empty((ch, cw), np.float32) if vw != cw else None
            self.padded[:] = 128
            self._frame_shape = (frame_h, frame_w, self.keep_aspect, self.PORTRAIT_WIDEN)
        return self.grid

    def preprocess(self, image: np.ndarray, small_out: np.ndarray) -> None:
        """Downscales `image` into `small_out` (the model grid, BGR uint8) and the letterboxed input."""
        x, y, vw, vh = self.roi
        area_resize(image, small_out, self._scratch)
        if self._bars_covered:
            self.padded[:] = 128
            self._bars_covered = False
        if self._narrowed is None:
            self.padded[y:y + vh, x:x + vw] = small_out
        else:
            cv2.resize(small_out, (vw, vh), dst=self.padded[y:y + vh, x:x + vw], interpolation=cv2.INTER_LINEAR)

    def infer_view(self, view: np.ndarray) -> np.ndarray:
        """Runs the model on `view` (a crop of the input's shape, give or take a pixel) stretched over
        the whole input; returns P(person) over it (valid until the next run)."""
        area_resize(view, self.padded, self._scratch)
        self._bars_covered = True
        self.model.write_input(self.padded, self.input)
        self.session.run_with_iobinding(self._binding)
        return self.model.person(self.output)

    def infer(self) -> np.ndarray:
        """Runs the model on the prepared frame; returns P(person) over the frame's region (a view that
        stays valid, unchanged, until the next call)."""
        self.model.write_input(self.padded, self.input)
        self.session.run_with_iobinding(self._binding)
        x, y, vw, vh = self.roi
        prob = self.model.person(self.output)[y:y + vh, x:x + vw]
        if self._narrowed is None:
            return prob
        cv2.resize(prob, self._narrowed.shape[::-1], dst=self._narrowed, interpolation=cv2.INTER_AREA)
        return self._narrowed
