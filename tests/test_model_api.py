"""timm's model API on every zoo architecture, checked against timm itself.

``forward_features`` / ``forward_head`` / ``num_features`` / ``head_hidden_size``, the classifier
(``get_classifier``, ``reset_classifier``), ``group_matcher`` and ``no_weight_decay`` through
``timm.optim.create_optimizer_v2(..., layer_decay=...)``, and ``pretrained_cfg`` through
``timm.data.resolve_model_data_config``.
"""

from __future__ import annotations

import pytest
import torch
from timm.data import resolve_model_data_config
from timm.optim import create_optimizer_v2

import zoo

SMALL = {"spiking_resnet18": {"img_size": 64}, "spiking_resnet34": {"img_size": 64}}


def small_model(name: str, **kwargs) -> torch.nn.Module:
    """``name`` at a small input size and T <= 2, so that every family runs in milliseconds."""
    model = zoo.create_model(name, **{**SMALL.get(name, {}), **kwargs})
    model.T = min(model.T, 2)
    return model.eval()


def sample(model: torch.nn.Module) -> torch.Tensor:
    return torch.rand(2, *model.default_input_size, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", zoo.list_models())
def test_forward_head_of_forward_features_is_forward(name):
    model = small_model(name)
    x = sample(model)
    with torch.no_grad():
        logits = model(x)
        features = model.forward_features(x)
        head = model.forward_head(features)
        pre_logits = model.forward_head(features, pre_logits=True)
    assert features.shape[:3] == (model.T, 2, model.num_features)
    torch.testing.assert_close(head, logits)
    assert pre_logits.shape == (2, model.head_hidden_size)
    assert model.get_classifier() is model.head.fc


@pytest.mark.parametrize("name", ["spiking_vgg7", "spiking_convnet", "ds_resnet20", "spiking_resnet20_w32"])
def test_reset_classifier_replaces_only_the_classifier(name):
    model = small_model(name)
    body = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head.fc.")}
    model.reset_classifier(5)
    assert model(sample(model)).shape == (2, 5)
    assert model.num_classes == model.arch_kwargs["num_classes"] == 5
    assert all(torch.equal(model.state_dict()[k], v) for k, v in body.items())
    rebuilt = zoo.create_model(name, **model.arch_kwargs)
    assert rebuilt.state_dict().keys() == model.state_dict().keys()

    model.reset_classifier(0)  # no classifier: forward gives the pre-logits, as in timm
    assert model(sample(model)).shape == (2, model.head_hidden_size)
    assert isinstance(model.get_classifier(), torch.nn.Identity)
    with pytest.raises(ValueError, match="global_pool='max' is not available"):
        model.reset_classifier(3, global_pool="max")
    with pytest.raises(ValueError, match="non-negative integer"):
        model.reset_classifier(-1)


def test_created_without_classifier():
    model = small_model("spiking_vgg7", num_classes=0)
    assert model(sample(model)).shape == (2, model.num_features)


@pytest.mark.parametrize("name", ["vgg7_qcfs", "spiking_resnet20_w32", "spiking_convnet"])
def test_timm_layer_decay_follows_depth(name):
    model = small_model(name)
    optimizer = create_optimizer_v2(model, "adamw", lr=1.0, weight_decay=0.05, layer_decay=0.5)
    scale = {id(p): group["lr_scale"] for group in optimizer.param_groups for p in group["params"]}
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    params = dict(model.named_parameters())
    stem = model.first_conv + ".weight"
    assert scale[id(params[stem])] < scale[id(params["head.fc.weight"])] == 1.0
    for name_ in model.no_weight_decay():
        assert decay[id(params[name_])] == 0.0
    assert decay[id(params[stem])] == 0.05


def test_no_weight_decay_names_the_activation_parameters():
    assert zoo.create_model("spiking_vgg7").no_weight_decay() == set()  # IF: no learnable dynamics
    names = zoo.create_model("vgg7_qcfs").no_weight_decay()
    assert names == {f"features.{i}.act.threshold" for i in range(6)}


def test_timm_data_config_of_a_checkpoint():
    model = zoo.create_model("spiking_convnet.mlf_fashion_mnist_t4_c32", pretrained=True)
    config = model.checkpoint_config
    data = resolve_model_data_config(model)
    assert data["input_size"] == tuple(config.input.size) == (1, 28, 28)
    assert data["mean"] == tuple(config.input.mean) and data["std"] == tuple(config.input.std)
    assert model.default_cfg == model.pretrained_cfg
    assert model.pretrained_cfg["classifier"] == "head.fc"
    assert model.pretrained_cfg["num_classes"] == 10
    assert model.get_submodule(model.pretrained_cfg["first_conv"]).in_channels == 1


def test_timm_data_config_without_weights_says_no_normalisation():
    data = resolve_model_data_config(zoo.create_model("spiking_vgg7"))
    assert data["input_size"] == (3, 32, 32) and data["mean"] == (0.0,) * 3 and data["std"] == (1.0,) * 3
