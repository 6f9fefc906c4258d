"""Memory layouts the fused kernels (C++ on the CPU, Triton on the GPU) read in place."""

from __future__ import annotations

import torch

# Dynamics.fire as the kernels' integer code
FIRE_CODES = {"step": 0, "mpr": 1, "multibit": 2}


def time_outer_dense(x: torch.Tensor) -> bool:
    """x is non-overlapping and dense and x[t] is the t-th block of numel/T storage elements (a
    contiguous tensor, or e.g. a channels-last ``[T*B, C, H, W]`` activation viewed as
    ``[T, B, C, H, W]``): a kernel can then work on x's storage as ``[T, N]`` without a copy."""
    if x.dim() == 0 or x.numel() == 0:
        return False
    n = x.numel() // x.shape[0]
    if x.shape[0] > 1 and x.stride(0) != n:
        return False
    dims = sorted((st, sz) for st, sz in zip(x.stride()[1:], x.shape[1:]) if sz != 1)
    expected = 1
    for st, sz in dims:
        if st != expected:
            return False
        expected *= sz
    return expected == n


def alloc_forward(x: torch.Tensor, save_h: bool, levels: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The forward kernels' buffers: x as they read it (in place when :func:`time_outer_dense`,
    else a contiguous copy), the output with those strides, and the pre-spike membrane h, float32
    (empty unless ``save_h``), whose storage the kernels index as ``[T, levels, N]``: for several
    levels a ``[T, levels, N]`` tensor, for one level a tensor of x's shape with the output's
    strides (the same storage order), which the CPU backward can return as dL/dx itself
    (:func:`zoo.neurons.backends.cpu_kernel.backward`)."""
    xk = x if time_outer_dense(x) else x.contiguous()
    steps = x.shape[0]
    n = x.numel() // steps if steps else 0
    out = torch.empty_like(xk)
    if not save_h:
        h = torch.empty((0,), dtype=torch.float32, device=x.device)
    elif levels == 1:
        h = torch.empty_like(xk, dtype=torch.float32)
    else:
        h = torch.empty((steps, levels, n), dtype=torch.float32, device=x.device)
    return xk, out, h
