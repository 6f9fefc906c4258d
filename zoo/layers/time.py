"""Time folding: stateless layers see ``[T*B, ...]``, neurons see ``[T, B, ...]``.

SpikingJelly's multi-step mode (Fang et al., "SpikingJelly", Science Advances 2023): a layer with
no state over time (convolution, batch norm, pooling) gives the same result whether it is applied
step by step or to all ``T * B`` samples at once, so the time and batch dimensions are merged into
one batch for it. Merging them is also what tdBN prescribes for the normalisation statistics
(Zheng et al., AAAI 2021: statistics per channel over ``(T*B, H, W)``). Activations flow through
the zoo's models time-first; :func:`fold` is called inside each module's ``forward`` so the
layers keep their plain names (``layers.0.0.conv1``, not ``layers.0.0.conv1.module``).
"""

from __future__ import annotations

import torch
from torch import nn


def fold(x: torch.Tensor, *layers: nn.Module) -> torch.Tensor:
    """Apply stateless ``layers`` in turn to time-first ``x`` ``[T, B, ...]`` as one batch of
    ``T * B`` samples; the result is time-first again.

    Where every step holds the same input (``x`` expanded over T with stride 0: direct encoding, or
    one event frame repeated), the layers run once, on ``x[0]``, and the result is copied to every
    step (in its own memory format: a channels-last activation stays channels-last for the neuron
    and the layers after it): what BPTT at T steps would otherwise compute T times for the first
    layer (its convolution and normalisation over the largest activation). The output is the same; batch-norm statistics
    over B copies equal those over T * B copies, except that the running variance's unbiased
    correction uses B * H * W values instead of T * B * H * W (a relative difference below 1e-5 at
    CIFAR shape). The layers must be deterministic per sample (convolution, normalisation, pooling)."""
    T, B = x.shape[:2]
    if T > 1 and x.stride(0) == 0:
        y = x[0]
        for layer in layers:
            y = layer(y)
        return torch.cat([y] * T).unflatten(0, (T, B))
    y = x.flatten(0, 1)
    for layer in layers:
        y = layer(y)
    return y.unflatten(0, (T, B))
