"""The registry, and snnzoo's models inside timm's training tools (without touching timm's registry)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import zoo
from zoo.registry import model_entrypoint, split_name


def test_names_split_into_arch_and_tag():
    assert split_name("ds_resnet20.mlf_cifar10_t4") == ("ds_resnet20", "mlf_cifar10_t4")
    assert split_name("spiking_convnet") == ("spiking_convnet", None)


def test_every_architecture_of_the_spec_is_registered():
    expected = {"ds_resnet14", "ds_resnet20", "ds_resnet32", "ds_resnet44", "ds_resnet56", "ds_resnet110",
                "spiking_resnet19", "spiking_resnet20", "spiking_resnet18", "spiking_resnet34",
                "spiking_vgg11", "spiking_vgg16", "spiking_convnet"}
    assert expected <= set(zoo.list_models())
    assert zoo.list_models("ds_resnet*") == sorted(n for n in zoo.list_models() if n.startswith("ds_resnet"))


def test_entry_points_only_choose_arguments():
    """An entry point called with the model's own arch_kwargs rebuilds the same graph."""
    model = zoo.create_model("spiking_convnet", T=3, neuron="mlf(levels=2)")
    again = model_entrypoint("spiking_convnet")(**model.arch_kwargs)
    assert again.arch_kwargs == model.arch_kwargs
    assert [(k, v.shape) for k, v in again.state_dict().items()] == [(k, v.shape) for k, v in model.state_dict().items()]


def test_zoo_never_writes_into_timms_registry():
    code = ("import timm; before = set(timm.list_models()); import zoo; zoo.list_models(); "
            "after = set(timm.list_models()); print(len(after - before), len(set(zoo.list_models()) & after))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["0", "0"]


def test_timm_optimizer_scheduler_and_transforms_work_with_zoo_models():
    from timm.data import create_transform
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    model = zoo.create_model("spiking_convnet", T=2)
    optimizer = create_optimizer_v2(model, "sgd", lr=0.1, momentum=0.9, weight_decay=1e-4)
    # timm excludes BN and bias parameters from weight decay: check it saw the zoo's layers
    decays = sorted(group["weight_decay"] for group in optimizer.param_groups)
    assert decays == [0.0, 1e-4]
    scheduler, epochs = create_scheduler_v2(optimizer, "cosine", num_epochs=4, warmup_epochs=0)
    transform = create_transform(28, is_training=False, mean=(0.2860,), std=(0.3530,), crop_pct=1.0)
    from PIL import Image

    image = Image.fromarray((torch.rand(28, 28) * 255).to(torch.uint8).numpy(), mode="L")
    x = transform(image).unsqueeze(0)
    assert x.shape == (1, 1, 28, 28)
    loss = model(x.repeat(2, 1, 1, 1)).logsumexp(1).mean()
    loss.backward()
    optimizer.step()
    scheduler.step(1)
    assert epochs == 4 and optimizer.param_groups[0]["lr"] < 0.1


def test_unknown_model_suggests_similar_names():
    with pytest.raises(ValueError, match="unknown model 'ds_resnet21'.*similar: .*ds_resnet20"):
        zoo.create_model("ds_resnet21")
