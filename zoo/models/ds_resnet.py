"""Spiking DS-ResNet with multi-level firing (MLF) neurons.

Feng, Liu, Tang, Ma, Pan, "Multi-Level Firing with Spiking DS-ResNet: Enabling Better and Deeper
Directly-Trained Spiking Neural Networks", IJCAI 2022 (arXiv 2210.06386). The graph follows the
authors' code (langfengQ/MLF-DSResNet, ``parallel_nets/ResNet_for_cifar10.py``,
``ResNet_for_Gesture.py``, ``ResNet_for_dvscifar10.py``):

- Stem: conv3x3(in_chans -> w1) -> tdBN -> MLF. Three stages of spiking DS blocks
  (:class:`zoo.layers.BasicBlock` with ``spike_before_add=True``: the MLF unit sits before the add
  and none follows it; the projection shortcut is conv1x1(stride) -> tdBN -> MLF), strides 1, 2, 2,
  widths (w1, w2, w3). Global average pooling -> Linear at each step, logits averaged over T.
- Every BN is the code's tdBN: alpha = 1, V_th = 0.6, ``eps`` outside the square root
  (``(x - mean) / (sqrt(var) + eps)``), BatchNorm's momentum 0.1 and eps 1e-5.
- Neuron: MLF with K = 3 levels (V_th = 0.6, spacing a = 1, tau = 0.25); T = 4 on CIFAR-10.
- Convs bias-free; ``kaiming_normal_`` (fan-in, gain sqrt 2) on conv and linear weights, the
  linear bias keeps PyTorch's default init.
- DVS128 Gesture (``ResNet_for_Gesture.py``): widths 16-32-64, 2 input channels, 11 classes,
  T = 40, 32x32 frames (128x128 events pooled 4x4), and a non-affine tdBN (alpha = 1, V_th = 0.6)
  on the raw input frames before the stem conv (``input_bn``; the code's ``bn0``).
- CIFAR10-DVS (``ResNet_for_dvscifar10.py``): ds_resnet14, widths 32-64-128, 2 input channels,
  10 classes, T = 10, 42x42 frames. Every stored version of the authors' file has NO input tdBN
  (there is no ``bn0``, and its ``Normalize_ToTensor`` transform only converts to a tensor), so
  ``input_bn`` is off here, following the code; ``input_bn=True`` adds it.

The code registers depths 14/20/32/44/68; 56 and 110 (the paper's deeper networks) use the same
blocks with [9, 9, 9] and [18, 18, 18].
"""

from __future__ import annotations

from torch import nn

from ..layers import TdBatchNorm2d
from ..registry import register_model
from .base import build_model
from .spiking_resnet import SpikingResNet


class DSResNet(SpikingResNet):
    """Spiking DS-ResNet: :class:`SpikingResNet` with DS blocks, the MLF code's tdBN and init."""

    spike_before_add = True
    residual_alpha = 1.0

    def norm(self, channels: int, alpha: float = 1.0, affine: bool = True) -> nn.Module:
        """The MLF code's tdBN: V_th = 0.6, eps outside the square root."""
        return TdBatchNorm2d(channels, alpha=alpha, v_th=0.6, eps_mode="outside", affine=affine)

    def stem_norm(self, channels: int) -> nn.Module:
        return self.norm(channels)

    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)


CIFAR10 = dict(widths=(64, 128, 256), neuron="mlf", T=4, num_classes=10, in_chans=3, img_size=32)
DVS_GESTURE = dict(widths=(16, 32, 64), neuron="mlf", T=40, num_classes=11, in_chans=2, img_size=32, input_bn=True)
CIFAR10_DVS = dict(widths=(32, 64, 128), neuron="mlf", T=10, num_classes=10, in_chans=2, img_size=42)


@register_model
def ds_resnet14(**kwargs) -> DSResNet:
    """DS-ResNet-14, stages [2, 2, 2], CIFAR-10 defaults (widths 64-128-256, MLF K=3, T=4)."""
    return build_model(DSResNet, kwargs, depths=(2, 2, 2), **CIFAR10)


@register_model
def ds_resnet20(**kwargs) -> DSResNet:
    """DS-ResNet-20, stages [3, 3, 3], CIFAR-10 defaults (widths 64-128-256, MLF K=3, T=4)."""
    return build_model(DSResNet, kwargs, depths=(3, 3, 3), **CIFAR10)


@register_model
def ds_resnet20_w32(**kwargs) -> DSResNet:
    """DS-ResNet-20 at half the paper's widths, 32-64-128 (this project's member, sized for CPU training:
    the widths of ``spiking_resnet20_w32``, so the methods compare on one graph size; 1.1 M parameters
    against the paper network's 4.3 M)."""
    return build_model(DSResNet, kwargs, depths=(3, 3, 3), **{**CIFAR10, "widths": (32, 64, 128)})


@register_model
def ds_resnet32(**kwargs) -> DSResNet:
    """DS-ResNet-32, stages [5, 5, 5], CIFAR-10 defaults."""
    return build_model(DSResNet, kwargs, depths=(5, 5, 5), **CIFAR10)


@register_model
def ds_resnet44(**kwargs) -> DSResNet:
    """DS-ResNet-44, stages [7, 7, 7], CIFAR-10 defaults."""
    return build_model(DSResNet, kwargs, depths=(7, 7, 7), **CIFAR10)


@register_model
def ds_resnet56(**kwargs) -> DSResNet:
    """DS-ResNet-56, stages [9, 9, 9], CIFAR-10 defaults."""
    return build_model(DSResNet, kwargs, depths=(9, 9, 9), **CIFAR10)


@register_model
def ds_resnet110(**kwargs) -> DSResNet:
    """DS-ResNet-110, stages [18, 18, 18], CIFAR-10 defaults."""
    return build_model(DSResNet, kwargs, depths=(18, 18, 18), **CIFAR10)


@register_model
def ds_resnet20_dvsgesture(**kwargs) -> DSResNet:
    """DS-ResNet-20 for DVS128 Gesture: widths 16-32-64, 2x32x32 frames, 11 classes, T=40, input tdBN."""
    return build_model(DSResNet, kwargs, depths=(3, 3, 3), **DVS_GESTURE)


@register_model
def ds_resnet14_cifar10dvs(**kwargs) -> DSResNet:
    """DS-ResNet-14 for CIFAR10-DVS: widths 32-64-128, 2x42x42 frames, 10 classes, T=10 (no input
    tdBN, as the authors' code)."""
    return build_model(DSResNet, kwargs, depths=(2, 2, 2), **CIFAR10_DVS)
