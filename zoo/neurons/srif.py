"""Soft-reset IF with the membrane potential rectifier (InfLoR-SNN). Guo et al., "Reducing
Information Loss for Spiking Neural Networks", ECCV 2022 (arXiv 2307.04356); authors' code
yfguo91/Re-Loss (``mem_update``, ``MPR``, ``spike_activation``), which this follows:

    u[t] = u[t-1] + x[t]                      (no leak; u[0] = 0)
    o[t] = H(phi(u[t]) - 1/2)                 (amplitude 1; phi(u) > 1/2 exactly when u > 1/2)
    u[t] <- u[t] - o[t]                       (soft reset by the spike, not detached)

phi (``mpr=True``) is the rectifier of eq. 7, see :func:`zoo.neurons.dynamics.mpr`. The gradient
is the straight-through clamp ``d o / d phi = 1[0 <= phi <= 1]`` chained through ``phi'(u)``.
With ``mpr=False`` phi is the identity (the paper's soft-reset-only ablation).

Difference from the authors' code, on purpose: they write the spike as
``(H - clamp).detach() + clamp``, whose forward value can be off by one float ulp from 0/1; here
the spike is exactly 0 or 1 with the same gradient.
"""

from __future__ import annotations

import torch

from .base import Neuron
from .dynamics import Dynamics, mpr
from .surrogate import STE, heaviside

_CLAMP = STE(width=1.0)  # d/dp clamp(p, 0, 1) = 1[0 <= p <= 1], on p - 1/2


class SRIF(Neuron):
    name = "srif"
    defaults = {"mpr": True}

    def check(self) -> None:
        self._choice("mpr", (True, False))

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        u = torch.zeros_like(x32[0])
        out = []
        for t in range(x.shape[0]):
            u = u + x32[t]
            p = mpr(u) if self.params["mpr"] else u
            o = heaviside(p - 0.5, _CLAMP)
            u = u - o
            out.append(o)
        return torch.stack(out).to(x.dtype)

    def dynamics(self) -> Dynamics:
        return Dynamics(fire="mpr", decay=1.0, reset="soft", mpr=self.params["mpr"])
