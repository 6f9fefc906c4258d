"""ANN -> SNN conversion of QCFS-trained ANN twins: to IF neurons, or to multi-bit neurons.

QCFS (Bu et al., "Optimal ANN-SNN Conversion for High-accuracy and Ultra-low-latency Spiking
Neural Networks", ICLR 2022, eq. 14; :class:`zoo.layers.QCFS`) trains an ANN whose activation is

    y = lambda * clip(floor(x L / lambda + phi) / L, 0, 1)

with a learned threshold lambda per layer. Two conversions:

- IF (Bu et al. 2022, Theorem 2): an integrate-and-fire neuron with soft reset, threshold
  ``V_th = lambda`` and initial membrane ``u[0] = phi * V_th`` (phi = 1/2). For a constant input z
  it fires ``clip(floor(T z / lambda + phi), 0, T)`` spikes in T steps, so its rate times V_th is
  exactly the QCFS output at ``T = L``, and the expected conversion error is zero at every T.
- Multi-bit (Xiao et al., arXiv 2407.05739; OUR INTERPRETATION, methods.md section 3): with
  ``L = 2^(m+n) - 1`` the QCFS output takes the values ``k lambda / L``, k = 0..2^(m+n) - 1, which
  is exactly a multi-bit spike ``V_th q(u / V_th)`` with ``V_th = lambda 2^n / L`` and initial
  membrane ``u[0] = phi V_th / 2^n`` (the shift in units of one quantisation step). At T = 1 the
  SNN is the ANN. At T > 1 the multi-bit IF neuron (soft reset by what it emits) averages finer
  quantisations of the same input, ``floor(T z' + phi) / T`` in steps: with phi = 1/2 that is
  unbiased, as for IF; with phi = 0 every layer gains about half a step over the floor the ANN
  was trained with, so twins meant for T > 1 are trained with ``qcfs(shift=0.5)``.

Thresholds differ per layer but a zoo model has one neuron spec, so each layer's threshold
``theta`` is folded into the weights: the layer producing the neuron's input (its BN, or the
conv/linear when there is no BN) is divided by theta, the neuron runs with ``V_th = 1``, and the
next conv/linear is multiplied by theta. Average pooling and flattening between them are linear,
so the network computes the same function (up to float rounding). Folding needs a feedforward
graph in which module registration order is execution order (the zoo's VGGs and convnets);
residual networks are refused. The IF neuron is the zoo's ``if`` neuron with ``v_init = phi``.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..layers import QCFS, BasicBlock, create_act
from ..neurons.lif import RECTANGLE
from ..registry import build_architecture

AFFINE = (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)
WEIGHTED = (nn.Conv2d, nn.Linear)
LINEAR_BETWEEN = (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Identity, nn.Dropout)


class ConversionError(ValueError):
    """A network that this converter cannot convert exactly; the message says why."""


def snn_arch(ann_arch: str) -> str:
    """The registered SNN of an ANN twin: ``vgg16_qcfs`` -> ``spiking_vgg16``,
    ``convnet_nmnist_qcfs`` -> ``spiking_convnet_nmnist``."""
    if not ann_arch.endswith("_qcfs"):
        raise ConversionError(f"{ann_arch!r} is not an ANN twin (a name ending in '_qcfs')")
    return "spiking_" + ann_arch[: -len("_qcfs")]


def if_neuron_spec(shift: float) -> dict[str, Any]:
    """IF, soft reset, V_th = 1, ``u[0] = shift`` (the folded form of ``u[0] = phi * lambda``)."""
    return {"name": "if", "v_th": 1.0, "reset": "soft", "surrogate": dict(RECTANGLE), "detach_reset": False, "v_init": shift}


def multibit_neuron_spec(m: int, n: int, shift: float) -> dict[str, Any]:
    """m.n-bit, soft reset, V_th = 1, ``u[0] = shift / 2^n`` (the folded form of ``phi V_th / 2^n``)."""
    return {"name": "multibit", "m": m, "n": n, "v_th": 1.0, "decay": 1.0, "v_init": shift / 2**n}


def layer_scales(ann: nn.Module, kind: str, m: int = 0, n: int = 0) -> dict[str, float]:
    """``{qcfs module name: theta}``: the threshold of the neuron that replaces it (before folding).
    IF: ``theta = lambda``; multi-bit: ``theta = lambda 2^n / L``, which needs ``L = 2^(m+n) - 1``."""
    scales = {}
    for name, module in ann.named_modules():
        if not isinstance(module, QCFS):
            continue
        lam = float(module.threshold.detach())
        if lam <= 0:
            raise ConversionError(f"{name}: learned threshold lambda = {lam} is not positive")
        if kind == "if":
            scales[name] = lam
            continue
        if module.levels != 2 ** (m + n) - 1:
            raise ConversionError(f"{name}: QCFS levels L = {module.levels}, but m = {m}, n = {n} bits need "
                                  f"L = 2^(m+n) - 1 = {2 ** (m + n) - 1}")
        scales[name] = lam * 2**n / module.levels
    if not scales:
        raise ConversionError(f"{type(ann).__name__} has no QCFS activation to convert")
    return scales


def fold_thresholds(ann: nn.Module, scales: dict[str, float]) -> nn.Module:
    """A copy of ``ann`` whose weights carry each QCFS layer's ``theta`` (see the module docstring)."""
    if any(isinstance(m, BasicBlock) for m in ann.modules()):
        raise ConversionError(f"{type(ann).__name__} has residual blocks: folding thresholds into weights needs a "
                              "feedforward graph (VGG, convnet)")
    net = copy.deepcopy(ann)
    order = [(name, module) for name, module in net.named_modules()
             if isinstance(module, (*AFFINE, QCFS)) or (not list(module.children()) and not isinstance(module, LINEAR_BETWEEN))]
    for i, (name, module) in enumerate(order):
        if not isinstance(module, QCFS):
            continue
        theta = scales[name]
        producer = order[i - 1][1] if i > 0 else None
        if not isinstance(producer, AFFINE) or getattr(producer, "weight", None) is None:
            raise ConversionError(f"{name}: the layer before it must be an affine BN, conv or linear layer to fold its threshold")
        consumer = order[i + 1][1] if i + 1 < len(order) else None
        if not isinstance(consumer, WEIGHTED):
            raise ConversionError(f"{name}: the layer after it must be a conv or linear layer (only linear pooling "
                                  f"between), found {type(consumer).__name__}")
        with torch.no_grad():
            producer.weight.div_(theta)
            if producer.bias is not None:
                producer.bias.div_(theta)
            consumer.weight.mul_(theta)
    return net


def neuron_spec(ann: nn.Module, kind: str, m: int = 0, n: int = 0) -> dict[str, Any]:
    """The (folded, ``V_th = 1``) neuron that replaces every QCFS activation of ``ann``."""
    shifts = {module.shift for module in ann.modules() if isinstance(module, QCFS)}
    if len(shifts) != 1:
        raise ConversionError(f"{type(ann).__name__}: the QCFS layers need one common shift, found {sorted(shifts)}")
    shift = shifts.pop()
    return multibit_neuron_spec(m, n, shift) if kind == "multibit" else if_neuron_spec(shift)


def convert_module(ann: nn.Module, kind: str, m: int = 0, n: int = 0) -> nn.Module:
    """A converted copy of any feedforward module tree: thresholds folded into the weights and a
    neuron (``kind`` ``"if"`` or ``"multibit"``) in every QCFS slot. Neurons are time-first: feed
    the result ``[T, B, ...]`` inputs and average its outputs over T."""
    if kind not in ("if", "multibit"):
        raise ConversionError(f"kind must be 'if' or 'multibit', got {kind!r}")
    spec = neuron_spec(ann, kind, m, n)
    net = fold_thresholds(ann, layer_scales(ann, kind, m, n))
    for module in list(net.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, QCFS):
                setattr(module, child_name, create_act(spec))
    return net.eval()


def qcfs_to_snn(ann: nn.Module, arch: str, kind: str, T: int, m: int = 0, n: int = 0) -> nn.Module:
    """The registered SNN of the zoo ANN twin ``ann`` (architecture ``arch``, e.g. ``vgg16_qcfs``)
    with IF (``kind="if"``) or multi-bit (``kind="multibit"``) neurons, running T steps."""
    converted = convert_module(ann, kind, m, n)
    kwargs = {**ann.arch_kwargs, "neuron": neuron_spec(ann, kind, m, n), "T": T}
    snn = build_architecture(snn_arch(arch), **kwargs).to(next(ann.parameters()).device)
    snn.load_state_dict(converted.state_dict(), strict=True)
    return snn.eval()
