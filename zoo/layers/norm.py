"""Threshold-dependent batch normalisation (tdBN).

Zheng, Wu, Deng, Hu, Li, "Going Deeper With Directly-Trained Larger Spiking Neural Networks",
AAAI 2021 (section "Threshold-dependent batch normalization"): per channel, statistics over time, batch and space, and the normalised value
scaled by ``alpha * V_th`` so that pre-activations sit at the neuron's threshold:

    y = alpha * V_th * (x - mean) / sqrt(var + eps) * gamma + beta

Two codebases the zoo follows differ in where ``eps`` goes (``eps_mode``):

- ``"inside"``: ``sqrt(var + eps)``, as above and as ``nn.BatchNorm2d``. InfLoR's code
  (yfguo91/Re-Loss ``tdBatchNorm2d``, V_th = 0.5).
- ``"outside"``: ``sqrt(var) + eps``. MLF's code (langfengQ/MLF-DSResNet ``tdBatchNorm``,
  V_th = 0.6), in training and evaluation alike.

Both codebases normalise with the biased batch variance, update the running variance with the
unbiased one (``var * n / (n - 1)``), use BatchNorm's defaults ``eps = 1e-5`` and
``momentum = 0.1``, and evaluate with the running statistics; so does this module. The input is
the time-folded ``[T*B, C, H, W]`` tensor (see :mod:`zoo.layers.time`), so the statistics are
over ``(T*B, H, W)`` as tdBN prescribes. ``affine=False`` is the MLF code's normalisation of
raw DVS input frames (``tdBatchNorm(nn.BatchNorm2d(2, affine=False))``).

Speed. ``"inside"`` is BatchNorm with ``alpha * V_th`` folded into gamma, one call of PyTorch's fused
kernel. ``"outside"`` runs on the same fused kernels (:class:`OutsideEpsBatchNorm`): written as
elementwise PyTorch ops its statistics alone (``torch.var_mean``) took 30 ms on a 128x32x32x32 tensor
here, one thread, against 2.5 ms for a whole BatchNorm forward, a third of a DS-ResNet training step.

Parameters and buffers are those of ``nn.BatchNorm2d`` (``weight``, ``bias``, ``running_mean``,
``running_var``, ``num_batches_tracked``), so checkpoints and optimiser grouping treat it as one.
Folding it into a convolution must include the factor :attr:`scale` and the ``eps_mode``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS_MODES = ("inside", "outside")


class TdBatchNorm2d(nn.BatchNorm2d):
    def __init__(
        self,
        num_features: int,
        alpha: float = 1.0,
        v_th: float = 1.0,
        eps_mode: str = "inside",
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
    ) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine)
        if eps_mode not in EPS_MODES:
            raise ValueError(f"TdBatchNorm2d: eps_mode must be one of {EPS_MODES}, got {eps_mode!r}")
        self.alpha = float(alpha)
        self.v_th = float(v_th)
        self.eps_mode = eps_mode

    @property
    def scale(self) -> float:
        """``alpha * V_th``, the factor applied to the normalised value."""
        return self.alpha * self.v_th

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        factor = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch_stats = self.training or not self.track_running_stats
        if self.eps_mode == "inside":  # BatchNorm with the scale folded into gamma: one fused op
            return F.batch_norm(x, self.running_mean, self.running_var, self.gain(x), self.bias, use_batch_stats,
                                factor, self.eps)

        if not use_batch_stats:  # sqrt(var) + eps == sqrt((sqrt(var) + eps)^2 + 0)
            denominator = (self.running_var.sqrt() + self.eps).square()
            return F.batch_norm(x, self.running_mean, denominator, self.gain(x), self.bias, False, 0.0, 0.0)
        track = self.training and self.track_running_stats
        x = x if x.dtype in (torch.float32, torch.float64) else x.float()  # statistics in fp32 under AMP
        return OutsideEpsBatchNorm.apply(x, self.gain(x), self.bias, self.running_mean if track else None,
                                         self.running_var if track else None, factor, self.eps)

    def gain(self, x: torch.Tensor) -> torch.Tensor:
        """``alpha * V_th * gamma`` per channel (``alpha * V_th`` without affine parameters)."""
        return self.weight * self.scale if self.affine else x.new_full((self.num_features,), self.scale)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha:.4g}, v_th={self.v_th}, eps_mode={self.eps_mode!r}"


class OutsideEpsBatchNorm(torch.autograd.Function):
    """``y = gain * (x - mean) / (sqrt(var) + eps) + bias`` over batch statistics, with its exact gradient,
    on PyTorch's fused BatchNorm kernels (MLF's tdBN, ``eps_mode="outside"``).

    Forward: ``batch_norm_update_stats`` gives the mean and biased variance and moves the running
    statistics (momentum, unbiased variance) as BatchNorm does; the output is BatchNorm's
    evaluation kernel with variance ``d^2`` and eps 0, where ``d = sqrt(var) + eps``.

    Backward: with ``s = sqrt(var)`` and ``c = x - mean`` over the ``n`` values of a channel,

        dL/dx = gain / d * (g - mean(g)) - gain / (s * d^2) * c * mean(g * c),

    which is BatchNorm's training backward ``w * r * (g - mean(g)) - w * r^3 * c * mean(g * c)`` for
    ``r = 1 / sqrt(s * d)`` and ``w = gain * sqrt(s / d)``; so one call of that kernel gives dL/dx, and
    its weight gradient ``sum(g * c) * r`` times ``1 / (r * d)`` is dL/dgain. A channel of constant
    input (``s = 0``, ``c = 0``) has only the first term: there ``r = 1 / d`` and ``w = gain``
    (autograd through ``sqrt`` gives NaN there).
    """

    @staticmethod
    def forward(ctx, x, gain, bias, running_mean, running_var, momentum, eps):
        mean, var = torch.ops.aten.batch_norm_update_stats(x, running_mean, running_var, momentum)
        std = var.sqrt()
        d = std + eps
        ctx.save_for_backward(x, gain, mean, std, d)
        return F.batch_norm(x, mean, d.square(), gain, bias, False, 0.0, 0.0)

    @staticmethod
    def backward(ctx, grad):
        x, gain, mean, std, d = ctx.saved_tensors
        constant = std == 0
        r = torch.where(constant, 1.0 / d, (std * d).rsqrt())
        w = torch.where(constant, gain, gain * (std / d).sqrt())
        grad_x, grad_w, grad_bias = torch.ops.aten.native_batch_norm_backward(
            grad.contiguous(memory_format=_layout(x)), x, w, None, None, mean, r, True, 0.0, [True, True, True])
        grad_gain = grad_w / (r * d)
        return grad_x, grad_gain, grad_bias if ctx.needs_input_grad[2] else None, None, None, None, None


def _layout(x: torch.Tensor) -> torch.memory_format:
    """The memory format of ``x``: the gradient must share it (mixed layouts take BatchNorm's slow path, 10x)."""
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format
