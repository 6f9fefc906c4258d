"""Noise-trained T = 1 networks run at T = N (Jiang & Zhang, "A noise based novel strategy for
faster SNN training", Neural Computation 2023, arXiv 2211.05453; OUR INTERPRETATION, methods.md
section 4).

Training uses ``noisy_if`` neurons at T = 1: ``o = V_th H(z + eps - V_th)`` with
``eps ~ N(mu V_th, (sigma V_th)^2)``. The conversion keeps every weight and only changes how the
network runs: ``model.T = N`` and evaluation mode, in which each ``noisy_if`` neuron is an IF neuron
with soft reset and initial membrane ``u[0] = mu V_th`` and no noise (see
:mod:`zoo.neurons.noisy_if`); the model averages its logits over the N steps.
"""

from __future__ import annotations

from torch import nn

from ..neurons import NoisyIF
from .qcfs import ConversionError


def noisy_to_multistep(model: nn.Module, T: int) -> nn.Module:
    """``model`` (in place) set to run ``T`` steps in evaluation mode; every neuron must be noisy IF."""
    kinds = {type(m).__name__ for m in model.neurons()} if hasattr(model, "neurons") else set()
    if kinds != {NoisyIF.__name__}:
        raise ConversionError(f"T=1 -> T=N conversion needs noisy_if neurons only, found {sorted(kinds) or 'none'}")
    model.T = T
    return model.eval()
