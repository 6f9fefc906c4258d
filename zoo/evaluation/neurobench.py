"""NeuroBench's metrics under their names and definitions, beside the zoo's own SOPs and energy.

NeuroBench (Yik et al., "The neurobench framework for benchmarking neuromorphic computing algorithms
and systems", Nature Communications 16, 1545, 2025; the ``neurobench`` package, version 2.3.0 read
here) defines the metrics below. Each is computed as that package computes it for the same model
wrapped as ``TorchModel(model)`` with the zoo's neuron class added as an activation module (as its
``SNNTorchModel`` adds snnTorch's ``SpikingNeuron``); ``tests/test_neurobench.py`` runs the package
on a shipped checkpoint and real data and compares. Record keys are NeuroBench's result names.

Static metrics, of the weights:

* ``Footprint`` (``metrics.static.Footprint``): bytes of every parameter and buffer,
  ``numel x element_size``.
* ``ConnectionSparsity`` (``metrics.static.ConnectionSparsity``): zero weights / all weights of the
  ``Linear`` and ``Conv{1,2,3}d`` layers (biases and other layers left out). NeuroBench rounds it to
  4 decimals; the record keeps it unrounded.

Workload metrics, over the evaluated samples:

* ``ActivationSparsity`` (``metrics.workload.ActivationSparsity``): 1 - non-zero outputs / all
  outputs of the activation layers, over all layers, time steps and samples. Activation layers are
  the outermost modules that are ``nn.ReLU``, ``nn.Sigmoid`` or a zoo neuron (found through
  ``named_children`` as ``NeuroBenchModel.activation_layers`` finds them). For a spiking network it
  is 1 - the zoo's firing rate.
* ``SynapticOperations`` (``metrics.workload.SynapticOperations``), per sample: for every call of a
  ``Linear`` or ``Conv`` layer, its input and weights are binarised (non-zero -> 1) and the layer
  is run without bias; the sum of the output is the number of (non-zero input, non-zero weight)
  pairs. The call counts as ``Effective_ACs`` when every input value is -1, 0 or 1 ("spiking"),
  else as ``Effective_MACs``. ``Dense`` is the same count with every input and weight set to 1:
  the connections within bounds (zero padding is no operation).
* ``MembraneUpdates`` (``metrics.workload.MembraneUpdates``), per sample: every neuron's membrane
  at the first step, then, at each later step, each neuron whose membrane changed. NeuroBench's
  hooks read snnTorch's ``mem`` after each one-step call; a zoo neuron runs all T steps in one
  call, so the zoo replays each neuron layer's dynamics on the input it received
  (:func:`zoo.neurons.backends.fused.forward_steps`, the same float32 recurrence the neuron ran)
  and counts the same on its membrane ``h[t]`` (the potential compared with the threshold, which is
  snnTorch's ``mem`` after a step). An MLF neuron has K membranes, one per level; each is counted.
  The package itself reports 0 for the zoo's neurons (it reads ``mem`` of snnTorch neurons only):
  this figure is its definition applied, checked against the package on an snnTorch ``Leaky`` and
  the equivalent zoo LIF.

Where NeuroBench and the zoo's own counts (:mod:`zoo.evaluation.counters`) differ:

1. **A multi-level spike is a multiply in NeuroBench.** An input holding any value other than -1,
   0, 1 (MLF's 1..K, multi-bit values, spikes of amplitude V_th != 1, DS-ResNet's summed spike maps,
   average-pooled spikes, event frames counting several events) makes the layer's operations
   ``Effective_MACs``; the zoo counts one AC (a SOP) per (non-zero input, synapse) whatever the
   value, the fixed-point scale being a shift.
2. **Zero weights.** NeuroBench skips synapses of weight 0; the zoo counts every synapse. They agree
   when ``ConnectionSparsity`` is 0.
3. **The first layer on an analog image.** The zoo counts dense MACs (output elements x fan-in,
   padded positions included, as dense hardware computes them); NeuroBench counts effective MACs:
   non-zero pixels x non-zero weights within bounds.
4. **A first layer run once for T identical steps.** With direct encoding (or one event frame
   repeated), the zoo's models run the first layer once and copy its output to the T steps
   (:func:`zoo.layers.time.fold`). NeuroBench counts the call that ran, once; the zoo's SOPs and
   MACs count that layer at each of the T steps, as the T-step network computes it.

So ``Effective_ACs`` equals the zoo's SOPs exactly where every synaptic layer is fed binary spikes
(LIF, IF, SRIF; not MLF or multi-bit) apart from an analog first layer, and no weight is zero.
Energy is the zoo's alone (0.9 pJ per AC, 4.6 pJ per MAC, :mod:`zoo.evaluation.energy`):
NeuroBench reports operation counts, not energy.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.neurons import Neuron
from zoo.neurons.backends.fused import forward_steps

VERSION = "neurobench 2.3.0"  # the package whose definitions these follow
CONNECTION_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)  # neurobench.blocks.layer.STATELESS_LAYERS
ACTIVATION_LAYERS = (nn.ReLU, nn.Sigmoid, Neuron)  # SUPPORTED_ACTIVATIONS + the zoo's neuron class
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
# the totals a counting pass adds up (partial files keep them between batches)
COUNTS = ("effective_macs", "effective_acs", "dense", "activation_nonzero", "activation_outputs", "membrane_updates")
# ---- static metrics ----------------------------------------------------------------------------


def footprint(model: nn.Module) -> int:
    """``Footprint``: bytes of the model's parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def connection_sparsity(model: nn.Module) -> float:
    """``ConnectionSparsity``: zero weights / weights of the leaf ``Linear`` and ``Conv`` modules,
    reached through ``children()`` as NeuroBench walks the network (0.0 without such layers)."""
    zeros = total = 0
    for layer in _leaves(model):
        if isinstance(layer, CONNECTION_LAYERS):
            zeros += int((layer.weight == 0).sum())
            total += layer.weight.numel()
    return zeros / total if total else 0.0


def _leaves(module: nn.Module):
    for child in module.children():
        if next(child.children(), None) is None:
            yield child
        else:
            yield from _leaves(child)


# ---- workload metrics --------------------------------------------------------------------------


def activation_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The activation layers NeuroBench hooks: outermost ``ACTIVATION_LAYERS`` modules."""
    return _outermost(model, ACTIVATION_LAYERS)


def connection_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The connection layers NeuroBench hooks: ``CONNECTION_LAYERS`` modules, outermost first."""
    return _outermost(model, CONNECTION_LAYERS)


def _outermost(model: nn.Module, kinds: tuple[type, ...]) -> dict[str, nn.Module]:
    """The modules of ``kinds`` by name, not looking inside one that is found (NeuroBench's walk)."""
    found: dict[str, nn.Module] = {}

    def walk(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            if isinstance(child, kinds):
                found[prefix + name] = child
            elif next(child.children(), None) is not None:
                walk(child, f"{prefix}{name}.")

    walk(model, "")
    return found


def pairs(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Sum of ``layer`` run without bias on the 0/1 tensor ``x`` with the 0/1 ``weight`` (None: every
    weight 1), as a 0-dim float64 tensor: the (input, weight) pairs that meet. With every weight 1 a
    convolution needs only one output channel per group (each has the same count)."""
    if isinstance(layer, nn.Linear):
        per_row = x.sum(dim=-1, dtype=torch.float64)
        if weight is None:
            return per_row.sum() * layer.out_features
        return (x.to(torch.float32) @ weight.t()).sum(dtype=torch.float64)
    groups = layer.groups
    kernel = weight if weight is not None else x.new_ones(groups, layer.in_channels // groups, *layer.kernel_size)
    padding = layer.padding
    if layer.padding_mode != "zeros":  # reflected/replicated/circular copies are inputs too
        x = F.pad(x, layer._reversed_padding_repeated_twice, mode=layer.padding_mode)
        padding = 0
    out = _CONV[len(layer.kernel_size)](x, kernel, None, layer.stride, padding, layer.dilation, groups)
    total = out.sum(dtype=torch.float64)
    return total if weight is not None else total * (layer.out_channels // groups)


class WorkloadCounter:
    """Counts NeuroBench's workload metrics while used as a context manager around forward passes.

    >>> with WorkloadCounter(model) as counter:
    ...     model(x)
    >>> counter.counts()          # totals over the calls seen; :func:`results` makes them metrics
    """

    def __init__(self, model: nn.Module) -> None:
        self.connections = connection_layers(model)
        self.activations = activation_layers(model)
        # binarised weights, or None where no weight is zero (then the cheaper all-ones kernel counts the same)
        self._weights = {name: None if bool((layer.weight != 0).all()) else (layer.weight != 0).to(torch.float32)
                         for name, layer in self.connections.items()}
        self._dense: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}
        self.totals: dict[str, Any] = dict.fromkeys(COUNTS, 0)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> "WorkloadCounter":
        self._handles = [m.register_forward_hook(self._on_connection(n)) for n, m in self.connections.items()]
        self._handles += [m.register_forward_hook(self._on_activation) for m in self.activations.values()]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _add(self, key: str, value: torch.Tensor | int) -> None:
        self.totals[key] = self.totals[key] + value

    def _on_connection(self, name: str):
        def hook(layer: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
            x = inputs[0]
            with torch.no_grad():
                nonzero = (x != 0).to(torch.float32)
                spiking = not bool(((x != 0) & (x != 1) & (x != -1)).any())
                self._add("effective_acs" if spiking else "effective_macs", pairs(layer, nonzero, self._weights[name]))
                self._add("dense", self._dense_ops(name, layer, x))
        return hook

    def _dense_ops(self, name: str, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``Dense`` of one call: depends on the input's shape only, so computed once per shape."""
        key = (name, tuple(x.shape))
        if key not in self._dense:
            self._dense[key] = pairs(layer, torch.ones_like(x, dtype=torch.float32), None)
        return self._dense[key]

    def _on_activation(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        with torch.no_grad():
            self._add("activation_nonzero", torch.count_nonzero(output))
            self._add("activation_outputs", output.numel())
            if isinstance(module, Neuron):
                self._add("membrane_updates", membrane_updates(module, inputs[0]))

    def counts(self) -> dict[str, int]:
        """The totals as plain integers (JSON-ready; added up over batches)."""
        return {key: int(round(float(value))) for key, value in self.totals.items()}


@torch.no_grad()
def membrane_updates(neuron: Neuron, x: torch.Tensor) -> torch.Tensor:
    """NeuroBench's membrane updates of one call of ``neuron`` on time-first ``x`` ``[T, B, ...]``:
    every membrane at the first step, then each one that changed (``h[t] - h[t-1] != 0``)."""
    h, _ = forward_steps(x.detach().reshape(x.shape[0], -1).to(torch.float32), neuron.dynamics())
    first = h[0].numel()
    return torch.count_nonzero(h[1:] - h[:-1]) + first if h.shape[0] > 1 else torch.tensor(first)


def results(model: nn.Module, counts: dict[str, int], samples: int) -> dict[str, Any]:
    """NeuroBench's metrics, under its result names, from a pass's ``counts`` over ``samples`` samples."""
    outputs = counts["activation_outputs"]
    return {
        "Footprint": footprint(model),
        "ConnectionSparsity": connection_sparsity(model),
        "ActivationSparsity": 1.0 - counts["activation_nonzero"] / outputs if outputs else 0.0,
        "SynapticOperations": {"Effective_MACs": counts["effective_macs"] / samples,
                               "Effective_ACs": counts["effective_acs"] / samples,
                               "Dense": counts["dense"] / samples},
        "MembraneUpdates": counts["membrane_updates"] / samples,
        "definitions": VERSION,
    }
