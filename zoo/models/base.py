"""The contract every zoo architecture keeps, implemented once.

A zoo model is a plain ``nn.Module`` (timm's optimisers and schedulers take it as it is) with:

- constructor kwargs ``num_classes``, ``in_chans``, ``T`` (default time steps), ``neuron`` (a spec
  string or dict, :mod:`zoo.neurons`; an ANN twin passes an ANN activation spec such as
  ``"qcfs"``, see :mod:`zoo.layers.act`), ``backend`` (the neurons' backend; it never changes
  results and is not part of the config) and ``img_size`` (the default input's H, W);
- attributes ``num_classes``, ``in_chans``, ``T`` (settable: sweeping T evaluates the same
  weights at other latencies), ``neuron_spec`` (the normalised dict spec), ``default_input_size``
  ``(C, H, W)`` and ``arch_kwargs``: a JSON-able dict from which
  ``zoo.create_model(arch, **model.arch_kwargs)`` rebuilds the same graph;
- ``forward_timesteps(x) -> [T, B, num_classes]`` per-step logits (for the TET loss) and
  ``forward(x) -> [B, num_classes]``, their mean over T. ``x`` is a static image ``[B, C, H, W]``
  (direct encoding: the same image at each of ``model.T`` steps) or event frames
  ``[T, B, C, H, W]``, or one frame ``[1, B, C, H, W]`` repeated at each step (a stateless
  ``T = 1`` network takes any number of frames, one per step; see :mod:`zoo.layers.encoding`);
- ``neurons()`` / ``named_neurons()``: the :class:`zoo.neurons.Neuron` modules, for firing
  statistics (``zoo.neurons.record_firing(model)`` finds the same ones);
- timm's classifier API, with time kept first: ``forward_features(x) -> [T, B, C, H, W]`` (the
  last feature map at every step), ``forward_head(features, pre_logits=False) -> [B, ...]``
  (pool, readout, mean over T; so ``forward_head(forward_features(x)) == forward(x)``),
  ``num_features`` (C), ``head_hidden_size`` (the pre-logits' width), ``get_classifier()``,
  ``reset_classifier(num_classes)`` (``0`` removes it), ``group_matcher()`` for layer-wise lr
  decay and ``no_weight_decay()`` (the neurons' own parameters: thresholds, leaks, QCFS lambdas);
- ``pretrained_cfg`` (also ``default_cfg``): the dict timm's ``resolve_data_config`` reads
  (input size, mean, std, interpolation, crop, num_classes, first conv, classifier), taken from
  ``checkpoint_config``, the full :class:`zoo.config.CheckpointConfig` of loaded weights (None for
  a model with random weights, whose mean 0 / std 1 say "no normalisation known").

An ANN twin (QCFS activations) keeps the same contract; its activations have no state over time,
so its default ``T = 1`` gives ``forward_timesteps(x)`` of shape ``[1, B, num_classes]``.

Subclasses build their layers with :meth:`act` (a fresh activation module from ``neuron_spec``),
end in a :class:`zoo.layers.Readout` named ``head``, implement :meth:`forward_features_seq` on the
time-first input and name their parameter groups in :meth:`group_matcher`.
"""

from __future__ import annotations

import copy
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from ..layers import ANN_ACTIVATIONS, create_act, encode_input
from ..neurons import Neuron


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _pair(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


class SpikingModel(nn.Module):
    """Base class of the zoo's architectures; see the module docstring for the contract."""

    input_size_fixed: bool = False  # True where the graph only takes ``img_size`` inputs (flatten -> FC)
    global_pool: str = "avg"  # how forward_head pools the feature map: "avg" or "flatten"
    first_conv: str = ""  # the first conv's module name (timm's pretrained_cfg["first_conv"])
    checkpoint_config: Any = None  # the zoo.config.CheckpointConfig of loaded weights
    num_features: int  # channels of the last feature map, set by each family

    def __init__(
        self,
        *,
        num_classes: int,
        in_chans: int,
        T: int,
        neuron: str | Mapping[str, Any],
        backend: str = "auto",
        img_size: int | tuple[int, int] = 32,
        **arch: Any,
    ) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.in_chans = int(in_chans)
        self.T = T
        self.backend = backend
        self.neuron_spec = create_act(neuron, backend=backend).spec()
        self.img_size = _jsonable(img_size)
        self.default_input_size = (self.in_chans, *_pair(img_size))
        self._arch = _jsonable(arch)

    # -- contract ------------------------------------------------------------------------------
    @property
    def T(self) -> int:
        return self._T

    @T.setter
    def T(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"T (time steps) must be a positive integer, got {value!r}")
        self._T = value

    @property
    def arch_kwargs(self) -> dict[str, Any]:
        """JSON-able kwargs that rebuild this graph: ``create_model(arch, **model.arch_kwargs)``."""
        return {
            "num_classes": self.num_classes,
            "in_chans": self.in_chans,
            "T": self.T,
            "neuron": copy.deepcopy(self.neuron_spec),
            "img_size": copy.deepcopy(self.img_size),
            **copy.deepcopy(self._arch),
        }

    def act(self, **overrides: Any) -> nn.Module:
        """A fresh activation module (neuron or ANN activation) from ``neuron_spec``."""
        return create_act(self.neuron_spec, backend=self.backend, **overrides)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Time-first input ``[T, B, C, H, W]``: direct encoding or event frames (module
        :mod:`zoo.layers.encoding`; a network without spiking neurons is stateless)."""
        size = self.default_input_size[1:] if self.input_size_fixed else None
        stateless = self.T == 1 and next(self.neurons(), None) is None
        return encode_input(x, self.T, self.in_chans, size, owner=type(self).__name__, stateless=stateless)

    def forward_features_seq(self, x: torch.Tensor) -> torch.Tensor:
        """Time-first input ``[T, B, C, H, W]`` -> the last feature map ``[T, B, C', H', W']``."""
        raise NotImplementedError

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W]`` -> ``[T, B, F]``: global average pooling, or flattening."""
        return features.flatten(2) if self.global_pool == "flatten" else features.mean(dim=(-2, -1))

    def forward_seq(self, x: torch.Tensor) -> torch.Tensor:
        """Time-first input ``[T, B, C, H, W]`` -> per-step logits ``[T, B, num_classes]``."""
        return self.head(self.pool(self.forward_features_seq(x)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map at every step, ``[T, B, C, H, W]``, of an input ``forward`` takes."""
        return self.forward_features_seq(self.encode(x))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Logits (or, with ``pre_logits``, what the classifier reads) of ``forward_features``'
        output, averaged over T: ``[B, num_classes]`` or ``[B, head_hidden_size]``."""
        pooled = self.pool(features)
        return (self.head.pre_logits(pooled) if pre_logits else self.head(pooled)).mean(0)

    def forward_timesteps(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step logits ``[T, B, num_classes]`` (T = ``model.T``, or the frame count of event
        frames given to a stateless T = 1 network)."""
        return self.forward_seq(self.encode(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits averaged over time, ``[B, num_classes]``."""
        return self.forward_timesteps(x).mean(0)

    def named_neurons(self) -> Iterator[tuple[str, Neuron]]:
        for name, module in self.named_modules():
            if isinstance(module, Neuron):
                yield name, module

    def neurons(self) -> Iterator[Neuron]:
        for _, module in self.named_neurons():
            yield module

    # -- timm's classifier API ------------------------------------------------------------------
    @property
    def head_hidden_size(self) -> int:
        """Width of the pre-logits (``forward_head(..., pre_logits=True)``)."""
        return self.head.pre_logits_size

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new, freshly initialised classifier for ``num_classes`` (0: none, forward then gives the
        pre-logits); the rest of the network keeps its weights. ``arch_kwargs`` follow."""
        if global_pool not in (None, self.global_pool):
            raise ValueError(f"{type(self).__name__} pools its features by {self.global_pool!r}; "
                             f"global_pool={global_pool!r} is not available")
        self.head.fc = self.head.classifier(num_classes)
        self.num_classes = num_classes

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """timm's parameter groups (stem, then blocks in depth order; the head comes last), used by
        ``timm.optim.create_optimizer_v2(model, layer_decay=...)``."""
        raise NotImplementedError

    def no_weight_decay(self) -> set[str]:
        """Parameters of the neurons and ANN activations (thresholds, leaks, QCFS lambdas): the
        dynamics of a spiking unit, not weights, kept out of weight decay."""
        activations = (Neuron, *ANN_ACTIVATIONS.values())
        return {f"{prefix}.{name}" if prefix else name
                for prefix, module in self.named_modules() if isinstance(module, activations)
                for name, _ in module.named_parameters()}

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """timm's data and model config: what ``timm.data.resolve_data_config`` and
        ``create_transform`` read, from ``checkpoint_config`` when weights were loaded."""
        config = self.checkpoint_config
        channels = self.in_chans
        mean = tuple(config.input.mean) if config is not None and config.input.mean else (0.0,) * channels
        std = tuple(config.input.std) if config is not None and config.input.std else (1.0,) * channels
        cfg = {
            "architecture": config.architecture if config is not None else None,
            "tag": config.name.partition(".")[2] if config is not None else None,
            "input_size": tuple(config.input.size) if config is not None else tuple(self.default_input_size),
            "fixed_input_size": self.input_size_fixed,
            "interpolation": "bilinear",
            "crop_pct": 1.0,
            "crop_mode": "center",
            "mean": mean,
            "std": std,
            "num_classes": self.num_classes,
            "first_conv": self.first_conv,
            "classifier": "head.fc",
            "encoding": config.input.encoding if config is not None else "direct",
        }
        return cfg

    @property
    def default_cfg(self) -> dict[str, Any]:
        return self.pretrained_cfg

    def transforms(self) -> Any:
        """The input transform the loaded checkpoint was evaluated with (:mod:`zoo.transforms`)."""
        from ..transforms import create_transform

        return create_transform(self)

    def save_pretrained(self, folder: Any, **kwargs: Any) -> Any:
        """Write this model as the checkpoint folder ``zoo publish`` assembles (model.safetensors,
        config.json, README.md): :func:`zoo.sharing.save_pretrained` (``name``, ``config``, ``repo_id``)."""
        from ..sharing import save_pretrained

        return save_pretrained(self, folder, **kwargs)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload this model as the Hub repository ``repo_id``; returns the commit id:
        :func:`zoo.sharing.push_to_hub` (``token``, ``revision``, ``private``, ``commit_message``,
        ``name``, ``config``)."""
        from ..sharing import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    def extra_repr(self) -> str:
        return f"T={self.T}, neuron={self.neuron_spec['name']!r}"


def build_model(cls: type[SpikingModel], kwargs: dict[str, Any], **defaults: Any) -> SpikingModel:
    """``cls(**defaults)`` with the user's ``kwargs`` taking precedence: what each registered entry
    point calls, so that ``create_model(arch, **model.arch_kwargs)`` rebuilds the same graph."""
    return cls(**{**defaults, **kwargs})
