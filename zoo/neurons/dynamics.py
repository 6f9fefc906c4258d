"""One description of a neuron's dynamics, shared by the fused backends.

Every neuron family of the zoo (LIF, IF, MLF, SRIF+MPR, multi-bit, and the noisy IF at inference)
is, per level k = 1..K, the recurrence

    h_k[t] = decay * v_k[t-1] + x[t]          (charge; v_k[0] = v_init)
    o_k[t] = fire_k(h_k[t])                    (spike, or multi-bit / multi-level value)
    v_k[t] = reset(h_k[t], o_k[t])             (hard: h * (1 - o);  soft: h - amount * o)
    out[t] = sum_k o_k[t]

so the backward pass through time is a first-order linear recurrence in dL/dh:

    dL/dh[t] = A[t] + B[t] * dL/dh[t+1],   A = dL/dout[t] * do/dh,   B = decay * dv/dh (total)

where ``do/dh`` and ``dv/dh`` depend only on h[t]. The fused backends therefore save h alone and
recompute everything else. The per-family ``reference`` implementations (``lif.py``, ``mlf.py``,
...) spell the papers' equations out step by step; tests prove both paths equal.

The membrane is kept in float32 for every input dtype (fp16/bf16 inputs are upcast), so that all
backends fire on exactly the same comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Literal

import torch

from .surrogate import Surrogate

_TANH_1_5 = math.tanh(1.5)  # a double, as the authors' np.tanh(3 * 0.5)

Fire = Literal["step", "mpr", "multibit"]


@dataclass(frozen=True)
class Dynamics:
    """The parameters a fused backend needs.

    fire:
        ``"step"``: ``o_k = amplitude * H(h - V_k)`` (strict: ``H(x) = 1`` iff ``x > 0``),
        ``V_k = v_th + (k-1) * level_spacing``, surrogate ``g(h - V_k)``; hard or soft reset (soft subtracts ``V_k``).
        ``"mpr"``: InfLoR: ``o = H(phi(h) - 1/2)`` (i.e. ``h > 1/2``), straight-through on
        ``phi(h)`` in [0, 1] chained through ``phi'(h)`` (or on h itself when ``mpr`` is False);
        soft reset subtracts the spike (amplitude 1).
        ``"multibit"``: ``o = v_th * q(h / v_th)`` with m integer and n fractional bits;
        straight-through inside ``[0, 2^m v_th)``; soft reset subtracts ``o``.
    """

    fire: Fire
    decay: float = 1.0
    v_th: float = 1.0
    levels: int = 1
    level_spacing: float = 1.0
    reset: Literal["hard", "soft"] = "hard"
    detach_reset: bool = False
    surrogate: Surrogate | None = None
    amplitude: float = 1.0
    v_init: float = 0.0
    mpr: bool = True
    int_bits: int = 1
    frac_bits: int = 0

    # Per-step tensors are ``[K, N]``: levels first, neurons flattened (``[T, K, N]`` over time).
    def thresholds(self, like: torch.Tensor) -> torch.Tensor | float:
        """``V_k``: a float for one level, else a ``[K, 1]`` tensor of the float32 roundings of
        ``v_th + k * level_spacing`` (computed in double, as the reference's scalars are)."""
        if self.levels == 1:
            return self.v_th
        values = [self.v_th + k * self.level_spacing for k in range(self.levels)]
        return torch.tensor(values, dtype=like.dtype, device=like.device).unsqueeze(-1)

    def reset_step(self, h: torch.Tensor) -> torch.Tensor:
        """v[t] from h[t]."""
        if self.fire == "step":
            vth = self.thresholds(h)
            fired = h > vth
            if self.reset == "hard":
                return h.masked_fill(fired, 0.0)
            return torch.where(fired, h - vth, h)
        if self.fire == "mpr":
            return torch.where(h > 0.5, h - 1.0, h)
        return h - self.quantize(h)

    def fire_all(self, h: torch.Tensor) -> torch.Tensor:
        """o from h (any shape ending in ``[K, N]``), as float32."""
        if self.fire == "step":
            o = (h > self.thresholds(h)).to(torch.float32)
            return o * self.amplitude if self.amplitude != 1.0 else o
        if self.fire == "mpr":
            return (h > 0.5).to(torch.float32)
        return self.quantize(h)

    def quantize(self, h: torch.Tensor) -> torch.Tensor:
        return quantize(h, self.v_th, self.int_bits, self.frac_bits)

    # ---- backward: local partials -------------------------------------------------------------
    def partials(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(do/dh, dv/dh) at every element of h, dv/dh including the path through o."""
        if self.fire == "step":
            vth = self.thresholds(h)
            g = self.surrogate.grad(h - vth)
            do_dh = g * self.amplitude if self.amplitude != 1.0 else g
            if self.reset == "hard":
                keep = (h <= vth).to(h.dtype)
                dv_dh = keep if self.detach_reset else keep - h * g
            else:
                dv_dh = torch.ones_like(h) if self.detach_reset else 1.0 - g * vth
            return do_dh, dv_dh
        if self.fire == "mpr":
            g = mpr_ste_grad(h) if self.mpr else ((h >= 0) & (h <= 1)).to(h.dtype)
            return g, 1.0 - g
        top = float(2**self.int_bits) * self.v_th
        g = ((h >= 0) & (h < top)).to(h.dtype)
        return g, 1.0 - g


def quantize(u: torch.Tensor, v_th: float, m: int, n: int) -> torch.Tensor:
    """Multi-bit spike ``v_th * clip(floor(u / v_th * 2^n) / 2^n, 0, 2^m - 2^-n)`` (methods.md 3)."""
    scale = float(2**n)
    q = torch.floor(u / v_th * scale) / scale
    return q.clamp(0.0, float(2**m) - 1.0 / scale) * v_th


def mpr(u: torch.Tensor) -> torch.Tensor:
    """InfLoR's membrane potential rectifier phi (Guo et al. ECCV 2022, eq. 7), as in the authors'
    code: the three branches apply on ``u > 1``, ``u < 0`` and ``0 < u < 1`` (strict), so phi is
    the identity at exactly 0 and 1."""
    mid = 0.5 * torch.tanh(3.0 * (u - 0.5)) / _TANH_1_5 + 0.5
    out = torch.where((u > 0) & (u < 1), mid, u)
    out = torch.where(u > 1, u.clamp_min(1).pow(1.0 / 3.0), out)
    return torch.where(u < 0, 1.0 - (1.0 - u.clamp_max(0)).pow(1.0 / 3.0), out)


def mpr_grad(u: torch.Tensor) -> torch.Tensor:
    """phi'(u), branch by branch; 1 at exactly u = 0 and u = 1 (phi is the identity there)."""
    t = torch.tanh(3.0 * (u - 0.5))
    mid = 1.5 * (1.0 - t * t) / _TANH_1_5
    out = torch.where((u > 0) & (u < 1), mid, torch.ones_like(u))
    out = torch.where(u > 1, u.clamp_min(1).pow(-2.0 / 3.0) / 3.0, out)
    return torch.where(u < 0, (1.0 - u.clamp_max(0)).pow(-2.0 / 3.0) / 3.0, out)


# The authors clamp the float32 value phi(u) to [0, 1], and in float32 that holds on a slightly
# wider interval than 0 <= u <= 1: the cube roots round to exactly 1 for u = 1 + 2^-23, and for
# -1.5 * 2^-23 < u < 0 (where 1 - u rounds to 1 or to 1 + 2^-23). tests/test_neurons.py checks
# these bounds against mpr() on every float32 near 0 and 1.
MPR_STE_LOW = -1.5 * 2**-23  # exclusive
MPR_STE_HIGH = 1.0 + 2**-23  # inclusive


def mpr_ste_grad(u: torch.Tensor) -> torch.Tensor:
    """d o / d u for InfLoR: ``1[0 <= phi(u) <= 1] * phi'(u)`` on the float32 membrane u."""
    inside = (u > MPR_STE_LOW) & (u <= MPR_STE_HIGH)
    return torch.where(inside, mpr_grad(u), torch.zeros_like(u))
