"""What a measurement ran on: the device and the software versions, as records and cards print them."""

from __future__ import annotations

import platform

import numpy as np
import torch

from . import __version__


def describe_device(device: torch.device) -> str:
    """``"NVIDIA H100 80GB HBM3"`` or ``"cpu (x86_64, 2 threads)"``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def software() -> dict[str, str]:
    """Versions of snnzoo, torch, numpy, Python (and CUDA/cuDNN when a GPU is visible)."""
    versions = {"snnzoo": __version__, "torch": torch.__version__, "numpy": np.__version__,
                "python": platform.python_version()}
    if torch.cuda.is_available():
        versions.update(cuda=str(torch.version.cuda), cudnn=str(torch.backends.cudnn.version()))
    return versions
