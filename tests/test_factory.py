"""``zoo.create_model``: every kind of name through one verified path, and a new head on pretrained weights."""

from __future__ import annotations

import ast
import logging
import shutil
from pathlib import Path

import pytest
import torch

import zoo
from zoo.checkpoint import CheckpointError
from zoo.hub import parse_hf_hub
from zoo.names import UnsafeNameError

ROOT = Path(__file__).resolve().parents[1]
NAME = "spiking_convnet.mlf_fashion_mnist_t4_c32"
MIRRORED = ROOT / "hub" / "snnzoo" / NAME


def image() -> torch.Tensor:
    return torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def test_pretrained_with_other_num_classes_keeps_all_but_the_classifier(caplog):
    reference = zoo.create_model(NAME, pretrained=True).eval()
    with caplog.at_level(logging.WARNING, logger="zoo"):
        model = zoo.create_model(NAME, pretrained=True, num_classes=5).eval()
    assert "head.fc.weight [10, 1568], head.fc.bias [10]" in caplog.text and "5 classes" in caplog.text
    assert model(image()).shape == (3, 5) and model.arch_kwargs["num_classes"] == 5
    body = {k: v for k, v in reference.state_dict().items() if not k.startswith("head.fc.")}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in body.items())
    torch.testing.assert_close(model.forward_head(model.forward_features(image()), pre_logits=True),
                               reference.forward_head(reference.forward_features(image()), pre_logits=True))


def test_same_num_classes_is_the_checkpoint_itself(caplog):
    with caplog.at_level(logging.WARNING, logger="zoo"):
        model = zoo.create_model(NAME, pretrained=True, num_classes=10)
    assert caplog.text == ""
    torch.testing.assert_close(model.eval()(image()), zoo.create_model(NAME, pretrained=True).eval()(image()))


def test_a_checkpoint_folder_loads_through_the_same_verification(tmp_path):
    folder = tmp_path / "mine"
    shutil.copytree(MIRRORED, folder)
    model = zoo.create_model(str(folder), pretrained=True).eval()
    assert model.checkpoint_config.name == NAME
    torch.testing.assert_close(model(image()), zoo.create_model(NAME, pretrained=True).eval()(image()))
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(CheckpointError, match="sha256 is"):
        zoo.create_model(folder, pretrained=True)


def test_a_tag_without_pretrained_is_the_checkpoints_graph_with_random_weights():
    model = zoo.create_model(NAME)
    assert model.arch_kwargs["channels"] == 32 and model.checkpoint_config is None


@pytest.mark.parametrize("name,expected", [
    ("hf-hub:owner/repo", ("owner/repo", None)),
    ("hf-hub:owner/repo.v2@0123abcd", ("owner/repo.v2", "0123abcd")),
])
def test_hub_ids_are_parsed(name, expected):
    assert parse_hf_hub(name) == expected


@pytest.mark.parametrize("name", ["hf-hub:../../etc", "hf-hub:owner", "hf-hub:owner/repo@../x", "hf-hub:a/b/c",
                                  "hf-hub:owner/repo@"])
def test_bad_hub_ids_never_become_paths(name):
    with pytest.raises(UnsafeNameError):
        zoo.create_model(name, pretrained=True)


def test_unknown_names_fail_before_anything_is_read():
    with pytest.raises(ValueError, match="unknown model 'no_such_arch'"):
        zoo.create_model("no_such_arch.tag", pretrained=True)


def test_the_registry_does_not_import_the_hub_code():
    tree = ast.parse((ROOT / "zoo" / "registry.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"hub", "factory", "checkpoint"}
