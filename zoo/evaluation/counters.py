"""Synaptic operation counts of one forward pass: accumulates (ACs, the SOPs) and multiply-accumulates
(MACs) of every ``nn.Conv{1,2,3}d`` and ``nn.Linear``, recorded by forward hooks.

Conventions (methods.md section 5; the MLF and InfLoR papers count the same way):

* **ACs (SOPs)** of a layer fed by spikes = the exact number of (non-zero input, synapse) pairs,
  i.e. the sum over output elements of the non-zero inputs in their receptive field. For a
  ``Linear`` that is ``nnz(x) * out_features``. For a convolution it is computed exactly as the
  convolution of the indicator ``1[x != 0]`` with an all-ones kernel of the layer's geometry
  (stride, padding and padding mode, dilation, groups), summed and multiplied by the output
  channels per group: an event near an edge, or skipped by the stride, reaches fewer synapses than
  the nominal fan-out ``C_out * k * k``, which ``nnz * fan-out`` would overcount.
* A non-zero input is **one event whatever its value**: a multi-level MLF output (1..K), a
  multi-bit spike (one accumulate, the fixed-point scale being a shift; methods.md section 3), a
  sum of spikes passed between DS-ResNet blocks, an average-pooled spike map, an event-frame pixel
  holding several events. Inputs are counted as the layer receives them (after pooling). The
  firing statistics report the mean value per event beside the count.
* **MACs** of a layer fed by analog values = output elements x fan-in (``C_in / groups * k * k``
  or ``in_features``), padded positions included, as dense hardware computes them (the
  fvcore/thop convention). Bias additions are not counted.
* Which layers are analog: the first synaptic layer to run, when the network input is an analog
  image (direct encoding, the image repeated T times: its MACs are counted at every step, as the
  T-step network computes them); event frames are events, so their first layer counts ACs. A
  network without spiking neurons (an ANN twin with quantised activations) is dense: every layer
  counts MACs.
* A first layer run once for T identical steps (direct encoding, or one event frame repeated:
  :func:`zoo.layers.time.fold` runs it on one step and copies the result) is counted T times, as
  the T-step network computes it: the fold is how the zoo runs the network, not part of it. The
  counter sees this when the first layer's input holds B samples, the network input's batch,
  rather than T x B. (NeuroBench counts the call that ran, once: :mod:`zoo.evaluation.neurobench`.)
* Time is folded into the batch for these layers (``[T*B, ...]``): counts are totals over all
  steps and samples of the pass; divide by the number of samples for per-sample figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.neurons import Neuron

SYNAPTIC = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def fan_in(layer: nn.Module) -> int:
    """Inputs summed into one output element (bias aside)."""
    if isinstance(layer, nn.Linear):
        return layer.in_features
    return layer.in_channels // layer.groups * math.prod(layer.kernel_size)


@torch.no_grad()
def synaptic_events(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The exact number of (non-zero input, synapse) pairs of ``layer`` on input ``x`` (a 0-dim
    float64 tensor on ``x``'s device, so counting adds no host synchronisation).

    The all-ones convolution of the 0/1 indicator runs in float32 (TF32 included: 0 and 1 are
    exact, and each output is an integer below 2^24), and its sum in float64, so the count is exact.
    """
    if isinstance(layer, nn.Linear):
        return torch.count_nonzero(x).to(torch.float64) * layer.out_features
    events = (x != 0).to(torch.float32)
    ones = events.new_ones(layer.groups, layer.in_channels // layer.groups, *layer.kernel_size)
    padding = layer.padding
    if layer.padding_mode != "zeros":  # reflected/replicated/circular copies of events are events too
        events = F.pad(events, layer._reversed_padding_repeated_twice, mode=layer.padding_mode)
        padding = 0
    reach = _CONV[len(layer.kernel_size)](events, ones, None, layer.stride, padding, layer.dilation, layer.groups)
    return reach.sum(dtype=torch.float64) * (layer.out_channels // layer.groups)


@dataclass
class LayerOps:
    """Operations of one synaptic layer, summed over the calls seen."""

    fan_in: int
    macs: int = 0
    _acs: torch.Tensor | float = 0.0
    _input_events: torch.Tensor | int = 0
    input_elements: int = 0

    @property
    def acs(self) -> int:
        return int(round(float(self._acs)))

    @property
    def input_events(self) -> int:
        return int(self._input_events)


class OperationCounter:
    """Counts ACs and MACs of ``model``'s synaptic layers while used as a context manager.

    >>> with OperationCounter(model, analog_input=True) as ops:
    ...     model(x)
    >>> ops.acs, ops.macs          # totals over the pass(es); see the module docstring

    ``analog_input``: the network input is an analog image (direct encoding) rather than events.
    """

    def __init__(self, model: nn.Module, analog_input: bool = True) -> None:
        self.analog_input = analog_input
        self.dense = not any(isinstance(m, Neuron) for m in model.modules())
        self._synaptic = {name: m for name, m in model.named_modules() if isinstance(m, SYNAPTIC)}
        self.layers = {name: LayerOps(fan_in(m)) for name, m in self._synaptic.items()}
        self.first: str | None = None  # the layer that received the network input
        self._model = model
        self._batch: int | None = None  # samples in the network input of the running call
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> "OperationCounter":
        self._handles = [self._model.register_forward_pre_hook(self._on_input)]
        self._handles += [m.register_forward_hook(self._hook(name)) for name, m in self._synaptic.items()]
        return self

    def _on_input(self, _model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        """The batch size of the network input: ``[B, C, H, W]`` images, ``[T, B, ...]`` frames."""
        x = inputs[0] if inputs else None
        self._batch = None if not isinstance(x, torch.Tensor) else x.shape[1] if x.dim() == 5 else x.shape[0]

    def _repeats(self, name: str, x: torch.Tensor) -> int:
        """T where the first layer ran once for T identical steps (its input holds the network
        input's B samples, not T x B), else 1."""
        T = getattr(self._model, "T", 1)
        return T if name == self.first and T > 1 and x.shape[0] == self._batch else 1

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            if self.first is None:
                self.first = name
            x, layer = inputs[0], self.layers[name]
            analog = self.dense or (self.analog_input and name == self.first)
            repeats = self._repeats(name, x)
            with torch.no_grad():
                if analog:
                    layer.macs += output.numel() * layer.fan_in * repeats
                else:
                    layer._acs = layer._acs + synaptic_events(module, x) * repeats
                layer._input_events = layer._input_events + torch.count_nonzero(x) * repeats
            layer.input_elements += x.numel() * repeats

        return hook

    @property
    def acs(self) -> int:
        return sum(layer.acs for layer in self.layers.values())

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers.values())

    def counts(self) -> dict[str, dict[str, int]]:
        """Per layer (module order), plain summable numbers: JSON-ready, added up over batches."""
        return {name: {"acs": layer.acs, "macs": layer.macs, "input_events": layer.input_events,
                       "input_elements": layer.input_elements}
                for name, layer in self.layers.items()}


def layer_summary(model: nn.Module, counts: dict[str, dict[str, int]], samples: int) -> list[dict[str, Any]]:
    """One entry per synaptic layer (module order) from ``counts`` summed over ``samples``
    samples: its input kind (a layer with MACs was fed analog values), operations per sample and
    the fraction of its inputs that were non-zero."""
    modules = dict(model.named_modules())
    return [{"name": name, "kind": type(modules[name]).__name__, "fan_in": fan_in(modules[name]),
             "input": "analog" if c["macs"] else "events",
             "acs_per_sample": c["acs"] / samples, "macs_per_sample": c["macs"] / samples,
             "input_event_rate": c["input_events"] / c["input_elements"] if c["input_elements"] else 0.0}
            for name, c in counts.items()]
