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
    aliases: tuple[str, ...] = ()   # shorter names `--model` takes

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


def _registered() -> dict[str, type[SegmentationModel]]:
    if not MODELS:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
    return MODELS


def known(name: str) -> type[SegmentationModel] | None:
    """The model a name or alias means, or None."""
    return next((cls for cls in _registered().values() if name in (cls.name, *cls.aliases)), None)


def names() -> list[str]:
    """What `--model NAME` takes: each model's shortest name."""
    return sorted(min((cls.name, *cls.aliases), key=len) for cls in _registered().values())


def load_model(name: str = DEFAULT_MODEL) -> SegmentationModel:
    cls = known(name)
    if cls is None:
        raise VbgError(f"unknown model {name!r}: vbg knows {', '.join(names())}")
    return cls(ModelSpec.load(cls.name))


def choose_model(value: str | None) -> tuple[SegmentationModel, str | None]:
    """`--model NAME|PATH` (or the saved setting): the model, and the file given for it, if one was. A
    name finds the file itself (the cache, or a download); a path is taken as the default model's file,
    its interface checked when it loads."""
    if value and known(value) is not None:
        return load_model(value), None
    return load_model(), value or None
