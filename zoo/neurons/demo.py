"""``zoo neurons``: run every neuron on a real input and check each backend against the reference.

The input is a real image (an MNIST test digit when the IDX file is found, else a fixed random
image), direct-encoded as T identical frames through a fixed random 3x3 convolution, the way the
first layer of a spiking network sees it (with a gain of 4, so that MLF's upper levels and
multi-bit values show). Times are of a second, warm call. For each neuron the table shows the firing rate, the
mean value per event, the forward+backward time of each backend, and whether the backend's
spikes are identical to the reference and its gradients within 1e-5.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..cli import at_least

if TYPE_CHECKING:
    import torch

MNIST_TEST = "t10k-images-idx3-ubyte.gz"


def add_parser(commands) -> None:
    p = commands.add_parser("neurons", help="run every neuron on a real input, compare backends",
                            description="Run every registered neuron on MNIST test digits through a fixed random "
                                        "convolution and print, per neuron, its firing rate, mean value per event, "
                                        "forward+backward time of each backend, and whether each backend agrees "
                                        "with the reference (identical spikes, gradients within 1e-5).")
    p.add_argument("--T", type=at_least(1), default=8, help="time steps (default 8)")
    p.add_argument("--batch-size", type=at_least(1), default=32, help="digits per call (default 32)")
    p.add_argument("--data-dir", default=None, help=f"folder holding {MNIST_TEST} (default: $ZOO_DATA_DIR/mnist)")
    p.set_defaults(run=run)


def load_digits(data_dir: str | None, count: int) -> tuple[torch.Tensor, str]:
    import numpy as np
    import torch

    from ..data.idx import read_idx

    candidates = [Path(d) for d in (data_dir, os.environ.get("ZOO_DATA_DIR")) if d]
    candidates = [c / name for c in candidates for name in ("", "mnist", "MNIST/raw")]
    for folder in candidates:
        path = folder / MNIST_TEST
        if path.is_file():
            images = read_idx(path)  # the zoo's checked IDX reader: one clear error for a bad file
            if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) < count:
                raise ValueError(f"{path}: expected at least {count} images of 28x28, got shape {images.shape}")
            images = images[:count, None].astype(np.float32) / 255.0
            return torch.from_numpy(images), str(path)
    generator = torch.Generator().manual_seed(0)
    return torch.rand(count, 1, 28, 28, generator=generator), "random images (no MNIST found)"


def time_backend(spec: str, backend: str, x: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Forward+backward time of the second call (the first may compile), its output and grad."""
    import torch

    from . import create

    neuron = create(spec, backend=backend).eval()
    for _ in range(2):
        xi = x.detach().requires_grad_()
        start = time.perf_counter()
        out = neuron(xi)
        out.backward(torch.ones_like(out))
        elapsed = time.perf_counter() - start
    return elapsed * 1e3, out.detach(), xi.grad


def run(args: argparse.Namespace) -> int:
    import torch

    from . import create, list_neurons, record_firing
    from .backends import triton as _triton_backend

    images, source = load_digits(args.data_dir, args.batch_size)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 16, 3, padding=1)
    with torch.no_grad():
        current = 4.0 * conv(images).unsqueeze(0).expand(args.T, -1, -1, -1, -1).contiguous()
    backends = ["torch", "fused"] + (["triton"] if _triton_backend.available() else [])
    print(f"input: {source}, current [T, B, C, H, W] = {list(current.shape)}")
    header = f"{'neuron':10s} {'rate':>6s} {'value/ev':>8s} " + " ".join(f"{b + ' ms':>10s}" for b in backends) + "  backends == reference"
    print(header)
    print("-" * len(header))
    failures = 0
    for name in list_neurons():
        neuron = create(name).eval()
        with record_firing(torch.nn.Sequential(neuron)) as stats:
            neuron(current)
        timings, agree = [], []
        _, ref_out, ref_grad = time_backend(name, "torch", current)
        for backend in backends:
            ms, out, grad = time_backend(name, backend, current)
            timings.append(ms)
            same = torch.equal(out, ref_out) and torch.allclose(grad, ref_grad, rtol=1e-5, atol=1e-6)
            agree.append(same)
            failures += not same
        s = stats["0"]
        cells = " ".join(f"{ms:10.1f}" for ms in timings)
        print(f"{name:10s} {s.firing_rate:6.3f} {s.mean_event_value:8.2f} {cells}  {'yes' if all(agree) else 'NO'}")
    return 1 if failures else 0
