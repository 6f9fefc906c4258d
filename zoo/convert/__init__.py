"""Conversions of trained networks into the SNNs the zoo publishes.

- :mod:`zoo.convert.qcfs`: ANN twins with QCFS activations -> IF neurons (soft reset,
  ``u[0] = V_th / 2``, ``V_th = lambda``) or multi-bit neurons.
- :mod:`zoo.convert.noise`: noise-trained T = 1 networks -> T = N IF networks.

:func:`convert_trained` is what ``zoo train`` runs after training when the recipe has a
``convert`` section: it converts, reports test accuracy against T, and returns the network to save.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

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


def convert_trained(model: nn.Module, arch: str, spec: Any, top1: Callable[[nn.Module], float],
                    source_top1: float) -> tuple[nn.Module, dict[str, Any]]:
    """Convert the trained ``model`` (registered architecture ``arch``) as the recipe's ``convert``
    section ``spec`` says.

    Returns the network to save (running ``spec.T`` steps) and a report: the source network's
    test top-1 at its own T (``source_top1``, which the caller has just measured), and the
    converted network's test top-1 (``top1``) at every T of ``spec.sweep``.
    """
    report: dict[str, Any] = {"kind": spec.kind, "source_T": model.T, "source_top1": source_top1}
    if spec.kind == "noisy_t1_to_tn":
        converted = noisy_to_multistep(model, spec.T)
    else:
        kind = "if" if spec.kind == "qcfs_to_if" else "multibit"
        bits = (spec.m, spec.n) if kind == "multibit" else (0, 0)
        converted = qcfs_to_snn(model, arch, kind, spec.T, *bits)
        report["thresholds"] = layer_scales(model, kind, *bits)
    report["accuracy_vs_T"] = accuracy_vs_T(converted, spec.sweep, top1)
    return converted, report


__all__ = ["ConversionError", "accuracy_vs_T", "convert_module", "convert_trained", "fold_thresholds",
           "layer_scales", "neuron_spec", "noisy_to_multistep", "qcfs_to_snn", "snn_arch"]
