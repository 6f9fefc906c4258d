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
    ``T * B`` samples; the result is time-first again."""
    T, B = x.shape[:2]
    y = x.flatten(0, 1)
    for layer in layers:
        y = layer(y)
    return y.unflatten(0, (T, B))
