"""Spiking VGG-11 / VGG-16 and their ANN twins with QCFS activations.

VGG: Simonyan & Zisserman, ICLR 2015, configurations "A" (11 layers) and "D" (16 layers), each
conv3x3 followed by BatchNorm. Configuration "7" (``spiking_vgg7``, ``vgg7_qcfs``; this project's
member of the family, sized for CPU training) has six convs and the classifier: the widths 64-256-256
and pooling positions of the network of the fast CIFAR-10 training literature (Jordan 2024,
airbench94: two convs per stage, the first followed by 2x2 pooling), without its whitening layer,
about 134 M multiply-adds per image (VGG-16: 313 M). Configuration "7-wide" (``spiking_vgg7_wide``,
``vgg7_wide_qcfs``) is the same graph at 1.5 times the widths, 96-384-384 (about 2.2 times the
multiply-adds), for a twin that the 64-256-256 one's 92 % does not reach.

The graph is the InfLoR authors' ``vggcifar`` (yfguo91/Re-Loss ``models/vggcifar.py``: VGG with
BN, 2x2 average pooling in place of max pooling, global average pooling -> one Linear, torchvision's
init), except that the convs here have no bias (each is followed by BN, which absorbs it). The head
is that code's, not QCFS's (Bu et al., ICLR 2022); from the conversion literature comes only the
reason for average pooling: max pooling of spikes does not convert.

Each conv is ``ConvNormAct`` (``features.i.conv``, ``features.i.bn``, ``features.i.act`` and, after
the last conv of a stage, ``features.i.pool``); the head is ``head.fc``. The activation slot holds
a neuron (``spiking_vgg*``; default IF with soft reset, V_th = 1, T = 4: the neuron that
conversion and noise-based T=1 training both end in) or a QCFS activation (``vgg*_qcfs``, the ANN
twin, T = 1). The graph code is the same, so one checkpoint loads into both (the twin adds one
``act.threshold`` per activation: the lambda a converter turns into the neuron's threshold).

The BN layers are plain BatchNorm (statistics over T*B, H, W; no ``alpha * V_th`` scaling), so
the ANN twin's weights transfer unchanged. Init as torchvision's VGG: conv kaiming-normal
(fan-out), BN weight 1 / bias 0, linear ``N(0, 0.01^2)`` with zero bias.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..layers import ConvNormAct, Readout
from ..registry import register_model
from .base import SpikingModel, build_model

CFGS: dict[str, list[int | str]] = {
    "7": [64, "P", 64, 256, "P", 256, 256, "P", 256],
    "7-wide": [96, "P", 96, 384, "P", 384, 384, "P", 384],
    "A": [64, "P", 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P"],
    "D": [64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P"],
}


class SpikingVGG(SpikingModel):
    first_conv = "features.0.conv"

    def __init__(
        self,
        cfg: str | Sequence[int | str],
        *,
        neuron: str | dict,
        num_classes: int = 10,
        in_chans: int = 3,
        T: int = 4,
        backend: str = "auto",
        img_size: int | tuple[int, int] = 32,
    ) -> None:
        """``cfg``: ``"7"``, ``"A"``, ``"D"`` or a list of conv widths with ``"P"`` for a 2x2 average pool."""
        layers = CFGS[cfg] if isinstance(cfg, str) else list(cfg)
        super().__init__(num_classes=num_classes, in_chans=in_chans, T=T, neuron=neuron, backend=backend,
                         img_size=img_size, cfg=cfg)
        units, chs = [], in_chans
        for i, item in enumerate(layers):
            if item == "P":
                continue
            pool = nn.AvgPool2d(2) if layers[i + 1 : i + 2] == ["P"] else None
            units.append(ConvNormAct(nn.Conv2d(chs, item, 3, 1, 1, bias=False), nn.BatchNorm2d(item), self.act(), pool))
            chs = item
        self.features = nn.Sequential(*units)
        self.num_features = chs
        self.head = Readout(chs, num_classes)
        self.init_weights()

    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features_seq(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def group_matcher(self, coarse: bool = False) -> dict:
        return {"stem": r"^features\.0\.", "blocks": r"^features\.(\d+)"}


CIFAR10 = dict(num_classes=10, in_chans=3, img_size=32)


@register_model
def spiking_vgg7(**kwargs) -> SpikingVGG:
    """Spiking VGG-7 (configuration "7": 64-256-256, BN, average pooling), IF neurons, T=4."""
    return build_model(SpikingVGG, kwargs, cfg="7", neuron="if", T=4, **CIFAR10)


@register_model
def spiking_vgg7_wide(**kwargs) -> SpikingVGG:
    """Spiking VGG-7 at 1.5 times the widths (configuration "7-wide": 96-384-384), IF neurons, T=4."""
    return build_model(SpikingVGG, kwargs, cfg="7-wide", neuron="if", T=4, **CIFAR10)


@register_model
def spiking_vgg11(**kwargs) -> SpikingVGG:
    """Spiking VGG-11 (configuration A, BN, average pooling), IF neurons, T=4."""
    return build_model(SpikingVGG, kwargs, cfg="A", neuron="if", T=4, **CIFAR10)


@register_model
def spiking_vgg16(**kwargs) -> SpikingVGG:
    """Spiking VGG-16 (configuration D, BN, average pooling), IF neurons, T=4."""
    return build_model(SpikingVGG, kwargs, cfg="D", neuron="if", T=4, **CIFAR10)


@register_model
def vgg7_qcfs(**kwargs) -> SpikingVGG:
    """ANN twin of spiking_vgg7: QCFS activations (L=4, shift 1/2, learnable lambda), T=1."""
    return build_model(SpikingVGG, kwargs, cfg="7", neuron="qcfs", T=1, **CIFAR10)


@register_model
def vgg7_wide_qcfs(**kwargs) -> SpikingVGG:
    """ANN twin of spiking_vgg7_wide: QCFS activations (L=4, shift 1/2, learnable lambda), T=1."""
    return build_model(SpikingVGG, kwargs, cfg="7-wide", neuron="qcfs", T=1, **CIFAR10)


@register_model
def vgg11_qcfs(**kwargs) -> SpikingVGG:
    """ANN twin of spiking_vgg11: QCFS activations (L=4, shift 1/2, learnable lambda), T=1."""
    return build_model(SpikingVGG, kwargs, cfg="A", neuron="qcfs", T=1, **CIFAR10)


@register_model
def vgg16_qcfs(**kwargs) -> SpikingVGG:
    """ANN twin of spiking_vgg16: QCFS activations (L=4, shift 1/2, learnable lambda), T=1."""
    return build_model(SpikingVGG, kwargs, cfg="D", neuron="qcfs", T=1, **CIFAR10)
