"""Per-neuron-layer activity: firing rate, mean value per event and bits per spike.

Read from :func:`zoo.neurons.record_firing` (methods.md section 5):

* firing rate = events / (neurons x T x samples), an event being a non-zero output;
* mean value per event = sum of outputs / events: 1 for binary spikes, up to K for MLF (Feng et
  al. 2022), a fixed-point value for multi-bit neurons (Xiao et al. 2024), in the neuron's output
  units (multiples of V_th where the neuron emits V_th-scaled spikes);
* bits per spike = ceil(log2(number of output levels, zero included)): 1 for a binary spike,
  m + n for an m.n-bit multi-bit spike (methods.md section 3), ceil(log2(K + 1)) for K-level MLF.
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from zoo.neurons import FiringStats, Neuron
from zoo.neurons import spec as specs


def output_levels(neuron: Neuron) -> int:
    """How many distinct values one output of ``neuron`` can take, zero included."""
    if neuron.name == "mlf":
        return neuron.params["levels"] + 1
    if neuron.name == "multibit":
        return 2 ** (neuron.params["m"] + neuron.params["n"])
    return 2  # lif, if, srif, noisy_if: binary spikes (of amplitude 1 or V_th)


def bits_per_spike(neuron: Neuron) -> int:
    return max(1, math.ceil(math.log2(output_levels(neuron))))


def batch_counts(stats: dict[str, FiringStats]) -> dict[str, dict[str, float]]:
    """Plain summable numbers from one recording: JSON-ready, added up over batches."""
    return {name: {"events": s.events, "value_sum": s.value_sum, "elements": s.elements}
            for name, s in stats.items()}


def layer_summary(model: nn.Module, counts: dict[str, dict[str, float]], samples: int, T: int) -> list[dict[str, Any]]:
    """One entry per neuron layer (module order) from ``counts`` summed over ``samples`` samples
    of ``T`` steps; ``neurons`` is per sample and step."""
    modules = dict(model.named_modules())
    return [{"name": name, "neuron": specs.format(modules[name].spec()),
             "neurons": round(c["elements"] / (samples * T)),
             "firing_rate": c["events"] / c["elements"] if c["elements"] else 0.0,
             "mean_event_value": c["value_sum"] / c["events"] if c["events"] else 0.0,
             "bits_per_spike": bits_per_spike(modules[name]),
             "events_per_sample": c["events"] / samples}
            for name, c in counts.items()]


def overall(counts: dict[str, dict[str, float]]) -> tuple[float, float]:
    """Firing rate and mean event value over all neuron layers (weighted by neuron-steps)."""
    events = sum(c["events"] for c in counts.values())
    elements = sum(c["elements"] for c in counts.values())
    values = sum(c["value_sum"] for c in counts.values())
    return (events / elements if elements else 0.0), (values / events if events else 0.0)
