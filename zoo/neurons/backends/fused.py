"""The ``fused`` backend: one custom autograd function for every neuron family.

Autograd through the reference loop saves several tensors per time step (charge, reset factor,
spike, surrogate input). This function saves only the pre-spike membrane h ``[T, K, N]`` and
recomputes spikes and surrogate gradients in the backward pass, which is the first-order linear
recurrence of :mod:`zoo.neurons.dynamics`:

    dL/dh[t] = A[t] + B[t] * dL/dh[t+1]

On the CPU both directions run in :mod:`.cpu_kernel`, a C++/OpenMP kernel compiled on first use:
it streams every array once, in its own storage order, saves h only when a gradient is needed, and
writes dL/dx over h's memory when the autograd graph is not retained (one level, float32).

Elsewhere (and on the CPU when the kernel is disabled with ``ZOO_CPU_KERNEL=0`` or cannot be
built) the two directions are the loops below, over time, of elementwise operations on
``[K, N]``. For large tensors they are compiled by TorchInductor (``torch.compile``) into one
kernel each that keeps the state in registers and touches every input and output once. Inductor
does not contract ``a * b + c`` into a fused multiply-add, so the compiled forward fires on exactly
the reference's comparisons. Small tensors, machines without a working compiler, and
``ZOO_COMPILE=0`` run the same loops eagerly.
"""

from __future__ import annotations

import os
import warnings

import torch

from ..dynamics import Dynamics
from . import cpu_kernel

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


def _graph_is_kept() -> bool:
    """The running backward keeps the autograd graph (``retain_graph`` or ``create_graph``), or
    this torch cannot tell."""
    keep_graph = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    return keep_graph is None or keep_graph()


class FusedNeuron(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, dyn: Dynamics) -> torch.Tensor:
        shape, dtype = x.shape, x.dtype
        ctx.dyn, ctx.shape, ctx.dtype = dyn, shape, dtype
        ctx.kernel = x.device.type == "cpu" and cpu_kernel.supports(dyn, dtype) and cpu_kernel.available()
        if ctx.kernel:
            out, h = cpu_kernel.forward(x.detach(), dyn, save_h=ctx.needs_input_grad[0])
            ctx.layout = (out.shape, out.stride())
            ctx.save_for_backward(h)
            return out
        flat = x.detach().reshape(shape[0], -1).to(torch.float32)
        h, out = _maybe_compiled(forward_steps, flat)(flat, dyn)
        ctx.save_for_backward(h)
        return out.to(dtype).reshape(shape)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (h,) = ctx.saved_tensors
        if ctx.kernel:
            # h is this function's own buffer, needed again only if the graph is kept
            donate = not torch.compiler.is_compiling() and not _graph_is_kept()
            return cpu_kernel.backward(grad_out.detach(), h, ctx.dyn, ctx.layout, donate_h=donate), None
        grad = grad_out.detach().reshape(h.shape[0], -1).to(torch.float32)
        gx = _maybe_compiled(backward_steps, grad)(grad, h, ctx.dyn)
        return gx.to(ctx.dtype).reshape(ctx.shape), None


def fused_neuron(x: torch.Tensor, dyn: Dynamics) -> torch.Tensor:
    """Run a neuron over a time-first tensor x ``[T, ...]`` with the fused autograd function."""
    return FusedNeuron.apply(x, dyn)
