"""Firing statistics that any neuron records on request, for the evaluation harness.

Recording is off by default: a neuron's forward pass then only checks ``self.stats is None``.
Counts stay on the tensor's device until read, so recording adds no host synchronisation.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn


@dataclass
class FiringStats:
    """Events and their values seen at one neuron layer.

    An event is a non-zero output (a spike, a multi-level or multi-bit value). ``elements`` counts
    neuron-steps (neurons x batch x T), so ``firing_rate = events / elements`` and
    ``mean_event_value = value_sum / events`` (1 for binary spikes, up to K for MLF).
    """

    steps: int = 0
    neurons: int = 0  # per sample, per step
    samples: int = 0
    _events: torch.Tensor | int = 0
    _value_sum: torch.Tensor | float = 0.0
    shape: tuple[int, ...] = field(default_factory=tuple)

    @torch.no_grad()
    def update(self, out: torch.Tensor) -> None:
        self.steps = out.shape[0]
        self.shape = tuple(out.shape[2:])
        self.neurons = out[0, 0].numel()
        self.samples += out.shape[1]
        self._events = self._events + torch.count_nonzero(out)
        self._value_sum = self._value_sum + out.sum(dtype=torch.float64)

    @property
    def events(self) -> int:
        return int(self._events)

    @property
    def value_sum(self) -> float:
        return float(self._value_sum)

    @property
    def elements(self) -> int:
        return self.steps * self.neurons * self.samples

    @property
    def firing_rate(self) -> float:
        return self.events / self.elements if self.elements else 0.0

    @property
    def mean_event_value(self) -> float:
        return self.value_sum / self.events if self.events else 0.0


@contextlib.contextmanager
def record_firing(model: nn.Module) -> Iterator[dict[str, FiringStats]]:
    """Record firing statistics of every neuron in ``model`` while the block runs.

    >>> with record_firing(net) as stats:
    ...     net(x)
    >>> {name: s.firing_rate for name, s in stats.items()}
    """
    from .base import Neuron

    neurons = {name: m for name, m in model.named_modules() if isinstance(m, Neuron)}
    stats = {name: FiringStats() for name in neurons}
    for name, module in neurons.items():
        module.stats = stats[name]
    try:
        yield stats
    finally:
        for module in neurons.values():
            module.stats = None
