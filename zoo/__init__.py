"""snnzoo: a model zoo of spiking neural networks.

>>> import zoo
>>> model = zoo.create_model("convnet", T=4, neuron="mlf")          # random weights
>>> zoo.list_models("ds_resnet*")                                     # registered architectures
>>> zoo.list_models(pretrained=True)                                  # published checkpoints
"""

__version__ = "0.1.0"

from .registry import create_model, list_models, register_model  # noqa: E402

__all__ = ["create_model", "list_models", "register_model", "__version__"]
