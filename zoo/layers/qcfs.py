"""Quantisation-clip-floor-shift activation (QCFS), the ANN side of ANN->SNN conversion.

Bu, Fang, Ding, Dai, Yu, Huang, "Optimal ANN-SNN Conversion for High-accuracy and
Ultra-low-latency Spiking Neural Networks", ICLR 2022 (the quantization clip-floor-shift
activation):

    y = lambda * clip(floor(x * L / lambda + shift) / L, 0, 1)

with L quantisation levels, the shift 1/2 that makes the expected conversion error zero, and a
learnable threshold ``lambda`` per layer (the nn.Parameter :attr:`QCFS.threshold`, initialised to
``threshold_init``). A converted network replaces each QCFS module by an IF or multi-bit neuron
whose threshold is that layer's ``lambda``.

Computed as the authors' code does (putshua/SNN_conversion_QCFS ``MyFloor``, whose ``up`` is
lambda, initialised to 8): ``q = floor(x / lambda * L + shift) / L`` with a straight-through
floor, then ``clamp(q, 0, 1)``, then times ``lambda``. The clamp's gradient is written out with
its bounds included, as PyTorch 1.x computed it when the authors trained (recent PyTorch gives 0
at the bounds, and ``q`` sits exactly on them for whole intervals of x). So where ``0 <= q <= 1``
(``-shift * lambda / L <= x < lambda * (1 + (1 - shift) / L)``): ``dy/dx = 1`` and
``dy/dlambda = (y - x) / lambda``; above it ``dy/dlambda = 1``; below it both are 0.

The module is stateless in time, so an ANN twin runs on the same time-first graph as the SNN.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..neurons import spec as specs


def floor_ste(x: torch.Tensor) -> torch.Tensor:
    """``floor(x)`` forward, identity gradient."""
    return x + (x.floor() - x).detach()


class QCFS(nn.Module):
    name: ClassVar[str] = "qcfs"
    defaults: ClassVar[dict[str, Any]] = {"levels": 4, "shift": 0.5, "threshold_init": 8.0}

    def __init__(self, **params: Any) -> None:
        super().__init__()
        p = specs.check_params("activation 'qcfs'", params, self.defaults)
        levels, shift, init = p["levels"], p["shift"], p["threshold_init"]
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise specs.SpecError(f"activation 'qcfs': levels (L) must be an integer >= 1, got {levels!r}")
        if isinstance(shift, bool) or not isinstance(shift, (int, float)) or not 0 <= shift < 1:
            raise specs.SpecError(f"activation 'qcfs': shift must be a number in [0, 1), got {shift!r}")
        if isinstance(init, bool) or not isinstance(init, (int, float)) or not init > 0:
            raise specs.SpecError(f"activation 'qcfs': threshold_init must be a positive number, got {init!r}")
        self.levels, self.shift, self.threshold_init = levels, float(shift), float(init)
        self.threshold = nn.Parameter(torch.tensor(self.threshold_init))

    def spec(self) -> specs.Spec:
        return {"name": self.name, "levels": self.levels, "shift": self.shift, "threshold_init": self.threshold_init}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = floor_ste(x / self.threshold * self.levels + self.shift) / self.levels
        inside = (q >= 0) & (q <= 1)
        return torch.where(inside, q, q.detach().clamp(0, 1)) * self.threshold

    def extra_repr(self) -> str:
        return f"levels={self.levels}, shift={self.shift}"
