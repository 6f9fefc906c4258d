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

The noise on the CPU: drawn by the fused backend's C++ library (``zoo_noisy_input``, and
``zoo_noisy_fire``, which also fires, in one pass), from a counter-based generator (element i's bits
are a hash of a per-call seed drawn from torch's global generator and i, so runs stay reproducible
and resumable). Gaussian z takes the standard normal quantile at the centre of one of 2^16
equiprobable bins (so |z| <= 4.33; torch.randn's tails go further, with probability 1e-5); uniform z
is exact to 2^-23. Elsewhere (CUDA, ``torch.compile``, no library) ``torch.randn`` / ``torch.rand``:
the same distribution, another stream of numbers. Every backend draws the same noise in a process.
This is what brings a noise-trained step to the cost of a ReLU step: ``torch.randn`` on a
channels-last activation ran at 24 ns per element here, over half the step
(``benchmarks/training_routes.py``).

Why: an IF neuron with soft reset and constant input z fires at step t iff z + r_t > V_th (strict,
as every zoo neuron), and the residual r_t spreads roughly uniformly over [0, V_th); the noise
stands in for that residual. The
default sigma = 0.2887 = 1/sqrt(12) is the standard deviation of that uniform residual.
"""

from __future__ import annotations

import math

import torch

from . import spec as specs
from .backends.layout import time_outer_dense
from .base import Neuron
from .dynamics import Dynamics
from .lif import RECTANGLE
from .surrogate import create as create_surrogate
from .surrogate import heaviside


def noise_library(x: torch.Tensor):
    """The C++ library that draws the noise for ``x`` (float32 on the CPU, eager), or None."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.numel() == 0 or torch.compiler.is_compiling():
        return None
    from .backends import cpu_kernel

    return cpu_kernel.library()


def draw_seed() -> int:
    """The seed of one noise draw, from torch's global generator (saved and restored with a run)."""
    return int(torch.randint(0, 2**63 - 1, (), dtype=torch.int64))


class NoisyInput(torch.autograd.Function):
    """``x + eps`` drawn by the C++ library in one pass over x; ``d(x + eps)/dx = 1``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lib, seed: int, p: dict) -> torch.Tensor:
        xk = x if time_outer_dense(x) else x.contiguous()
        h = torch.empty_like(xk)
        lib.zoo_noisy_input(xk.data_ptr(), h.data_ptr(), xk.numel(), seed, p["mu"], p["sigma"], p["v_th"],
                            p["noise"] == "uniform", torch.get_num_threads())
        return h

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None, None, None


class NoisyFire(torch.autograd.Function):
    """The training step in one pass of the C++ library: ``o = V_th H(x + eps - V_th)``, saving
    ``h = x + eps``; the backward is the fused backend's IF backward at one time step on h."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lib, seed: int, p: dict, dyn: Dynamics) -> torch.Tensor:
        xk = x if time_outer_dense(x) else x.contiguous()
        out = torch.empty_like(xk)
        h = torch.empty_like(xk) if ctx.needs_input_grad[0] else None
        lib.zoo_noisy_fire(xk.data_ptr(), out.data_ptr(), None if h is None else h.data_ptr(), xk.numel(), seed,
                           p["mu"], p["sigma"], p["v_th"], p["noise"] == "uniform", torch.get_num_threads())
        ctx.dyn, ctx.layout = dyn, (out.unsqueeze(0).shape, out.unsqueeze(0).stride())
        ctx.save_for_backward(h)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        from .backends import cpu_kernel

        (h,) = ctx.saved_tensors
        flat = h.as_strided((1, 1, h.numel()), (h.numel(), h.numel(), 1))  # h's dense storage as [T, K, N]
        grad_x = cpu_kernel.backward(grad.unsqueeze(0), flat, ctx.dyn, ctx.layout, donate_h=False)
        return grad_x.squeeze(0), None, None, None, None


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

    def noisy(self, x32: torch.Tensor) -> torch.Tensor:
        """``x + eps``, ``eps = (mu + sigma z) V_th``, z as the module docstring says (the reference's
        training input; the fused backend draws the same numbers in :class:`NoisyFire`)."""
        p = self.params
        lib = noise_library(x32)
        if lib is not None:
            return NoisyInput.apply(x32, lib, draw_seed(), p)
        if p["noise"] == "gaussian":
            z = torch.randn_like(x32)
        else:  # uniform on [-sqrt(3), sqrt(3)]: zero mean, unit variance
            z = torch.rand_like(x32).mul_(2).sub_(1).mul_(math.sqrt(3.0))
        return z.mul_(p["sigma"]).add_(p["mu"]).mul_(p["v_th"]).add_(x32)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        p = self.params
        v_th, sg = p["v_th"], p["surrogate"]
        x32 = x.float()
        if self.training:
            return (v_th * heaviside(self.noisy(x32) - v_th, sg)).to(x.dtype)
        u = torch.full_like(x32[0], p["mu"] * v_th)
        out = []
        for t in range(x.shape[0]):
            u = u + x32[t]
            o = heaviside(u - v_th, sg)
            u = u - v_th * o
            out.append(v_th * o)
        return torch.stack(out).to(x.dtype)

    def run_dynamics(self, x: torch.Tensor, step) -> torch.Tensor:
        """Training: every element its own stateless neuron at one step (at any T), on the CPU in
        one pass (:class:`NoisyFire`), elsewhere the noisy input through the fused IF step of
        :meth:`dynamics`."""
        if not self.training:
            return step(x)
        x32 = x.float()
        lib = noise_library(x32)
        if lib is not None:
            return NoisyFire.apply(x32, lib, draw_seed(), self.params, self.dynamics()).to(x.dtype)
        return step(self.noisy(x32).unsqueeze(0)).squeeze(0).to(x.dtype)

    def dynamics(self) -> Dynamics | None:
        p = self.params
        if self.training:  # o = V_th H(h - V_th) on h = x + eps, from rest: IF at one step with u[0] = 0
            return Dynamics(fire="step", decay=1.0, v_th=p["v_th"], reset="soft", surrogate=p["surrogate"],
                            amplitude=p["v_th"], v_init=0.0)
        return Dynamics(
            fire="step",
            decay=1.0,
            v_th=p["v_th"],
            reset="soft",
            surrogate=p["surrogate"],
            amplitude=p["v_th"],
            v_init=p["mu"] * p["v_th"],
        )
