"""The neuron registry: every neuron class by its spec name, and ``create`` from a spec."""

from __future__ import annotations

from typing import Any, Mapping

from . import spec as specs
from .base import Neuron
from .lif import IF, LIF
from .mlf import MLF
from .multibit import MultiBit
from .noisy_if import NoisyIF
from .spec import SpecError
from .srif import SRIF

NEURONS: dict[str, type[Neuron]] = {c.name: c for c in (LIF, IF, MLF, SRIF, MultiBit, NoisyIF)}


def create(spec: str | Mapping[str, Any] | Neuron, backend: str = "auto", **overrides: Any) -> Neuron:
    """Build a neuron from a name, a spec string ``"lif(tau=0.5)"`` or a dict spec.

    ``overrides`` replace parameters of the spec; ``backend`` is not part of the spec because it
    never changes results.
    """
    if isinstance(spec, Neuron):
        spec = spec.spec()
    parsed = specs.parse(spec)
    parsed.update(overrides)
    cls = NEURONS.get(parsed["name"])
    if cls is None:
        raise SpecError(f"unknown neuron {parsed['name']!r}; expected one of {', '.join(NEURONS)}")
    return cls(backend=backend, **{k: v for k, v in parsed.items() if k != "name"})


def list_neurons() -> list[str]:
    return list(NEURONS)

