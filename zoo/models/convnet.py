"""A small convolutional SNN for MNIST-family (28x28x1) and N-MNIST (34x34x2) inputs.

After the networks of Fang et al., "Incorporating Learnable Membrane Time Constant to Enhance
Learning of Spiking Neural Networks" (PLIF), ICCV 2021: two stages
``conv3x3(128) -> BN -> neuron -> pool(2)``, flatten, an optional hidden layer
(``head_hidden``: Linear -> neuron) and a Linear classifier applied at each step; logits averaged
over T. It trains on a CPU, so every method of the zoo can be compared on the same graph.

Differences from the PLIF paper's network, on purpose: 2x2 average pooling instead of max pooling
(so that the ANN twin converts; max pooling of spikes does not), no dropout, no hidden layer by
default (the paper has FC-2048 and FC-100 with a voting layer), and the neuron is a spec (LIF by
default, the STBP baseline of methods.md section 0; PLIF's learnable tau is not in the zoo).
BN is plain BatchNorm over (T*B, H, W), so the ANN twin's weights transfer unchanged.

The ANN twins (``convnet_qcfs``, ``convnet_nmnist_qcfs``) are the same graph with QCFS
activations in the activation slot (see :mod:`zoo.models.vgg`). The flattened size depends on
the input size, so inputs must be ``img_size``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import ConvNormAct, Readout
from ..registry import register_model
from .base import SpikingModel, build_model


class SpikingConvNet(SpikingModel):
    input_size_fixed = True
    global_pool = "flatten"
    first_conv = "features.0.conv"

    def __init__(
        self,
        *,
        neuron: str | dict,
        channels: int = 128,
        head_hidden: int = 0,
        num_classes: int = 10,
        in_chans: int = 1,
        T: int = 8,
        backend: str = "auto",
        img_size: int | tuple[int, int] = 28,
    ) -> None:
        super().__init__(num_classes=num_classes, in_chans=in_chans, T=T, neuron=neuron, backend=backend,
                         img_size=img_size, channels=channels, head_hidden=head_hidden)
        self.features = nn.Sequential(*(
            ConvNormAct(nn.Conv2d(c_in, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels), self.act(), nn.AvgPool2d(2))
            for c_in in (in_chans, channels)
        ))
        _, h, w = self.default_input_size
        self.num_features = channels
        self.head = Readout(channels * (h // 4) * (w // 4), num_classes, head_hidden, self.act)

    def forward_features_seq(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def group_matcher(self, coarse: bool = False) -> dict:
        return {"stem": r"^features\.0\.", "blocks": r"^features\.(\d+)"}


MNIST = dict(num_classes=10, in_chans=1, img_size=28)
NMNIST = dict(num_classes=10, in_chans=2, img_size=34)


@register_model
def spiking_convnet(**kwargs) -> SpikingConvNet:
    """Two conv128 stages for 28x28x1 inputs (MNIST, Fashion-MNIST), LIF neurons, T=8."""
    return build_model(SpikingConvNet, kwargs, neuron="lif", T=8, **MNIST)


@register_model
def spiking_convnet_nmnist(**kwargs) -> SpikingConvNet:
    """Two conv128 stages for 34x34x2 event frames (N-MNIST), LIF neurons, T=8."""
    return build_model(SpikingConvNet, kwargs, neuron="lif", T=8, **NMNIST)


@register_model
def convnet_qcfs(**kwargs) -> SpikingConvNet:
    """ANN twin of spiking_convnet: QCFS activations (L=4, shift 1/2, learnable lambda), T=1."""
    return build_model(SpikingConvNet, kwargs, neuron="qcfs", T=1, **MNIST)


@register_model
def convnet_nmnist_qcfs(**kwargs) -> SpikingConvNet:
    """ANN twin of spiking_convnet_nmnist: QCFS activations, T=1 (event frames are classified
    frame by frame, logits averaged)."""
    return build_model(SpikingConvNet, kwargs, neuron="qcfs", T=1, **NMNIST)
