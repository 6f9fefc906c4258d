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
    """Optional hidden layer (Linear -> activation) and the classifier ``fc``, per time step.

    ``num_classes = 0`` leaves out the classifier (``fc`` is the identity): the readout then gives
    its pre-logits, as a timm model created with ``num_classes=0`` does."""

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
        self.pre_logits_size = hidden or in_features
        self.fc = self.classifier(num_classes)

    def classifier(self, num_classes: int) -> nn.Module:
        """A fresh classifier on the pre-logits (PyTorch's default Linear init), or the identity."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"Readout: num_classes must be a non-negative integer, got {num_classes!r}")
        return nn.Linear(self.pre_logits_size, num_classes) if num_classes else nn.Identity()

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """What the classifier reads: the hidden layer's output, or the pooled features."""
        return x if self.hidden is None else self.act(self.hidden(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pre_logits(x))
