"""Losses on per-step logits ``[T, B, classes]``.

- ``ce``: cross-entropy on the time-averaged logits, the readout of STBP-tdBN, MLF and InfLoR
  (methods.md section 0): ``CE(mean_t logits[t], y)``.
- ``tet``: Temporal Efficient Training (Deng et al., ICLR 2022, eq. 6 without the MSE
  regulariser): ``mean_t CE(logits[t], y)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def loss_fn(name: str, logits: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    if logits.dim() != 3:
        raise ValueError(f"expected per-step logits [T, B, classes], got shape {tuple(logits.shape)}")
    logits = logits.float()
    if name == "ce":
        return F.cross_entropy(logits.mean(0), target, label_smoothing=label_smoothing)
    if name == "tet":
        # the mean over all T*B terms equals the mean over t of the per-step batch means
        return F.cross_entropy(logits.flatten(0, 1), target.repeat(logits.shape[0]), label_smoothing=label_smoothing)
    raise ValueError(f"unknown loss {name!r}; expected 'ce' or 'tet'")
