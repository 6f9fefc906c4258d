"""Fine-tuning: a recipe's model initialised from a checkpoint (``model.init``, ``zoo train --init-from``).

The parent checkpoint is any name :func:`zoo.create_model` takes (a published ``arch.tag``, a
checkpoint folder, ``hf-hub:owner/repo[@revision]``) and is read through the same verified path:
every file pinned by the registry where it is published, else by the sha256 its config records.
Its weights go into the recipe's model by name:

- a weight whose name, shape and dtype match is copied;
- the classifier (``head.fc.*``) starts fresh when ``new_classifier`` asks for it (a new task) or
  its shape differs (another number of classes), and so do the parameters and buffers of the neurons or ANN activations when the
  recipe's neuron has others (e.g. a QCFS twin's thresholds do not exist in its IF network); the
  recipe's T may differ freely, as T changes no weight;
- any other weight missing from the parent, or of another shape, is an error: the recipe's
  architecture is not the parent's, and a fine-tune would silently start half from scratch.

``freeze`` lists glob patterns of parameter names (``fnmatch``: ``"stem.*"``, ``"layers.0.*"``)
whose parameters keep the parent's values (``requires_grad = False``); a pattern that matches no
parameter is an error. BatchNorm running statistics of frozen layers still follow the new data
in training mode. What was copied, started fresh, left unused and frozen is the lineage that the
checkpoint's config records (``metrics.lineage``) and its model card shows; ``zoo train`` adds the
parent's earlier training time and, unless the classifier starts fresh, the parent's weights'
test top-1 as the recipe runs them (``before_training``, :mod:`zoo.train.loop`).
"""

from __future__ import annotations

import fnmatch
from typing import Any

import torch
from torch import nn

from ..checkpoint import decode_tensors, read_checkpoint
from ..hub import resolve_checkpoint
from ..layers import ANN_ACTIVATIONS
from ..neurons import Neuron
from .recipe import Init, RecipeError

CLASSIFIER = "head.fc."


def initialise(model: nn.Module, init: Init, source: str) -> dict[str, Any]:
    """Copy the parent checkpoint's weights into ``model`` and freeze what ``init.freeze`` names;
    returns the lineage (see the module docstring)."""
    try:
        folder, pins = resolve_checkpoint(init.checkpoint)
        files = read_checkpoint(folder, pins)
    except (ValueError, OSError) as error:  # an unknown name; a checkpoint missing, unreadable or not verified
        raise RecipeError(f"{source}: field 'model.init.checkpoint': {' '.join(str(error).split())}") from None
    parent = decode_tensors(files.weights, files.header, files.weights_path)
    if init.new_classifier:
        parent = {key: value for key, value in parent.items() if not key.startswith(CLASSIFIER)}
    fresh_allowed = activation_keys(model) | {key for key in model.state_dict() if key.startswith(CLASSIFIER)}
    copied, fresh = copy_matching(model, parent)
    refused = sorted(set(fresh) - fresh_allowed)
    if refused:
        raise RecipeError(f"{source}: field 'model.init.checkpoint': {init.checkpoint!r} ({files.config.architecture}) "
                          f"has no weight of the right shape for {_short(refused)}; model.arch must be the parent's "
                          "architecture (only the classifier and the neurons' own parameters may start fresh)")
    frozen = freeze(model, init.freeze, source)
    return {
        "checkpoint": init.checkpoint,
        "name": files.config.name,
        "weights_sha256": files.config.weights_sha256,
        "pinned_by": pins.source if pins is not None else "its own config",
        "copied": len(copied),
        "fresh": sorted(fresh),
        "not_used": sorted(set(files.header) - set(copied)),
        "frozen": frozen,
        "earlier_train_time_s": files.config.chain_train_time_s,  # the parent's chain; None: not recorded
    }


def activation_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the neurons and ANN activations (thresholds, leaks, QCFS lambdas)."""
    kinds = (Neuron, *ANN_ACTIVATIONS.values())
    return {f"{prefix}.{key}" for prefix, module in model.named_modules() if isinstance(module, kinds)
            for key in module.state_dict()}


def copy_matching(model: nn.Module, parent: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Copy every tensor of ``parent`` whose key, shape and dtype match one of ``model``'s state;
    returns (copied keys, keys of ``model`` left as they were)."""
    state = model.state_dict()
    copied = [key for key, value in state.items() if key in parent and parent[key].shape == value.shape
              and parent[key].dtype == value.dtype]
    with torch.no_grad():
        for key in copied:
            state[key].copy_(parent[key])
    return copied, [key for key in state if key not in copied]


def freeze(model: nn.Module, patterns: list[str], source: str) -> list[str]:
    """Set ``requires_grad = False`` on the parameters matching any of ``patterns``; returns their names."""
    names = [name for name, _ in model.named_parameters()]
    for pattern in patterns:
        if not fnmatch.filter(names, pattern):
            raise RecipeError(f"{source}: field 'model.init.freeze': {pattern!r} matches no parameter of the model "
                              f"(names look like {', '.join(names[:3])})")
    frozen = [name for name in names if any(fnmatch.fnmatchcase(name, p) for p in patterns)]
    for name, parameter in model.named_parameters():
        if name in frozen:
            parameter.requires_grad_(False)
    return frozen


def _short(keys: list[str], limit: int = 6) -> str:
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


