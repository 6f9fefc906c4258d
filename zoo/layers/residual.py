"""The residual basic block of the spiking ResNets: the spiking DS block (MLF) and the standard
spiking block (STBP-tdBN, InfLoR), with optional multi-bit re-stimulation.

Main path (both): ``conv3x3(stride) -> BN -> act1 -> conv3x3 -> BN``. Shortcut: identity, or when
the shape changes the projection ``downsample = conv1x1(stride) -> BN`` (its current ``s``); with
``avg_down`` the projection averages first and convolves at stride 1, ``AvgPool2d(stride,
ceil_mode=True, count_include_pad=False) -> conv1x1 -> BN`` (the "ResNet-D" shortcut of the InfLoR
code's ``ResNet_Cifar_Modified``, yfguo91/Re-Loss ``models/resnet.py``).

- Standard spiking block (``spike_before_add=False``; Zheng et al. AAAI 2021, InfLoR code
  yfguo91/Re-Loss ``SpikeBasicBlock``): ``out = act2(main + s)``, binary-valued output.
- Spiking DS block (``spike_before_add=True``; Feng et al. IJCAI 2022, and the authors'
  ``BasicBlock(modified=True)``): ``out = act2(main) + downsample_act(s)`` (identity: ``+ x``).
  The spike sits before the add and nothing follows it, so the values passed between blocks are
  sums of spike counts (they can exceed K).

tdBN's alpha rule (Zheng et al. AAAI 2021, their residual blocks; Re-Loss code): in blocks that have a downsample branch,
``bn2`` and the downsample BN use ``alpha = residual_alpha`` (1/sqrt(2) there, so that the sum of
the two branches keeps the pre-activation variance); ``alpha = 1`` elsewhere. The MLF code uses
``alpha = 1`` everywhere (``residual_alpha = 1``).

Re-stimulation (``restim=True``; multi-bit spikes, Xiao et al. arXiv 2407.05739, OUR
INTERPRETATION, methods.md section 3): the block input, shape-matched by the shortcut projection
where there is one, passes through ECA (:mod:`zoo.layers.eca`) and is added to the input current
of the block's output neurons ``act2``:  ``r = ECA(s)`` and ``act2(main + s + r)`` (standard) or
``act2(main + r)`` (DS). The projection is applied once, before ECA, so its BN sees each batch once.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from torch import nn

from .eca import ECA
from .time import fold

NormLayer = Callable[..., nn.Module]  # norm_layer(channels, alpha=...)


def conv3x3(in_chs: int, out_chs: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, 3, stride, 1, bias=False)


class BasicBlock(nn.Module):
    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int,
        act_layer: Callable[[], nn.Module],
        norm_layer: NormLayer,
        spike_before_add: bool = False,
        residual_alpha: float = 1.0,
        restim: bool = False,
        avg_down: bool = False,
    ) -> None:
        super().__init__()
        has_downsample = stride != 1 or in_chs != out_chs
        alpha = residual_alpha if has_downsample else 1.0
        self.spike_before_add = spike_before_add
        self.conv1 = conv3x3(in_chs, out_chs, stride)
        self.bn1 = norm_layer(out_chs)
        self.act1 = act_layer()
        self.conv2 = conv3x3(out_chs, out_chs)
        self.bn2 = norm_layer(out_chs, alpha=alpha)
        self.act2 = act_layer()
        self.downsample = self._projection(in_chs, out_chs, stride, norm_layer(out_chs, alpha=alpha), avg_down) \
            if has_downsample else None
        self.downsample_act = act_layer() if has_downsample and spike_before_add else None
        self.restim = ECA(out_chs) if restim else None

    @staticmethod
    def _projection(in_chs: int, out_chs: int, stride: int, bn: nn.Module, avg_down: bool) -> nn.Sequential:
        """The shortcut's projection: ``conv1x1(stride) -> bn``, or with ``avg_down`` (and a stride)
        ``AvgPool2d(stride) -> conv1x1 -> bn``."""
        if avg_down and stride > 1:
            return nn.Sequential(OrderedDict(
                pool=nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                conv=nn.Conv2d(in_chs, out_chs, 1, 1, bias=False), bn=bn))
        return nn.Sequential(OrderedDict(conv=nn.Conv2d(in_chs, out_chs, 1, stride, bias=False), bn=bn))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: time-first ``[T, B, C, H, W]``."""
        out = fold(self.act1(fold(x, self.conv1, self.bn1)), self.conv2, self.bn2)
        shortcut = x if self.downsample is None else fold(x, self.downsample)
        if self.spike_before_add:
            current = out if self.restim is None else out + fold(shortcut, self.restim)
            if self.downsample_act is not None:
                shortcut = self.downsample_act(shortcut)
            return self.act2(current) + shortcut
        current = out + shortcut
        if self.restim is not None:
            current = current + fold(shortcut, self.restim)
        return self.act2(current)
