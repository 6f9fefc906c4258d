"""Backend dispatch. All backends compute the same function; they differ in speed and memory.

- ``torch``: the family's ``reference`` method, the equations step by step under autograd.
- ``fused``: :mod:`.fused`, one custom autograd function, any device: on the CPU a C++/OpenMP
  kernel (:mod:`.cpu_kernel`, compiled on first use), elsewhere PyTorch loops.
- ``triton``: :mod:`.triton`, fused forward/backward GPU kernels registered as torch.library ops.
- ``auto``: ``triton`` for CUDA tensors when Triton imports, else ``fused`` (faster than the
  reference on the CPU; see ``benchmarks/``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .fused import fused_neuron

if TYPE_CHECKING:
    from ..base import Neuron

BACKENDS = ("auto", "torch", "fused", "triton")


def resolve(backend: str, x: torch.Tensor) -> str:
    """The concrete backend that ``backend`` means for input x."""
    if backend != "auto":
        return backend
    if x.is_cuda:
        from . import triton as triton_backend

        if triton_backend.available():
            return "triton"
    return "fused"


def run(neuron: "Neuron", x: torch.Tensor) -> torch.Tensor:
    dyn = neuron.dynamics()
    backend = resolve(neuron.backend, x)
    if dyn is None or backend == "torch":
        return neuron.reference(x)
    if backend == "fused":
        return neuron.run_dynamics(x, lambda inp: fused_neuron(inp, dyn))
    from . import triton as triton_backend

    return neuron.run_dynamics(x, lambda inp: triton_backend.triton_neuron(inp, dyn))
