"""Each checkpoint's input transform (``zoo.create_transform`` / ``model.transforms()``) on real data.

The transform must give exactly the tensor the evaluation harness fed the network (the data set
read as the checkpoint's config says, then normalised), timm's eval transform from the resolved
data config must give the same for images, and a checkpoint must classify real test images through
it. Real data come from ../shared/data (skipped when absent).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_fixtures import SHARED_DATA
from PIL import Image
from timm.data import create_transform as timm_transform
from timm.data import resolve_model_data_config

import zoo
from zoo.data import create_dataset
from zoo.data.events.nmnist import read_nmnist_bin

CIFAR = "spiking_vgg7.multibit_converted_cifar10_t1"
FASHION = "spiking_convnet.mlf_fashion_mnist_t4_c32"
NMNIST = "spiking_convnet_nmnist.if_converted_nmnist_t8"


def needs(folder: str):
    return pytest.mark.skipif(not (SHARED_DATA / folder).is_dir(), reason=f"real data {SHARED_DATA / folder} absent")


def harness_input(model: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    """What ``zoo eval`` feeds the network: [0, 1] pixels, normalised with the config's mean/std."""
    spec = model.checkpoint_config.input
    mean, std = torch.tensor(spec.mean).view(-1, 1, 1), torch.tensor(spec.std).view(-1, 1, 1)
    return (image - mean) / std


@needs("cifar10")
def test_cifar10_png_through_the_checkpoint_transform():
    model = zoo.create_model(CIFAR, pretrained=True).eval()
    transform = model.transforms()
    files = sorted((SHARED_DATA / "cifar10" / "test").glob("*/*.png"))[::500][:20]
    classes = sorted(p.name for p in (SHARED_DATA / "cifar10" / "test").iterdir())
    images = [Image.open(path) for path in files]
    batch = torch.stack([transform(image) for image in images])
    reference = timm_transform(**resolve_model_data_config(model))
    torch.testing.assert_close(batch, torch.stack([reference(image.convert("RGB")) for image in images]), atol=1e-6, rtol=0)
    pixels = torch.stack([torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1) / 255.0 for image in images])
    torch.testing.assert_close(batch, harness_input(model, pixels), atol=1e-6, rtol=0)
    with torch.no_grad():
        predicted = model(batch).argmax(1)
    labels = torch.tensor([classes.index(path.parent.name) for path in files])
    assert (predicted == labels).float().mean() >= 0.8  # 91 % on the full test set


@needs("fashion-mnist")
def test_fashion_mnist_array_through_the_checkpoint_transform():
    model = zoo.create_model(FASHION, pretrained=True).eval()
    data = create_dataset("fashion_mnist", root=SHARED_DATA, split="test", normalize=False)
    transform = zoo.create_transform(FASHION)
    for index in (0, 1, 2):
        image, _ = data[index]
        array = (image[0] * 255).round().to(torch.uint8).numpy()  # [H, W] uint8, as a user holds it
        torch.testing.assert_close(transform(array), harness_input(model, image), atol=1e-6, rtol=0)
        torch.testing.assert_close(transform(Image.fromarray(array)), timm_transform(
            **resolve_model_data_config(model))(Image.fromarray(array)), atol=1e-6, rtol=0)


@needs("nmnist")
def test_nmnist_recording_through_the_checkpoint_transform():
    data = create_dataset("nmnist", root=SHARED_DATA, split="test", frames=1, method="count_bins", cache_dir=False)
    unit = data.units[0]
    frames, _ = data[0]
    transform = zoo.create_model(NMNIST, pretrained=True).transforms()
    torch.testing.assert_close(transform(read_nmnist_bin(unit.files[0])), frames, atol=0, rtol=0)


def test_a_model_without_weights_has_no_transform():
    with pytest.raises(ValueError, match="built without weights"):
        zoo.create_model("spiking_vgg7").transforms()


def test_wrong_input_is_named():
    transform = zoo.create_transform(FASHION)
    with pytest.raises(ValueError, match=r"\[1, H, W\] tensor"):
        transform(torch.zeros(3, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="event array"):
        zoo.create_transform(NMNIST)(np.zeros((10, 4)))
