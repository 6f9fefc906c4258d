"""Small real checkpoints for the checkpoint, hub and torch.hub tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch

import zoo
from zoo.checkpoint import save_checkpoint
from zoo.config import CheckpointConfig, InputSpec
from zoo.registry import REGISTRY_FORMAT

ARCH = "spiking_convnet"
NAME = "spiking_convnet.test_fashion_mnist_t2"
KWARGS = {"T": 2, "num_classes": 10, "in_chans": 1, "neuron": "lif"}


def make_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = zoo.create_model(ARCH, **KWARGS)
    with torch.no_grad():  # non-trivial BN statistics, so loading them is tested too
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def make_config(name: str = NAME) -> CheckpointConfig:
    return CheckpointConfig(
        name=name,
        architecture=ARCH,
        arch_kwargs={},  # filled in from the model by save_checkpoint
        input=InputSpec(encoding="direct", size=[1, 28, 28], mean=[0.2860], std=[0.3530]),
        dataset={"name": "fashion_mnist", "split": "train"},
        recipe={"file": "recipes/test.yaml", "epochs": 1},
        metrics={"evaluations": [{"dataset": "fashion_mnist", "split": "test", "T": 2, "top1": 12.5, "top5": 50.0,
                                  "command": f"zoo eval {name} --dataset fashion_mnist"}]},
    )


def write_checkpoint(folder: Path, seed: int = 0, name: str = NAME) -> tuple[torch.nn.Module, Path]:
    model = make_model(seed)
    save_checkpoint(model, folder, make_config(name), card="# test card\n")
    return model, folder


def write_registry(path: Path, entries: list[dict]) -> Path:
    path.write_text(json.dumps({"format_version": REGISTRY_FORMAT, "checkpoints": entries}, indent=2))
    return path


def sample_input(batch: int = 2) -> torch.Tensor:
    return torch.linspace(-1, 2, batch * 28 * 28).reshape(batch, 1, 28, 28)
