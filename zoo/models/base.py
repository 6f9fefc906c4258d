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
  statistics (``zoo.neurons.record_firing(model)`` finds the same ones).

An ANN twin (QCFS activations) keeps the same contract; its activations have no state over time,
so its default ``T = 1`` gives ``forward_timesteps(x)`` of shape ``[1, B, num_classes]``.

Subclasses build their layers with :meth:`act` (a fresh activation module from ``neuron_spec``)
and implement :meth:`forward_seq` on the time-first input.
"""

from __future__ import annotations

import copy
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from ..layers import create_act, encode_input
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

    def forward_seq(self, x: torch.Tensor) -> torch.Tensor:
        """Time-first input ``[T, B, C, H, W]`` -> per-step logits ``[T, B, num_classes]``."""
        raise NotImplementedError

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

    def extra_repr(self) -> str:
        return f"T={self.T}, neuron={self.neuron_spec['name']!r}"


def build_model(cls: type[SpikingModel], kwargs: dict[str, Any], **defaults: Any) -> SpikingModel:
    """``cls(**defaults)`` with the user's ``kwargs`` taking precedence: what each registered entry
    point calls, so that ``create_model(arch, **model.arch_kwargs)`` rebuilds the same graph."""
    return cls(**{**defaults, **kwargs})
