"""The zoo's architectures, one module per family. Importing this package registers every entry
point with :mod:`zoo.registry`."""

from . import convnet, ds_resnet, spiking_resnet, vgg
from .base import SpikingModel, build_model
from .convnet import SpikingConvNet
from .ds_resnet import DSResNet
from .spiking_resnet import SpikingResNet
from .vgg import SpikingVGG

__all__ = [
    "DSResNet", "SpikingConvNet", "SpikingModel", "SpikingResNet", "SpikingVGG", "build_model",
    "convnet", "ds_resnet", "spiking_resnet", "vgg",
]
