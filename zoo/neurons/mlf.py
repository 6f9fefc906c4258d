"""Multi-level firing (MLF). Feng et al., IJCAI 2022 (arXiv 2210.06386), eqs. 6-9; authors' code
langfengQ/MLF-DSResNet (``MLF_unit``), which this follows exactly:

    u_k[t] = tau * u_k[t-1] * (1 - o_k[t-1]) + x[t],    k = 1..K, every level fed the same x
    o_k[t] = H(u_k[t] - V_k),   V_k = V_th + (k-1) * a   (strict >)
    out[t] = o_1[t] + ... + o_K[t]                         (an integer in {0..K})

Each level has its own membrane and hard reset; the surrogate of level k is a rectangle of width a
and height 1/a centred on V_k, so with spacing a the K windows tile (V_th - a/2, V_th + (K-1/2) a).
Gradients flow through the reset factor (nothing detached). Defaults: K = 3, V_th = 0.6,
tau = 0.25, a = 1.
"""

from __future__ import annotations

import torch

from . import spec as specs
from .base import Neuron
from .dynamics import Dynamics
from .surrogate import Rectangle, heaviside


class MLF(Neuron):
    name = "mlf"
    defaults = {"levels": 3, "v_th": 0.6, "tau": 0.25, "width": 1.0}

    def check(self) -> None:
        levels = self.params["levels"]
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise specs.SpecError(f"neuron 'mlf': levels (K) must be an integer >= 1, got {levels!r}")
        self._positive("v_th", "tau", "width")
        if self.params["tau"] > 1:
            raise specs.SpecError(f"neuron 'mlf': tau is the decay factor in (0, 1], got {self.params['tau']!r}")

    def thresholds(self) -> list[float]:
        p = self.params
        return [p["v_th"] + k * p["width"] for k in range(p["levels"])]

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        tau, sg = self.params["tau"], Rectangle(width=self.params["width"])
        x32 = x.float()
        u = [torch.zeros_like(x32[0]) for _ in self.thresholds()]
        o = [torch.zeros_like(x32[0]) for _ in self.thresholds()]
        out = []
        for t in range(x.shape[0]):
            for k, v_k in enumerate(self.thresholds()):
                u[k] = tau * u[k] * (1 - o[k]) + x32[t]
                o[k] = heaviside(u[k] - v_k, sg)
            out.append(sum(o))
        return torch.stack(out).to(x.dtype)

    def dynamics(self) -> Dynamics:
        p = self.params
        return Dynamics(
            fire="step",
            decay=p["tau"],
            v_th=p["v_th"],
            levels=p["levels"],
            level_spacing=p["width"],
            reset="hard",
            surrogate=Rectangle(width=p["width"]),
        )
