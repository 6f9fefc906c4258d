"""An exponential moving average of the weights, evaluated and exported in place of the raw weights.

Polyak averaging as the fast CIFAR-10 recipes use it (Jordan 2024, airbench; timm's ``ModelEmaV3``
with ``use_warmup``): after optimizer step ``n`` (1-based), every floating-point parameter and buffer
(BN running statistics included) of the averaged copy moves towards the trained model,

    avg <- avg + (1 - d_n) (w - avg),     d_n = min(decay, (1 + n) / (10 + n)),

so the first steps follow the weights closely and the average settles to ``decay`` later. Integer
buffers (BN's ``num_batches_tracked``) are copied. The average is part of the train state, so a
resumed run continues it bit for bit.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class WeightEMA:
    """The moving average of ``model``'s weights, held as a second copy of the model (``module``)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay!r}")
        self.decay = decay
        self.steps = 0
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.steps) / (10 + self.steps))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model`` after one optimizer step."""
        self.steps += 1
        weight = 1.0 - self.current_decay()
        averaged, trained = self.module.state_dict(), model.state_dict()
        floats = [(averaged[k], v) for k, v in trained.items() if v.is_floating_point()]
        torch._foreach_lerp_([a for a, _ in floats], [v for _, v in floats], weight)
        for key, value in trained.items():
            if not value.is_floating_point():
                averaged[key].copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "model": self.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        self.module.load_state_dict(state["model"])
