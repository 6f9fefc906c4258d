"""Conversions of trained networks into the SNNs the zoo publishes.

- :mod:`zoo.convert.qcfs`: ANN twins with QCFS activations -> IF neurons (soft reset,
  ``u[0] = V_th / 2``, ``V_th = lambda``) or multi-bit neurons.
- :mod:`zoo.convert.noise`: noise-trained T = 1 networks -> T = N IF networks.
- :mod:`zoo.convert.batchnorm`: BatchNorm statistics re-estimated for the converted network.

:func:`convert_trained` is what ``zoo train`` runs after training when the recipe has a
``convert`` section: it converts, reports test accuracy against T, and returns the network to save.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import nn

from .batchnorm import recalibrate_batchnorm
from .noise import noisy_to_multistep
from .qcfs import ConversionError, convert_module, fold_thresholds, layer_scales, neuron_spec, qcfs_to_snn, snn_arch


def accuracy_vs_T(model: nn.Module, sweep: list[int], top1: Callable[[nn.Module], float]) -> dict[str, float]:
    """``{"T": top-1}`` of ``model`` run at each T of ``sweep`` (model.T is restored)."""
    saved, results = model.T, {}
    for steps in sweep:
        model.T = steps
        results[str(steps)] = top1(model)
    model.T = saved
    return results


Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def convert_trained(model: nn.Module, arch: str, spec: Any, top1: Callable[[nn.Module], float],
                    source_top1: float, training_images: Callable[[int], Batches]) -> tuple[nn.Module, dict[str, Any]]:
    """Convert the trained ``model`` (registered architecture ``arch``) as the recipe's ``convert``
    section ``spec`` says; ``training_images(n)`` gives batches of ``n`` training images, not
    augmented, for the conversions that re-estimate BatchNorm statistics.

    Returns the network to save (running ``spec.T`` steps) and a report: the source network's
    test top-1 at its own T (``source_top1``, which the caller has just measured), and the
    converted network's test top-1 (``top1``) at every T of ``spec.sweep``.
    """
    report: dict[str, Any] = {"kind": spec.kind, "source_T": model.T, "source_top1": source_top1}
    if spec.kind == "noisy_t1_to_tn":
        converted = noisy_to_multistep(model, spec.T)
        if spec.bn_recalibration_images:
            seen = recalibrate_batchnorm(converted, training_images(spec.bn_recalibration_images))
            report["bn_recalibration"] = {"images": seen, "T": spec.T}
    else:
        kind = "if" if spec.kind == "qcfs_to_if" else "multibit"
        bits = (spec.m, spec.n) if kind == "multibit" else (0, 0)
        converted = qcfs_to_snn(model, arch, kind, spec.T, *bits)
        report["thresholds"] = layer_scales(model, kind, *bits)
    report["accuracy_vs_T"] = accuracy_vs_T(converted, spec.sweep, top1)
    return converted, report


__all__ = ["ConversionError", "accuracy_vs_T", "convert_module", "convert_trained", "fold_thresholds",
           "layer_scales", "neuron_spec", "noisy_to_multistep", "qcfs_to_snn", "recalibrate_batchnorm", "snn_arch"]
