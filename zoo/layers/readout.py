"""The readout: a linear layer applied at every time step (methods.md section 0).

The features ``[T, B, F]`` (globally average-pooled or flattened) go through an optional hidden
layer (Linear -> activation, e.g. the FC-256 of tdBN's ResNet-19, Zheng et al. AAAI 2021) and the
output layer ``fc``, giving per-step logits ``[T, B, num_classes]``. The model averages them over
T for its prediction (``model.forward``); the per-step logits serve the TET loss (Deng et al.,
ICLR 2022: the mean over t of CE(logits[t], y)).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class Readout(nn.Module):
    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: int = 0,
        act_layer: Callable[[], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if hidden and act_layer is None:
            raise ValueError("Readout: a hidden layer needs act_layer")
        self.hidden = nn.Linear(in_features, hidden) if hidden else None
        self.act = act_layer() if hidden else None
        self.fc = nn.Linear(hidden or in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hidden is not None:
            x = self.act(self.hidden(x))
        return self.fc(x)
