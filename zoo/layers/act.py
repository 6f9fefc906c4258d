"""The activation slot of every zoo architecture: a spiking neuron, or an ANN twin's activation.

Every model builds each of its activation modules from one spec (``model.neuron_spec``) with
:func:`create_act`. A neuron spec (``"mlf"``, ``"lif(tau=0.5)"``, a dict, see
:mod:`zoo.neurons`) gives a :class:`zoo.neurons.Neuron`; the ANN activation spec ``"qcfs(...)"``
gives a :class:`zoo.layers.qcfs.QCFS`, and ``"relu"`` the plain ANN of the same graph (:class:`ReLU`,
the anchor that the training-cost benchmarks compare the spiking routes with). Because the slot and
the graph code are the same, an ANN twin and its SNN have the same parameter names for every conv,
BN and linear layer.
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from .. import neurons
from ..neurons import spec as specs
from .qcfs import QCFS



class ReLU(nn.ReLU):
    """``max(x, 0)``: the activation of the same graph run as an ordinary ANN (spec ``"relu"``)."""

    name = "relu"

    def __init__(self) -> None:
        super().__init__(inplace=False)

    def spec(self) -> specs.Spec:
        return {"name": self.name}


ANN_ACTIVATIONS = {QCFS.name: QCFS, ReLU.name: ReLU}


def create_act(spec: str | Mapping[str, Any] | nn.Module, backend: str = "auto", **overrides: Any) -> nn.Module:
    """A neuron (with ``backend``) or an ANN activation from its spec; ``overrides`` replace
    parameters of the spec."""
    if isinstance(spec, nn.Module):
        spec = spec.spec()
    parsed = specs.parse(spec)
    parsed.update(overrides)
    if parsed["name"] in ANN_ACTIVATIONS:
        return ANN_ACTIVATIONS[parsed["name"]](**{k: v for k, v in parsed.items() if k != "name"})
    return neurons.create(parsed, backend=backend)
