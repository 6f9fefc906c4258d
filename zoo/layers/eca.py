"""Efficient Channel Attention, used for multi-bit re-stimulation.

ECA: Wang et al., "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
CVPR 2020: global average pooling, a 1-D convolution of kernel k across the channel
axis (no bias, zero padding), a sigmoid, and the input scaled channel-wise by the result:

    w = sigmoid(conv1d_k(GAP(x))),    ECA(x) = w * x

with the adaptive kernel of its eq. 12, ``k = |log2(C) / gamma + b / gamma|_odd`` (gamma = 2,
b = 1), unless k is given. The multi-bit paper (Xiao et al., arXiv 2407.05739) re-stimulates neurons through an ECA
interlaminar connection; how the zoo wires it into residual blocks is described in
:class:`zoo.layers.residual.BasicBlock` (our interpretation, methods.md section 3).

ECA is stateless in time: it takes one step (``[N, C, H, W]``, time folded into N).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def eca_kernel_size(channels: int, gamma: float = 2.0, b: float = 1.0) -> int:
    """ECA-Net eq. 12 as its code computes it: ``int(|log2(C) / gamma + b / gamma|)``, plus 1 if even."""
    k = int(abs(math.log2(channels) / gamma + b / gamma))
    return k if k % 2 else k + 1


class ECA(nn.Module):
    def __init__(self, channels: int, kernel_size: int | None = None) -> None:
        super().__init__()
        k = eca_kernel_size(channels) if kernel_size is None else kernel_size
        if k < 1 or k % 2 == 0:
            raise ValueError(f"ECA: kernel_size must be a positive odd integer, got {k}")
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The channel weights ``sigmoid(conv1d(GAP(x)))``, shape ``[N, C]``."""
        pooled = x.mean(dim=(2, 3))  # [N, C]
        return torch.sigmoid(self.conv(pooled.unsqueeze(1)).squeeze(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)[:, :, None, None]
