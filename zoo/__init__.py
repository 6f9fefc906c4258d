"""snnzoo: a model zoo of spiking neural networks.

>>> import zoo
>>> model = zoo.create_model("spiking_convnet", T=4, neuron="mlf")  # random weights
>>> zoo.list_models("ds_resnet*")                                     # registered architectures
>>> zoo.list_models(pretrained=True)                                  # published checkpoints

``import zoo`` is light: the names below load their modules (and PyTorch) on first use (PEP 562),
so that the ``zoo`` command starts at once and imports only what its subcommand needs.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .allocator import keep_freed_memory  # noqa: E402
from .lazy import lazy_attributes  # noqa: E402

ALLOCATOR_KEEPS_FREED_MEMORY = keep_freed_memory()  # see zoo/allocator.py; ZOO_ALLOCATOR=default opts out

# public name -> the module that defines it, imported when the name is first used
_LAZY = {"create_model": ".factory", "create_transform": ".transforms", "list_models": ".registry",
         "register_model": ".registry"}


__getattr__ = lazy_attributes(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = ["create_model", "create_transform", "list_models", "register_model", "__version__"]
