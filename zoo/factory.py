"""``create_model``: the one door to every model the zoo builds, above the registry and the Hub code.

As timm's factory does, this module combines the two layers below it and neither imports it: the
registry (:mod:`zoo.registry`) knows names and entry points, the Hub code (:mod:`zoo.hub`) finds
checkpoint files and the pins that verify them, the checkpoint code (:mod:`zoo.checkpoint`) reads
and verifies them. ``name`` is one of

- ``arch``: a registered architecture with random weights (kwargs override its defaults);
- ``arch.tag``: a published checkpoint; ``pretrained=True`` loads its weights, every file it reads
  pinned by the registry; without it, the checkpoint's graph with random weights;
- a checkpoint folder (a ``Path``, or a string with a path separator): a checkpoint of one's own,
  e.g. a fine-tuned one, verified by the sha256 its config records;
- ``hf-hub:owner/repo[@revision]``: a checkpoint repository on the Hugging Face Hub (``HF_ENDPOINT``,
  the cache and ``HF_HUB_OFFLINE`` honoured), verified by its own config as a folder is.

Loaded weights always go through the same sha256-verified path. ``num_classes`` with
``pretrained=True`` that differs from the checkpoint's loads every weight but the classifier (all
verified) and initialises a new classifier, logging the keys it left out, as timm does when it
adapts a pretrained head. Other kwargs (``T``, ``backend``) change architecture arguments; ones
that change the weights' shapes fail loading with the keys named.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from torch import nn

from .checkpoint import CONFIG, CheckpointError, build_model, load_checkpoint, read_config
from .hub import HF_HUB_PREFIX, resolve_checkpoint
from .registry import model_entrypoint, split_name

_log = logging.getLogger("zoo")


def is_registry_name(name: str | os.PathLike) -> bool:
    """A name the registry resolves (``arch`` or ``arch.tag``), not a path or a Hub id."""
    return isinstance(name, str) and not name.startswith(HF_HUB_PREFIX) and os.sep not in name and "/" not in name


def create_model(name: str | os.PathLike, pretrained: bool = False, *, cache_dir: str | Path | None = None,
                 **kwargs: Any) -> nn.Module:
    """Build ``name`` (see the module docstring); with ``pretrained`` load its SNN-trained weights.

    ``cache_dir``: the Hugging Face cache for downloads (default ``HF_HOME``'s)."""
    if is_registry_name(name):
        arch, tag = split_name(name)
        entrypoint = model_entrypoint(arch)  # an unknown name fails here, with suggestions
        if tag is None and not pretrained:
            return entrypoint(**kwargs)
    folder, pins = resolve_checkpoint(name, cache_dir)
    if not pretrained:
        return build_model(read_config(folder, pins), folder / CONFIG, kwargs)
    num_classes = kwargs.pop("num_classes", None)
    model = load_checkpoint(folder, sha256=pins, **kwargs)
    if pins is not None and model.checkpoint_config.architecture != split_name(str(name))[0]:
        raise CheckpointError(f"{folder / CONFIG}: describes {model.checkpoint_config.architecture!r}, "
                              f"not {split_name(str(name))[0]!r}")
    if num_classes is not None and num_classes != model.num_classes:
        adapt_classifier(model, num_classes, str(name))
    return model


def adapt_classifier(model: nn.Module, num_classes: int, source: str) -> None:
    """Give a loaded model a new classifier for ``num_classes`` (``reset_classifier``), saying
    which of the checkpoint's weights were left out."""
    trained = model.num_classes
    left_out = [f"head.fc.{key} {list(value.shape)}" for key, value in model.get_classifier().state_dict().items()]
    model.reset_classifier(num_classes)
    _log.warning("%s: new classifier head.fc for %d classes; the checkpoint's %d-class classifier (%s) was not "
                 "loaded", source, num_classes, trained, ", ".join(left_out) or "none")
