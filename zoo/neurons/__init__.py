"""The shared spiking-neuron backend: time-first multi-step neurons with surrogate gradients.

>>> import zoo.neurons as zn
>>> lif = zn.create("lif(tau=0.5, reset='soft')")
>>> zn.create(lif.spec()).spec() == lif.spec()
True

Every neuron maps ``[T, B, ...]`` to ``[T, B, ...]`` and starts from rest on every call. The public
names load their modules on first use (PEP 562), so that ``zoo neurons --help`` imports no PyTorch.
"""

from __future__ import annotations

from ..lazy import lazy_attributes

_LAZY = {
    "Neuron": ".base", "LIF": ".lif", "IF": ".lif", "MLF": ".mlf", "SRIF": ".srif", "MultiBit": ".multibit",
    "NoisyIF": ".noisy_if", "NEURONS": ".factory", "create": ".factory", "list_neurons": ".factory",
    "SURROGATES": ".surrogate", "Surrogate": ".surrogate", "create_surrogate": ".surrogate:create",
    "Dynamics": ".dynamics", "mpr": ".dynamics", "quantize": ".dynamics", "FiringStats": ".stats",
    "record_firing": ".stats", "SpecError": ".spec", "spec": ".spec", "backends": ".backends",
}

__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = sorted(name for name in _LAZY if name not in ("spec", "backends"))
