"""Top-1 accuracy and mean cross-entropy of a model on a split, shared over processes."""

from __future__ import annotations

import contextlib
from typing import Iterable

import torch
import torch.nn.functional as F

from .distributed import Context, all_sum


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` (``fp32``: none)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], ctx: Context,
             precision: str = "fp32") -> dict[str, float]:
    """``{"loss", "top1", "samples"}`` of ``model`` (its mean-over-T logits) on ``batches``, this
    process's share of a split; sums are reduced over all processes. top1 is a percentage."""
    was_training = model.training
    model.eval()
    device = ctx.device
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    for x, y in batches:
        with autocast(device, precision):
            logits = model(x).float()
        totals += torch.stack([F.cross_entropy(logits, y, reduction="sum").double(),
                               (logits.argmax(1) == y).sum().double(), torch.tensor(y.numel(), dtype=torch.float64, device=device)])
    loss, correct, count = all_sum(ctx, totals.tolist())
    model.train(was_training)
    if count == 0:
        raise ValueError("evaluation split is empty")
    return {"loss": loss / count, "top1": 100.0 * correct / count, "samples": int(count)}
