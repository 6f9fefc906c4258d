"""snnzoo: a model zoo of spiking neural networks.

>>> import zoo
>>> model = zoo.create_model("spiking_convnet", T=4, neuron="mlf")  # random weights
>>> zoo.list_models("ds_resnet*")                                     # registered architectures
>>> zoo.list_models(pretrained=True)                                  # published checkpoints
"""

__version__ = "0.1.0"

from .allocator import keep_freed_memory  # noqa: E402

ALLOCATOR_KEEPS_FREED_MEMORY = keep_freed_memory()  # see zoo/allocator.py; ZOO_ALLOCATOR=default opts out

from .factory import create_model  # noqa: E402
from .registry import list_models, register_model  # noqa: E402


def create_transform(model, T=None):
    """The input transform a checkpoint was evaluated with; see :mod:`zoo.transforms`."""
    from .transforms import create_transform as create

    return create(model, T)


__all__ = ["create_model", "create_transform", "list_models", "register_model", "__version__"]
