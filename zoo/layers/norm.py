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
            gamma = self.weight * self.scale if self.affine else x.new_full((self.num_features,), self.scale)
            return F.batch_norm(x, self.running_mean, self.running_var, gamma, self.bias, use_batch_stats, factor, self.eps)

        if use_batch_stats:
            var, mean = torch.var_mean(x.float(), dim=(0, 2, 3), correction=0)  # statistics in fp32 under AMP
            if self.training and self.track_running_stats:
                n = x.numel() / x.shape[1]
                with torch.no_grad():
                    self.running_mean.lerp_(mean, factor)
                    self.running_var.lerp_(var * n / (n - 1), factor)
        else:
            mean, var = self.running_mean, self.running_var
        gain = self.scale / (var.sqrt() + self.eps)
        if self.affine:
            gain = gain * self.weight
        shift = -mean * gain + (self.bias if self.affine else 0.0)
        return x * gain[:, None, None] + shift[:, None, None]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha:.4g}, v_th={self.v_th}, eps_mode={self.eps_mode!r}"
