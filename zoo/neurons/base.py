"""The neuron module: parameter checking, spec round-trip, backend dispatch, firing statistics."""

from __future__ import annotations

import math
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from . import spec as specs
from .backends import BACKENDS, run
from .dynamics import Dynamics
from .stats import FiringStats


class Neuron(nn.Module):
    """A multi-step spiking neuron: ``[T, B, ...] -> [T, B, ...]``, time first.

    Every call starts from the resting state (state never leaks between calls, so no reset is
    needed between batches). Subclasses define ``name``, ``defaults``, ``check`` (parameter
    validation), ``reference`` (the paper's equations, step by step, differentiated by autograd)
    and ``dynamics`` (the same neuron for the fused backends).

    ``backend`` is ``"torch"`` (the reference), ``"fused"`` (a custom autograd function that keeps
    only the pre-spike membrane), ``"triton"`` (fused GPU kernels) or ``"auto"`` (the fastest
    correct one for the input's device). The backend changes speed and memory, never results.
    """

    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]

    def __init__(self, backend: str = "auto", **params: Any) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise specs.SpecError(f"neuron {self.name!r}: unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.params = specs.check_params(f"neuron {self.name!r}", params, self.defaults)
        self.check()
        self.stats: FiringStats | None = None

    # -- to be defined by each family ------------------------------------------------------------
    def check(self) -> None:
        """Validate (and normalise) ``self.params``; raise SpecError naming the parameter."""

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def dynamics(self) -> Dynamics | None:
        """The fused-backend description, or None where only the reference applies."""
        return None

    def run_dynamics(self, x: torch.Tensor, step: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The fused backends' output: ``step`` runs :meth:`dynamics` over a time-first tensor. A
        family whose fused form needs its input prepared (noise, a different time axis) overrides this."""
        return step(x)

    # -- shared ----------------------------------------------------------------------------------
    def spec(self) -> specs.Spec:
        """JSON-able dict spec; ``zoo.neurons.create(neuron.spec())`` rebuilds an equal neuron."""
        return {"name": self.name, **{k: _jsonable(v) for k, v in self.params.items()}}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ValueError(
                f"neuron {self.name!r}: expected a time-first tensor [T, B, ...] with at least 2 "
                f"dimensions, got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"neuron {self.name!r}: expected a floating-point input, got {x.dtype}")
        out = run(self, x)
        if self.stats is not None:
            self.stats.update(out)
        return out

    def extra_repr(self) -> str:
        return f"{specs.format(self.spec())}, backend={self.backend!r}"

    # -- helpers for subclasses ------------------------------------------------------------------
    def _positive(self, *keys: str) -> None:
        for key in keys:
            value = self.params[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise specs.SpecError(f"neuron {self.name!r}: {key} must be a positive number, got {value!r}")
            self.params[key] = float(value)

    def _finite(self, *keys: str) -> None:
        for key in keys:
            value = self.params[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise specs.SpecError(f"neuron {self.name!r}: {key} must be a finite number, got {value!r}")
            self.params[key] = float(value)

    def _choice(self, key: str, options: tuple[Any, ...]) -> None:
        if self.params[key] not in options:
            raise specs.SpecError(f"neuron {self.name!r}: {key} must be one of {options}, got {self.params[key]!r}")


def _jsonable(value: Any) -> Any:
    return value.spec() if hasattr(value, "spec") else value
