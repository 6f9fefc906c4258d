"""Leaky integrate-and-fire in the STBP form, and integrate-and-fire (no leak).

Wu et al., "Spatio-temporal backpropagation for training high-performance SNNs", 2018, as used by
STBP-tdBN (Zheng et al., AAAI 2021) and methods.md section 0:

    u[t] = tau * u[t-1] * (1 - o[t-1]) + x[t]      (hard reset to 0; u[0] = 0, IF: u[0] = v_init)
    u[t] = tau * (u[t-1] - V_th * o[t-1]) + x[t]   (soft reset: subtract the threshold)
    o[t] = H(u[t] - V_th)                           (strict: fires when u > V_th)

``tau`` is the multiplicative decay in (0, 1] (STBP's ``decay``), not SpikingJelly's time
constant. Defaults are STBP-tdBN's: tau = 0.25, V_th = 0.5, rectangle surrogate of width 1.
Gradients flow through the reset factor unless ``detach_reset`` is set.
"""

from __future__ import annotations

import torch

from . import spec as specs
from .base import Neuron
from .dynamics import Dynamics
from .surrogate import create as create_surrogate
from .surrogate import heaviside

RECTANGLE = {"name": "rectangle", "width": 1.0}


class LIF(Neuron):
    name = "lif"
    defaults = {"tau": 0.25, "v_th": 0.5, "reset": "hard", "surrogate": RECTANGLE, "detach_reset": False}

    def check(self) -> None:
        self._positive("v_th")
        if "tau" in self.params:
            self._positive("tau")
            if self.params["tau"] > 1:
                raise specs.SpecError(
                    f"neuron {self.name!r}: tau is the decay factor in (0, 1] "
                    f"(u[t] = tau * u[t-1] + x[t]), got {self.params['tau']!r}"
                )
        self._choice("reset", ("hard", "soft"))
        self._choice("detach_reset", (True, False))
        self.params["surrogate"] = create_surrogate(self.params["surrogate"])

    @property
    def tau(self) -> float:
        return self.params.get("tau", 1.0)

    @property
    def v_init(self) -> float:
        return self.params.get("v_init", 0.0)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        tau, v_th, sg = self.tau, self.params["v_th"], self.params["surrogate"]
        hard = self.params["reset"] == "hard"
        x32 = x.float()
        u = torch.full_like(x32[0], self.v_init)
        o = torch.zeros_like(x32[0])
        out = []
        for t in range(x.shape[0]):
            r = o.detach() if self.params["detach_reset"] else o
            u = tau * u * (1 - r) + x32[t] if hard else tau * (u - v_th * r) + x32[t]
            o = heaviside(u - v_th, sg)
            out.append(o)
        return torch.stack(out).to(x.dtype)

    def dynamics(self) -> Dynamics:
        return Dynamics(
            fire="step",
            decay=self.tau,
            v_th=self.params["v_th"],
            reset=self.params["reset"],
            detach_reset=self.params["detach_reset"],
            surrogate=self.params["surrogate"],
            v_init=self.v_init,
        )


class IF(LIF):
    """Integrate-and-fire: LIF without leak (tau = 1). Defaults follow ANN->SNN conversion
    practice (V_th = 1, soft reset), where IF neurons are used most. ``v_init`` is the initial
    membrane potential u[0] (an absolute potential, not a fraction of V_th); conversion from QCFS
    sets it to V_th / 2 (Bu et al., ICLR 2022, Theorem 2)."""

    name = "if"
    defaults = {"v_th": 1.0, "reset": "soft", "surrogate": RECTANGLE, "detach_reset": False, "v_init": 0.0}

    def check(self) -> None:
        super().check()
        self._finite("v_init")
