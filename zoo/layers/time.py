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
from torch.nn.modules.batchnorm import _BatchNorm


def fold(x: torch.Tensor, *layers: nn.Module) -> torch.Tensor:
    """Apply stateless ``layers`` in turn to time-first ``x`` ``[T, B, ...]`` as one batch of
    ``T * B`` samples; the result is time-first again.

    Where every step holds the same input (``x`` expanded over T with stride 0: direct encoding, or
    one event frame repeated), the layers run once, on ``x[0]``, and the result is copied to every
    step (in its own memory format: a channels-last activation stays channels-last for the neuron
    and the layers after it): what BPTT at T steps would otherwise compute T times for the first
    layer (its convolution and normalisation over the largest activation). The output is the same,
    and so are the gradients (autograd sums the T copies' gradients into the one computation). The
    layers must be deterministic per sample (convolution, normalisation, pooling); a batch norm's
    statistics over B samples equal those over their T copies (:func:`_once_for_copies`)."""
    T, B = x.shape[:2]
    if T > 1 and x.stride(0) == 0:
        y = x[0]
        for layer in layers:
            y = _once_for_copies(layer, y, T)
        return torch.cat([y] * T).unflatten(0, (T, B))
    y = x.flatten(0, 1)
    for layer in layers:
        y = layer(y)
    return y.unflatten(0, (T, B))


def _once_for_copies(layer: nn.Module, y: torch.Tensor, copies: int) -> torch.Tensor:
    """``layer(y)`` standing for ``layer`` applied to ``copies`` stacked copies of ``y``.

    Per-sample layers need nothing more. A batch norm in training normalises with the batch mean
    and biased variance, which are the same over the copies as over y; only the update of its
    running variance differs: it stores the unbiased variance, ``var * n / (n - 1)``, with n the
    values per channel (B*H*W here, ``copies`` times that over the copies). The update
    ``running_var <- (1 - f) * running_var + f * var * n / (n - 1)`` (f: momentum, or 1 /
    num_batches_tracked for a cumulative average) is therefore redone with ``copies * n``, from the
    f * var * n / (n - 1) the layer added: the running variance of T identical copies, to float32
    rounding (the mean, the normalisation and every gradient need no correction). It is written
    through ``.data``, as the batch norm's own kernel updates it: without a new version of the
    tensor, which the batch norm's backward saved (and, in training, does not read)."""
    if not (isinstance(layer, _BatchNorm) and layer.training and layer.track_running_stats):
        return layer(y)
    before = layer.running_var.clone()
    out = layer(y)
    n = y.numel() // y.shape[1]
    f = layer.momentum if layer.momentum is not None else 1.0 / float(layer.num_batches_tracked)
    with torch.no_grad():
        added = layer.running_var - before * (1.0 - f)  # f * var * n / (n - 1)
        ratio = (copies * n) * (n - 1) / (n * (copies * n - 1))
        layer.running_var.data.copy_(before * (1.0 - f) + added * ratio)
    return out
