"""Segmentation models: each is one module here with a `SegmentationModel` subclass, plus its manifest
(file, URL, sha256, tensor shapes) in the top-level `models/` folder. The runner (vbg/matting/segment.py) does
the rest: the onnxruntime session, the letterbox, the buffers. Adding a model is one file here."""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np

from vbg.errors import VbgError
from vbg.model import DEFAULT_MODEL, ModelSpec


class SegmentationModel:
    """How frames go into one network and P(person) comes out of it."""

    name: str = ""          # the manifest's name (models/NAME.json)
    title: str = ""         # what users call it, in messages

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def write_input(self, padded_bgr: np.ndarray, tensor: np.ndarray) -> None:
        """The letterboxed BGR uint8 image (model size) into the bound input tensor."""
        raise NotImplementedError

    def person(self, output: np.ndarray) -> np.ndarray:
        """P(person) over the whole model grid, float32 (a view into `output` is fine)."""
        raise NotImplementedError


MODELS: dict[str, type[SegmentationModel]] = {}


def register(cls: type[SegmentationModel]) -> type[SegmentationModel]:
    MODELS[cls.name] = cls
    return cls


def load_model(name: str = DEFAULT_MODEL) -> SegmentationModel:
    if not MODELS:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
    if name not in MODELS:
        raise VbgError(f"unknown model {name!r}: vbg knows {', '.join(sorted(MODELS))}")
    return MODELS[name](ModelSpec.load(name))
