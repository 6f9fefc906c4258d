"""Quantisation-clip-floor-shift activation (QCFS), the ANN side of ANN->SNN conversion.

Bu, Fang, Ding, Dai, Yu, Huang, "Optimal ANN-SNN Conversion for High-accuracy and
Ultra-low-latency Spiking Neural Networks", ICLR 2022 (the quantization clip-floor-shift
activation):

    y = lambda * clip(floor(x * L / lambda + shift) / L, 0, 1)

with L quantisation levels, the shift 1/2 that makes the expected conversion error zero, and a
learnable threshold ``lambda`` per layer (the nn.Parameter :attr:`QCFS.threshold`, initialised to
``threshold_init``). A converted network replaces each QCFS module by an IF or multi-bit neuron
whose threshold is that layer's ``lambda``.

Computed as the authors' code does (putshua/SNN_conversion_QCFS ``MyFloor``, whose ``up`` is
lambda, initialised to 8): ``q = floor(x / lambda * L + shift) / L`` with a straight-through
floor, then ``clamp(q, 0, 1)``, then times ``lambda``. The clamp's gradient is written out with
its bounds included, as PyTorch 1.x computed it when the authors trained (recent PyTorch gives 0
at the bounds, and ``q`` sits exactly on them for whole intervals of x). So where ``0 <= q <= 1``
(``-shift * lambda / L <= x < lambda * (1 + (1 - shift) / L)``): ``dy/dx = 1`` and
``dy/dlambda = (y - x) / lambda``; above it ``dy/dlambda = 1``; below it both are 0.

The forward and backward are one autograd function (:class:`ClipFloorShift`): the forward runs the
same float operations in the same order as the expression above (so its outputs are bit-identical)
and the backward applies the gradients just given, instead of autograd chaining a dozen elementwise
ops through the straight-through floor: on the CPU the activation's forward and backward run about
1.7x faster and a c32 convnet twin's training step about 12 % faster (``benchmarks/training_cost.py``)
with less memory. Only gradient rounding changes (``dy/dx`` is now exactly 1 inside the window).

The module is stateless in time, so an ANN twin runs on the same time-first graph as the SNN.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..neurons import spec as specs
from ..neurons.backends import cpu_kernel
from ..neurons.backends.layout import time_outer_dense


class ClipFloorShift(torch.autograd.Function):
    """``y = lambda * clamp(floor(x / lambda * L + shift) / L, 0, 1)`` with the gradients of the
    module docstring.

    On the CPU (float32, eager) both directions run in the fused backend's C++ library
    (``zoo_qcfs_forward`` / ``zoo_qcfs_backward`` in ``zoo/neurons/backends/cpu_kernel.cpp``): one
    pass each, the same float32 operations in the same order as below (so the same y), saving x and
    one byte per element for the window (below / inside / above); dL/dlambda is summed in double.
    Elsewhere, and under ``torch.compile`` (where Inductor fuses them), the PyTorch expressions
    below: they save x, y and the two window masks, and apply the masks by multiplication (twice as
    fast as ``torch.where`` on the CPU), so an infinite x or gradient outside the window gives NaN
    instead of 0: only once training has already diverged."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, threshold: torch.Tensor, levels: int, shift: float) -> torch.Tensor:
        ctx.levels, ctx.shift = levels, shift
        ctx.kernel = _kernel_applies(x, threshold)
        if ctx.kernel:
            xk = x if time_outer_dense(x) else x.contiguous()
            y, code = torch.empty_like(xk), torch.empty_like(xk, dtype=torch.uint8)
            _library().zoo_qcfs_forward(xk.data_ptr(), y.data_ptr(), code.data_ptr(), xk.numel(), float(threshold),
                                        levels, shift, torch.get_num_threads())
            ctx.save_for_backward(xk, code, threshold)
            return y
        f = (x / threshold).mul_(levels).add_(shift).floor_()
        inside, above = (f >= 0) & (f <= levels), f > levels
        y = f.div_(levels).clamp_(0, 1).mul_(threshold)
        ctx.save_for_backward(x, y, threshold, inside, above)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if ctx.kernel:
            return _kernel_backward(ctx, grad)
        x, y, threshold, inside, above = ctx.saved_tensors
        grad_threshold = None
        if ctx.needs_input_grad[1]:  # dy/dlambda = (y - x) / lambda inside, 1 above, 0 below (one temporary)
            dy_dlambda = (y - x).div_(threshold).mul_(inside).add_(above).mul_(grad)
            accumulate = torch.promote_types(dy_dlambda.dtype, torch.float32)  # bf16/fp16 sum in fp32
            grad_threshold = dy_dlambda.sum(dtype=accumulate).to(threshold.dtype)
            del dy_dlambda
        grad_x = grad * inside if ctx.needs_input_grad[0] else None
        return grad_x, grad_threshold, None, None


def _library():
    return cpu_kernel.library()


def _kernel_applies(x: torch.Tensor, threshold: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == threshold.dtype == torch.float32 and x.numel() > 0
            and not torch.compiler.is_compiling() and _library() is not None)


def _kernel_backward(ctx, grad: torch.Tensor) -> tuple:
    x, code, threshold = ctx.saved_tensors
    if not cpu_kernel.same_layout(grad, x.stride()):  # into the forward's storage order
        grad = torch.empty_like(x).copy_(grad)
    grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
    total = _library().zoo_qcfs_backward(grad.data_ptr(), x.data_ptr(), code.data_ptr(),
                                         None if grad_x is None else grad_x.data_ptr(), x.numel(), float(threshold),
                                         ctx.levels, ctx.shift, torch.get_num_threads())
    grad_threshold = torch.tensor(total, dtype=threshold.dtype) if ctx.needs_input_grad[1] else None
    return grad_x, grad_threshold, None, None


class QCFS(nn.Module):
    name: ClassVar[str] = "qcfs"
    defaults: ClassVar[dict[str, Any]] = {"levels": 4, "shift": 0.5, "threshold_init": 8.0}

    def __init__(self, **params: Any) -> None:
        super().__init__()
        p = specs.check_params("activation 'qcfs'", params, self.defaults)
        levels, shift, init = p["levels"], p["shift"], p["threshold_init"]
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise specs.SpecError(f"activation 'qcfs': levels (L) must be an integer >= 1, got {levels!r}")
        if isinstance(shift, bool) or not isinstance(shift, (int, float)) or not 0 <= shift < 1:
            raise specs.SpecError(f"activation 'qcfs': shift must be a number in [0, 1), got {shift!r}")
        if isinstance(init, bool) or not isinstance(init, (int, float)) or not init > 0:
            raise specs.SpecError(f"activation 'qcfs': threshold_init must be a positive number, got {init!r}")
        self.levels, self.shift, self.threshold_init = levels, float(shift), float(init)
        self.threshold = nn.Parameter(torch.tensor(self.threshold_init))

    def spec(self) -> specs.Spec:
        return {"name": self.name, "levels": self.levels, "shift": self.shift, "threshold_init": self.threshold_init}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ClipFloorShift.apply(x, self.threshold, self.levels, self.shift)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, shift={self.shift}"
