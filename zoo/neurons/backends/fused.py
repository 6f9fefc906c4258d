"""The ``fused`` backend: one custom autograd function for every neuron family, pure PyTorch.

Autograd through the reference loop saves several tensors per time step (charge, reset factor,
spike, surrogate input). This function saves only the pre-spike membrane h ``[T, K, ...]`` and
recomputes spikes and surrogate gradients in the backward pass, which is the first-order linear
recurrence of :mod:`zoo.neurons.dynamics`:

    dL/dh[t] = A[t] + B[t] * dL/dh[t+1]

A and B need no recurrence, so they are computed for all steps at once (vectorised over T), and
the sequential part is a single fused multiply-add per step. The forward pass works time-step by
time-step on chunks of the neurons small enough to stay in the CPU cache, so the membrane state
and the step's temporaries never go back to memory.
"""

from __future__ import annotations

import torch

from ..dynamics import Dynamics

# Elements per chunk in the forward time loop: the state v and the step's temporaries
# (about 4 float32 arrays) fit in a 1-2 MiB L2 cache. Large enough that per-op overhead is small.
_CPU_CHUNK = 1 << 16


def _forward(x: torch.Tensor, dyn: Dynamics, h: torch.Tensor) -> None:
    """Fill h ``[T, K, N]`` with the pre-spike membrane for x ``[T, N]`` (float32)."""
    steps, n = x.shape
    chunk = n if x.is_cuda else _CPU_CHUNK
    for start in range(0, n, chunk):
        xs, hs = x[:, start : start + chunk], h[:, :, start : start + chunk]
        v = torch.full_like(hs[0], dyn.v_init)
        for t in range(steps):
            if dyn.decay == 1.0:
                torch.add(v, xs[t], out=hs[t])
            else:
                torch.mul(v, dyn.decay, out=hs[t])
                hs[t].add_(xs[t])
            if t + 1 < steps:
                v = dyn.reset_step(hs[t])


class FusedNeuron(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, dyn: Dynamics) -> torch.Tensor:
        shape, dtype = x.shape, x.dtype
        flat = x.reshape(shape[0], -1).to(torch.float32)
        h = flat.new_empty((shape[0], dyn.levels, flat.shape[1]))
        _forward(flat, dyn, h)
        o = dyn.fire_all(h)
        out = o.sum(1) if dyn.levels > 1 else o[:, 0]
        ctx.save_for_backward(h)
        ctx.dyn, ctx.shape, ctx.dtype = dyn, shape, dtype
        return out.to(dtype).reshape(shape)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (h,) = ctx.saved_tensors
        dyn: Dynamics = ctx.dyn
        grad = grad_out.reshape(h.shape[0], 1, -1).to(torch.float32)
        do_dh, dv_dh = dyn.partials(h)
        gh = do_dh.mul_(grad)  # A[t], turned in place into dL/dh[t]
        if dyn.decay != 1.0:
            dv_dh.mul_(dyn.decay)  # B[t]
        for t in range(h.shape[0] - 2, -1, -1):
            gh[t].addcmul_(dv_dh[t], gh[t + 1])
        gx = gh.sum(1) if dyn.levels > 1 else gh[:, 0]
        return gx.to(ctx.dtype).reshape(ctx.shape), None


def fused(x: torch.Tensor, dyn: Dynamics) -> torch.Tensor:
    """Run a neuron over a time-first tensor x ``[T, ...]`` with the fused autograd function."""
    return FusedNeuron.apply(x, dyn)
