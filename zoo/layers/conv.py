"""Conv -> norm -> activation (-> pool), the unit of the plain (non-residual) spiking networks."""

from __future__ import annotations

import torch
from torch import nn

from .time import fold


class ConvNormAct(nn.Module):
    """``act(norm(conv(x)))`` then an optional ``pool``, on time-first ``[T, B, C, H, W]``.

    The convolution and the norm are applied time-folded (one batch of T*B samples, see
    :mod:`zoo.layers.time`), the activation (a neuron, or an ANN twin's activation) time-first,
    and the pooling folded again. Parameter names: ``conv``, ``bn``, ``act``, ``pool``.
    """

    def __init__(self, conv: nn.Conv2d, bn: nn.Module, act: nn.Module, pool: nn.Module | None = None) -> None:
        super().__init__()
        self.conv = conv
        self.bn = bn
        self.act = act
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(fold(x, self.conv, self.bn))
        return x if self.pool is None else fold(x, self.pool)
