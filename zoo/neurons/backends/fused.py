"""The ``fused`` backend: one custom autograd function for every neuron family, pure PyTorch.

Autograd through the reference loop saves several tensors per time step (charge, reset factor,
spike, surrogate input). This function saves only the pre-spike membrane h ``[T, K, N]`` and
recomputes spikes and surrogate gradients in the backward pass, which is the first-order linear
recurrence of :mod:`zoo.neurons.dynamics`:

    dL/dh[t] = A[t] + B[t] * dL/dh[t+1]

Both directions are written once, as loops over time of elementwise operations on ``[K, N]``.
For large tensors the two loops are compiled by TorchInductor (``torch.compile``) into one
kernel each that keeps the state in registers and touches every input and output once. On the CPU
that is a C++/OpenMP loop. Inductor does not contract ``a * b + c`` into a fused multiply-add, so
the compiled forward fires on exactly the reference's comparisons. Small tensors, machines
without a working compiler, and ``ZOO_COMPILE=0`` run the same loops eagerly.
"""

from __future__ import annotations

import os
import warnings

import torch

from ..dynamics import Dynamics

# Below this many elements (T x neurons) compiling does not pay for itself.
COMPILE_MIN_ELEMENTS = 1 << 20
# Each distinct Dynamics and T is one more compiled graph of the same two functions.
RECOMPILE_LIMIT = 128
_compiled: dict[str, object] = {}
_compile_broken = False


def forward_steps(x: torch.Tensor, dyn: Dynamics) -> tuple[torch.Tensor, torch.Tensor]:
    """x ``[T, N]`` float32 -> (h ``[T, K, N]``, out ``[T, N]``)."""
    v = torch.full((dyn.levels, x.shape[1]), dyn.v_init, dtype=x.dtype, device=x.device)
    hs, outs = [], []
    for t in range(x.shape[0]):
        h = v + x[t] if dyn.decay == 1.0 else v * dyn.decay + x[t]
        o = dyn.fire_all(h)
        hs.append(h)
        outs.append(o.sum(0) if dyn.levels > 1 else o[0])
        v = dyn.reset_step(h)
    return torch.stack(hs), torch.stack(outs)


def backward_steps(grad: torch.Tensor, h: torch.Tensor, dyn: Dynamics) -> torch.Tensor:
    """dL/dout ``[T, N]`` and h ``[T, K, N]`` -> dL/dx ``[T, N]``."""
    steps = h.shape[0]
    grads: list[torch.Tensor] = [grad[0]] * steps
    gh = None
    for t in range(steps - 1, -1, -1):
        do_dh, dv_dh = dyn.partials(h[t])
        a = do_dh * grad[t]
        if gh is not None:
            a = a + dv_dh * dyn.decay * gh
        gh = a
        grads[t] = a.sum(0) if dyn.levels > 1 else a[0]
    return torch.stack(grads)


def _maybe_compiled(fn, x: torch.Tensor):
    """``fn`` compiled by Inductor when x is large enough and compiling works, else ``fn``."""
    if _compile_broken or x.numel() < COMPILE_MIN_ELEMENTS or os.environ.get("ZOO_COMPILE", "1") == "0":
        return fn
    if fn.__name__ not in _compiled:
        _compiled[fn.__name__] = torch.compile(fn, dynamic=True, fullgraph=True)
    compiled = _compiled[fn.__name__]

    def run(*args):
        global _compile_broken
        try:  # one recompilation per distinct Dynamics (and T): allow many more than the default 8
            with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
                return compiled(*args)
        except Exception as err:  # no C++ compiler, unsupported platform, ...
            _compile_broken = True
            warnings.warn(f"zoo.neurons: torch.compile of the fused neuron failed ({err!r:.200}); running it eagerly")
            return fn(*args)

    return run


class FusedNeuron(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, dyn: Dynamics) -> torch.Tensor:
        shape, dtype = x.shape, x.dtype
        flat = x.detach().reshape(shape[0], -1).to(torch.float32)
        h, out = _maybe_compiled(forward_steps, flat)(flat, dyn)
        ctx.save_for_backward(h)
        ctx.dyn, ctx.shape, ctx.dtype = dyn, shape, dtype
        return out.to(dtype).reshape(shape)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (h,) = ctx.saved_tensors
        grad = grad_out.detach().reshape(h.shape[0], -1).to(torch.float32)
        gx = _maybe_compiled(backward_steps, grad)(grad, h, ctx.dyn)
        return gx.to(ctx.dtype).reshape(ctx.shape), None


def fused_neuron(x: torch.Tensor, dyn: Dynamics) -> torch.Tensor:
    """Run a neuron over a time-first tensor x ``[T, ...]`` with the fused autograd function."""
    return FusedNeuron.apply(x, dyn)
