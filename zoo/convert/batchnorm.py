"""Batch-norm statistics re-estimated for the network as it now runs (the zoo's addition to the
noise route; not part of Jiang & Zhang 2023).

A network trained with noisy neurons at T = 1 keeps running statistics of inputs that carried the
noise; run deterministically at T = N its BatchNorm inputs have other means and variances, and the
stale statistics cost accuracy (`spiking_resnet20_w32.noise_cifar10_t1` at T = 4, all 10,000
CIFAR-10 test images: 35.57 % with the trained statistics, 48.17 % re-estimated on 4,096 training
images; `zoo train recipes/noise_spiking_resnet20_w32_cifar10_t1.yaml --convert-from RUN`).
Re-estimating only the statistics changes no learned parameter: every layer still computes what it
learned, on inputs normalised as they now arrive, as is done after quantising or pruning a network.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> int:
    """Replace the running mean and variance of every BatchNorm in ``model`` by their plain average
    over ``batches`` (``momentum=None``), the rest of the network in evaluation mode (neurons run
    as they will at inference). Returns the number of samples seen; ``model`` is left in
    evaluation mode with each norm's momentum as it was."""
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not norms:
        raise ValueError("recalibrate_batchnorm: the model has no BatchNorm layer with running statistics")
    model.eval()
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    seen = 0
    try:
        for x, _ in batches:
            model(x)
            seen += x.shape[1] if x.dim() == 5 else x.shape[0]  # event frames are time-first
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
            norm.eval()
    if seen == 0:
        raise ValueError("recalibrate_batchnorm: no batches to estimate the statistics on")
    return seen
