"""Multi-bit spiking neuron with soft reset (OUR INTERPRETATION).

Xiao et al., "Multi-Bit Mechanism: A Novel Information Transmission Paradigm for Spiking Neural
Networks", arXiv 2407.05739. The paper's exact equations are not available to this project; the
semantics below are the project's interpretation of its abstract (methods.md section 3):

    u[t] = decay * u[t-1] + x[t]                    (decay = lambda = 1 by default; u[0] = v_init)
    s[t] = V_th * q(u[t] / V_th),  q(v) = clip(floor(v * 2^n) / 2^n, 0, 2^m - 2^-n)
    u[t] <- u[t] - s[t]                             (soft reset: what is emitted is subtracted)

so a spike is a fixed-point value with m integer and n fractional bits (m = 1, n = 0 is the
binary spike). ``v_init`` is the initial membrane (an absolute potential, 0 by default); conversion
from a QCFS ANN with shift phi sets it to ``phi V_th / 2^n`` (:mod:`zoo.convert.qcfs`). Gradient:
straight-through, ``ds/du = 1`` on ``[0, 2^m V_th)`` and 0 outside, also through the reset. A
multi-bit spike counts as one event for energy (see evaluation/).
"""

from __future__ import annotations

import torch

from . import spec as specs
from .base import Neuron
from .dynamics import Dynamics, quantize


class _QuantizeSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: torch.Tensor, v_th: float, m: int, n: int) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.top = float(2**m) * v_th
        return quantize(u, v_th, m, n)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (u,) = ctx.saved_tensors
        return grad * ((u >= 0) & (u < ctx.top)).to(grad.dtype), None, None, None


class MultiBit(Neuron):
    name = "multibit"
    defaults = {"m": 2, "n": 0, "v_th": 1.0, "decay": 1.0, "v_init": 0.0}

    def check(self) -> None:
        for key, low in (("m", 1), ("n", 0)):
            value = self.params[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise specs.SpecError(f"neuron 'multibit': {key} must be an integer >= {low}, got {value!r}")
        if self.params["m"] + self.params["n"] > 16:
            raise specs.SpecError("neuron 'multibit': m + n must be at most 16 bits")
        self._positive("v_th", "decay")
        self._finite("v_init")
        if self.params["decay"] > 1:
            raise specs.SpecError(f"neuron 'multibit': decay must be in (0, 1], got {self.params['decay']!r}")

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        p = self.params
        x32 = x.float()
        u = torch.full_like(x32[0], p["v_init"])
        out = []
        for t in range(x.shape[0]):
            u = p["decay"] * u + x32[t]
            s = _QuantizeSTE.apply(u, p["v_th"], p["m"], p["n"])
            u = u - s
            out.append(s)
        return torch.stack(out).to(x.dtype)

    def dynamics(self) -> Dynamics:
        p = self.params
        return Dynamics(fire="multibit", decay=p["decay"], v_th=p["v_th"], reset="soft", int_bits=p["m"],
                        frac_bits=p["n"], v_init=p["v_init"])
