"""Optimizers and learning-rate schedules of the papers' recipes.

SGD with momentum (MLF: lr 0.1, StepLR(40, 0.1); InfLoR: lr 0.01, cosine over 400 epochs) and
AdamW. Weight decay applies to every parameter, as in both authors' code. The schedule is a pure
function of the epoch, applied at the start of each epoch (both authors step their torch
schedulers once per epoch), so resuming needs only the epoch number.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch

from .recipe import SGD, AdamW, Cosine, Step


def build_optimizer(params: Iterable[torch.nn.Parameter], spec: SGD | AdamW) -> torch.optim.Optimizer:
    if isinstance(spec, SGD):
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov,
                               weight_decay=spec.weight_decay)
    return torch.optim.AdamW(params, lr=spec.lr, betas=tuple(spec.betas), eps=spec.eps, weight_decay=spec.weight_decay)


def lr_at(schedule: Cosine | Step, base_lr: float, epoch: int, epochs: int) -> float:
    """The learning rate for 0-based ``epoch`` of ``epochs``.

    Warm-up: ``base_lr * (epoch + 1) / warmup_epochs`` for the first epochs. Then, with
    ``e = epoch - warmup_epochs`` and ``E = epochs - warmup_epochs``:
    cosine ``min_lr + (base_lr - min_lr) * (1 + cos(pi e / E)) / 2``;
    step ``base_lr * gamma ** (e // step_size)``.
    """
    warmup = schedule.warmup_epochs
    if epoch < warmup:
        return base_lr * (epoch + 1) / warmup
    e, span = epoch - warmup, epochs - warmup
    if isinstance(schedule, Cosine):
        return schedule.min_lr + (base_lr - schedule.min_lr) * (1 + math.cos(math.pi * e / span)) / 2
    return base_lr * schedule.gamma ** (e // schedule.step_size)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
