"""Surrogate gradients for the Heaviside step.

Every neuron fires with the strict step ``H(x) = 1 if x > 0 else 0`` on ``x = u - V_th`` (the
authors' code of MLF and InfLoR uses ``torch.gt``). In the backward pass ``dH/dx`` is replaced by a
surrogate ``g(x)``. Each surrogate below has unit area (it is the derivative of a smoothed step):

============  =========  =========================================================================
name          parameter  g(x)
============  =========  =========================================================================
rectangle     width a    ``1[|x| < a/2] / a`` (STBP, Wu et al. 2018; the MLF and STBP-tdBN code)
triangle      width a    ``(2/a) * max(0, 1 - 2|x|/a)`` (support |x| < a/2, peak 2/a)
sigmoid       alpha      ``alpha * s * (1 - s)``, ``s = sigmoid(alpha x)`` (SpikingJelly default 4)
atan          alpha      ``(alpha/2) / (1 + (pi/2 * alpha * x)^2)`` (SpikingJelly's ATan, default 2)
ste           width a    ``1[|x| <= a/2] / a``: straight-through clamp, the gradient of
                         ``clamp(x/a + 1/2, 0, 1)`` (InfLoR's ``torch.clamp``, bounds included)
============  =========  =========================================================================
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from . import spec as specs


class Surrogate:
    """Base class: ``grad(x)`` is the surrogate of dH/dx; ``spec()`` round-trips through JSON."""

    name: str = ""
    kind: int = -1  # stable integer id, used by the Triton kernels
    defaults: dict[str, float] = {}

    def __init__(self, **params: Any) -> None:
        merged = specs.check_params(f"surrogate {self.name!r}", params, self.defaults)
        for key, value in merged.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise specs.SpecError(
                    f"surrogate {self.name!r}: parameter {key!r} must be a positive number, got {value!r}"
                )
            setattr(self, key, float(value))

    @property
    def param(self) -> float:
        """The surrogate's single shape parameter (width or slope)."""
        return getattr(self, next(iter(self.defaults)))

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def spec(self) -> specs.Spec:
        return {"name": self.name, **{k: getattr(self, k) for k in self.defaults}}

    def __repr__(self) -> str:
        return specs.format(self.spec())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Surrogate) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(repr(self))


class Rectangle(Surrogate):
    name, kind, defaults = "rectangle", 0, {"width": 1.0}

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return (x.abs() < self.width / 2).to(x.dtype) / self.width


class Triangle(Surrogate):
    name, kind, defaults = "triangle", 1, {"width": 1.0}

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return (1 - x.abs() * (2 / self.width)).clamp_min(0) * (2 / self.width)


class Sigmoid(Surrogate):
    name, kind, defaults = "sigmoid", 2, {"alpha": 4.0}

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1 - s)


class Atan(Surrogate):
    name, kind, defaults = "atan", 3, {"alpha": 2.0}

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * x) ** 2)


class STE(Surrogate):
    name, kind, defaults = "ste", 4, {"width": 1.0}

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return (x.abs() <= self.width / 2).to(x.dtype) / self.width


SURROGATES: dict[str, type[Surrogate]] = {c.name: c for c in (Rectangle, Triangle, Sigmoid, Atan, STE)}


def create(spec: str | Mapping[str, Any] | Surrogate) -> Surrogate:
    """Build a surrogate from ``"atan"``, ``"atan(alpha=3.0)"``, a dict spec or a Surrogate."""
    if isinstance(spec, Surrogate):
        return spec
    parsed = specs.parse(spec)
    cls = SURROGATES.get(parsed["name"])
    if cls is None:
        raise specs.SpecError(
            f"unknown surrogate {parsed['name']!r}; expected one of {', '.join(SURROGATES)}"
        )
    return cls(**{k: v for k, v in parsed.items() if k != "name"})


class SpikeFunction(torch.autograd.Function):
    """``H(x) = 1[x > 0]`` forward, ``grad * g(x)`` backward (the reference path's spike)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x), None


def heaviside(x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    return SpikeFunction.apply(x, surrogate)
