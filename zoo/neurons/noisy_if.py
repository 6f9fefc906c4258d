"""Noisy IF neuron for T = 1 training, converted to T = N inference (OUR INTERPRETATION).

Jiang & Zhang, "A noise based novel strategy for faster SNN training", Neural Computation 2023
(arXiv 2211.05453). Only the abstract is available to this project; methods.md section 4 gives the
project's semantics, implemented here:

- training mode (stateless in time; normally T = 1):
  ``o = V_th * H(x + eps - V_th)``, ``eps ~ N(mu V_th, (sigma V_th)^2)`` drawn fresh per element
  and forward pass (``noise="uniform"``: uniform with the same mean and standard deviation);
  surrogate gradient for H.
- eval mode (the converted T = N network; no noise): IF with soft reset and initial membrane
  ``u[0] = mu V_th``:  ``u[t] = u[t-1] + x[t]``, ``o[t] = V_th H(u[t] - V_th)``,
  ``u[t] <- u[t] - o[t]``; the model averages its logits over the N steps.

Why: an IF neuron with soft reset and constant input z fires at step t iff z + r_t >= V_th, and the
residual r_t spreads roughly uniformly over [0, V_th); the noise stands in for that residual. The
default sigma = 0.2887 = 1/sqrt(12) is the standard deviation of that uniform residual.
"""

from __future__ import annotations

import math

import torch

from . import spec as specs
from .base import Neuron
from .dynamics import Dynamics
from .lif import RECTANGLE
from .surrogate import create as create_surrogate
from .surrogate import heaviside


class NoisyIF(Neuron):
    name = "noisy_if"
    defaults = {"mu": 0.5, "sigma": 0.2887, "noise": "gaussian", "v_th": 1.0, "surrogate": RECTANGLE}

    def check(self) -> None:
        self._positive("v_th")
        self._finite("mu", "sigma")
        if self.params["sigma"] < 0:
            raise specs.SpecError(f"neuron 'noisy_if': sigma must be >= 0, got {self.params['sigma']!r}")
        self._choice("noise", ("gaussian", "uniform"))
        self.params["surrogate"] = create_surrogate(self.params["surrogate"])

    def noise_like(self, x: torch.Tensor) -> torch.Tensor:
        p = self.params
        if p["noise"] == "gaussian":
            z = torch.randn_like(x)
        else:  # uniform on [-sqrt(3), sqrt(3)]: zero mean, unit variance
            z = (torch.rand_like(x) * 2 - 1) * math.sqrt(3.0)
        return (p["mu"] + p["sigma"] * z) * p["v_th"]

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        p = self.params
        v_th, sg = p["v_th"], p["surrogate"]
        x32 = x.float()
        if self.training:
            return (v_th * heaviside(x32 + self.noise_like(x32) - v_th, sg)).to(x.dtype)
        u = torch.full_like(x32[0], p["mu"] * v_th)
        out = []
        for t in range(x.shape[0]):
            u = u + x32[t]
            o = heaviside(u - v_th, sg)
            u = u - v_th * o
            out.append(v_th * o)
        return torch.stack(out).to(x.dtype)

    def dynamics(self) -> Dynamics | None:
        if self.training:
            return None  # stateless noisy step: the reference is already a single fused expression
        p = self.params
        return Dynamics(
            fire="step",
            decay=1.0,
            v_th=p["v_th"],
            reset="soft",
            surrogate=p["surrogate"],
            amplitude=p["v_th"],
            v_init=p["mu"] * p["v_th"],
        )
