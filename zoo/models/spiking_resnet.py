"""Spiking ResNets with the standard basic block (activation after the add).

CIFAR (``spiking_resnet19``, ``spiking_resnet20``, ``spiking_resnet20_modified``): InfLoR-SNN, Guo et al., "Reducing Information
Loss for Spiking Neural Networks", ECCV 2022 (arXiv 2307.04356); the graph is the authors' code
(yfguo91/Re-Loss: ``models/resnet.py`` ``ResNet_Cifar`` turned spiking by ``spike_model.py`` and
``spike_block.py``), which follows tdBN's ResNet-19 (Zheng et al., AAAI 2021) with one difference
noted below. ImageNet (``spiking_resnet18``, ``spiking_resnet34``): the same code's ``ResNet``.

- Two CIFAR "ResNet-20"s: ``spiking_resnet20`` is the code's ``resnet20_cifar`` (the tdBN-style
  network of ResNet-19 with stages [3, 3, 3], 128-256-512); ``spiking_resnet20_modified`` is the
  network its training script actually trains as "ResNet-20", ``res20m`` = ``resnet20_cifar_modified``
  (``ResNet_Cifar_Modified``): a three-conv 64-channel stem followed by 2x2 average pooling, four
  stages [2, 2, 2, 2] of 64-128-256-512, average-pool shortcuts (``avg_down``) and the last BN of
  every block initialised to zero (``zero_init_residual``).
- Stem: conv3x3(in_chans -> w1) -> BN -> neuron (``"cifar"``); three such convs at w1, then 2x2
  average pooling (``"cifar3"``, res20m); conv7x7/2 -> BN -> neuron -> 3x3/2
  average pooling (ImageNet; the code pools by averaging, ``nn.AvgPool2d(3, 2, 1)``). The stem BN
  is a plain BatchNorm with statistics over (T*B, H, W) and no ``alpha * V_th`` scaling: the code
  turns it into ``myBatchNorm3d``, not into its tdBN.
- Stages of :class:`zoo.layers.BasicBlock` (standard block), strides 1, 2, 2 (, 2); every block
  BN is tdBN with V_th = 0.5 and eps inside the square root, alpha = 1/sqrt(2) on ``bn2`` and the
  downsample BN of blocks with a downsample branch (``downsample = conv1x1(stride) -> tdBN``).
- Global average pooling -> Linear at each step, logits averaged over T.
- Neuron: soft-reset IF with the membrane potential rectifier (``"srif"``), T = 4.
- Init as the code: conv weights ``N(0, 2 / (k*k*out_channels))``, BN weight 1 and bias 0,
  linear weights ``N(0, (1/in_features)^2)`` (std 1/n, as written) and bias 0.

Difference between the code and tdBN's ResNet-19: the code has no hidden FC-256 layer before the
classifier; ``head_hidden=256`` adds it (Linear -> neuron -> Linear).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..layers import BasicBlock, ConvNormAct, Readout, TdBatchNorm2d, fold
from ..registry import register_model
from .base import SpikingModel, build_model

STEMS = ("cifar", "cifar3", "imagenet")


class SpikingResNet(SpikingModel):
    """A spiking ResNet of basic blocks; subclasses (:class:`zoo.models.ds_resnet.DSResNet`) change
    the block kind, the norms and the initialisation through the class attributes and methods
    below.

    ``depths`` / ``widths``: blocks and channels per stage (the first stage keeps the resolution,
    each later one halves it). ``stem``: ``"cifar"`` or ``"imagenet"``. ``input_bn``: a non-affine
    norm of the family applied to the raw input frames (the MLF code's DVS128 Gesture network).
    ``head_hidden``: width of a hidden readout layer (0: none). ``restim``: multi-bit
    re-stimulation through ECA in every block (:class:`zoo.layers.BasicBlock`).
    """

    first_conv = "stem.conv"
    spike_before_add = False  # standard block: the activation follows the add
    residual_alpha = 1 / math.sqrt(2)  # tdBN alpha of bn2 and the downsample BN in downsample blocks

    def __init__(
        self,
        depths: Sequence[int],
        widths: Sequence[int],
        *,
        neuron: str | dict,
        num_classes: int = 10,
        in_chans: int = 3,
        T: int = 4,
        stem: str = "cifar",
        input_bn: bool = False,
        head_hidden: int = 0,
        restim: bool = False,
        avg_down: bool = False,
        zero_init_residual: bool = False,
        backend: str = "auto",
        img_size: int | tuple[int, int] = 32,
    ) -> None:
        if len(depths) != len(widths):
            raise ValueError(f"{type(self).__name__}: depths {list(depths)} and widths {list(widths)} differ in length")
        if stem not in STEMS:
            raise ValueError(f"{type(self).__name__}: stem must be one of {STEMS}, got {stem!r}")
        super().__init__(
            num_classes=num_classes, in_chans=in_chans, T=T, neuron=neuron, backend=backend, img_size=img_size,
            depths=depths, widths=widths, stem=stem, input_bn=input_bn, head_hidden=head_hidden, restim=restim,
            avg_down=avg_down, zero_init_residual=zero_init_residual,
        )
        self.input_bn = self.norm(in_chans, affine=False) if input_bn else None
        self.stem = self._stem(stem, in_chans, widths[0])
        stages, chs = [], widths[0]
        for i, (depth, width) in enumerate(zip(depths, widths)):
            blocks = []
            for j in range(depth):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(BasicBlock(
                    chs, width, stride, act_layer=self.act, norm_layer=self.norm,
                    spike_before_add=self.spike_before_add, residual_alpha=self.residual_alpha, restim=restim,
                    avg_down=avg_down,
                ))
                chs = width
            stages.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*stages)
        self.num_features = chs
        self.head = Readout(chs, num_classes, head_hidden, self.act)
        self.init_weights()
        if zero_init_residual:  # each block starts as its shortcut (Goyal et al. 2017; the res20m code)
            for block in self.layers.modules():
                if isinstance(block, BasicBlock):
                    nn.init.zeros_(block.bn2.weight)

    def _stem(self, stem: str, in_chans: int, width: int) -> nn.Module:
        def unit(c_in: int, pool: nn.Module | None = None) -> ConvNormAct:
            return ConvNormAct(nn.Conv2d(c_in, width, 3, 1, 1, bias=False), self.stem_norm(width), self.act(), pool)

        if stem == "cifar":
            return unit(in_chans)
        if stem == "cifar3":
            self.first_conv = "stem.0.conv"
            return nn.Sequential(unit(in_chans), unit(width), unit(width, nn.AvgPool2d(2)))
        return ConvNormAct(nn.Conv2d(in_chans, width, 7, 2, 3, bias=False), self.stem_norm(width), self.act(),
                           pool=nn.AvgPool2d(3, 2, 1))

    # -- family choices --------------------------------------------------------------------------
    def norm(self, channels: int, alpha: float = 1.0, affine: bool = True) -> nn.Module:
        """Block norms: InfLoR's tdBN (V_th = 0.5, eps inside the square root)."""
        return TdBatchNorm2d(channels, alpha=alpha, v_th=0.5, eps_mode="inside", affine=affine)

    def stem_norm(self, channels: int) -> nn.Module:
        """The stem's plain BatchNorm (the code's ``myBatchNorm3d``)."""
        return nn.BatchNorm2d(channels)

    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 1.0 / m.in_features)
                nn.init.zeros_(m.bias)

    # -- forward ---------------------------------------------------------------------------------
    def forward_features_seq(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_bn is not None:
            x = fold(x, self.input_bn)
        return self.layers(self.stem(x))

    def group_matcher(self, coarse: bool = False) -> dict:
        """Stem, then one group per stage (``coarse``) or per residual block."""
        return {"stem": r"^input_bn|^stem\.", "blocks": r"^layers\.(\d+)" if coarse else r"^layers\.(\d+)\.(\d+)"}


CIFAR = dict(widths=(128, 256, 512), neuron="srif", T=4, num_classes=10, in_chans=3, img_size=32)
IMAGENET = dict(widths=(64, 128, 256, 512), stem="imagenet", neuron="srif", T=4, num_classes=1000, in_chans=3, img_size=224)


@register_model
def spiking_resnet19(**kwargs) -> SpikingResNet:
    """ResNet-19 for CIFAR (InfLoR code ``resnet19_cifar``): stages [3, 3, 2], widths 128-256-512."""
    return build_model(SpikingResNet, kwargs, depths=(3, 3, 2), **CIFAR)


@register_model
def spiking_resnet20(**kwargs) -> SpikingResNet:
    """ResNet-20 for CIFAR (InfLoR code ``resnet20_cifar``): stages [3, 3, 3], widths 128-256-512. Not the
    network the InfLoR training script trains as "ResNet-20" (that is ``spiking_resnet20_modified``)."""
    return build_model(SpikingResNet, kwargs, depths=(3, 3, 3), **CIFAR)


@register_model
def spiking_resnet20_modified(**kwargs) -> SpikingResNet:
    """The InfLoR training script's "ResNet-20", ``res20m`` (code ``resnet20_cifar_modified``): three-conv
    64-channel stem + 2x2 average pooling, stages [2, 2, 2, 2] of 64-128-256-512, average-pool
    shortcuts, zero-initialised last BN per block."""
    return build_model(SpikingResNet, kwargs, depths=(2, 2, 2, 2), stem="cifar3", avg_down=True,
                       zero_init_residual=True, **{**CIFAR, "widths": (64, 128, 256, 512)})


@register_model
def spiking_resnet20_w32(**kwargs) -> SpikingResNet:
    """ResNet-20 for CIFAR at a quarter of spiking_resnet20's widths, 32-64-128 (this project's member,
    sized for CPU training: twice the widths of He et al.'s ResNet-20, 1.1 M parameters)."""
    return build_model(SpikingResNet, kwargs, depths=(3, 3, 3), **{**CIFAR, "widths": (32, 64, 128)})


@register_model
def spiking_resnet18(**kwargs) -> SpikingResNet:
    """ResNet-18 for ImageNet (InfLoR code ``ResNet18``): stages [2, 2, 2, 2], widths 64-512."""
    return build_model(SpikingResNet, kwargs, depths=(2, 2, 2, 2), **IMAGENET)


@register_model
def spiking_resnet34(**kwargs) -> SpikingResNet:
    """ResNet-34 for ImageNet (InfLoR code ``ResNet34``): stages [3, 4, 6, 3], widths 64-512."""
    return build_model(SpikingResNet, kwargs, depths=(3, 4, 6, 3), **IMAGENET)
