"""Every registered architecture: builds, trains a step at tiny shapes, keeps the model contract,
matches the authors' graphs (parameter counts, block semantics, tdBN settings) and works with
timm's optimisers and schedulers."""

from __future__ import annotations

import argparse
import json
import math

import pytest
import timm
import torch
from torch import nn

import zoo.neurons as zn
from zoo import info
from zoo.layers import QCFS, TdBatchNorm2d
from zoo.models import SpikingModel
from zoo import create_model
from zoo.registry import list_models

ALL = list_models()
SMALL_WIDTHS = {"ds_resnet": (8, 16, 32), "spiking_resnet19": (8, 16, 32)}


def small_input(model: SpikingModel, batch: int = 2) -> torch.Tensor:
    C, H, W = model.default_input_size
    if not model.input_size_fixed:
        # VGG needs 32 (five 2x2 pools), the ImageNet stem divides by 4
        H = W = 8 if model.arch_kwargs.get("stem") == "cifar" else 32
    if C == 2:  # event-camera models: frames [T, B, C, H, W]
        return torch.rand(model.T, batch, C, H, W)
    return torch.rand(batch, C, H, W)


# -- every architecture ------------------------------------------------------------------------------
def test_registry_has_the_specified_architectures():
    expected = {
        "ds_resnet14", "ds_resnet20", "ds_resnet32", "ds_resnet44", "ds_resnet56", "ds_resnet110",
        "ds_resnet20_dvsgesture", "ds_resnet14_cifar10dvs", "spiking_resnet18", "spiking_resnet19",
        "spiking_resnet20", "spiking_resnet34", "spiking_vgg11", "spiking_vgg16", "vgg11_qcfs", "vgg16_qcfs",
        "spiking_convnet", "spiking_convnet_nmnist", "convnet_qcfs", "convnet_nmnist_qcfs",
    }
    assert expected <= set(ALL)
    assert not timm.list_models("ds_resnet*") and not timm.list_models("spiking_*")  # timm's registry untouched


@pytest.mark.parametrize("name", ALL)
def test_forward_backward_at_tiny_shapes(name):
    torch.manual_seed(0)
    model = create_model(name, T=2)
    x = small_input(model, batch=1)
    steps = model.forward_timesteps(x)
    assert steps.shape == (2, 1, model.num_classes)
    steps.mean(0).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", ALL)
def test_arch_kwargs_round_trip(name):
    model = create_model(name)
    kwargs = json.loads(json.dumps(model.arch_kwargs))  # JSON-able
    assert kwargs["T"] == model.T and isinstance(kwargs["neuron"], dict) and "backend" not in kwargs
    rebuilt = create_model(name, **kwargs)
    assert rebuilt.arch_kwargs == model.arch_kwargs
    assert repr(rebuilt) == repr(model)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert (model.num_classes, model.in_chans) == (kwargs["num_classes"], kwargs["in_chans"])
    assert model.default_input_size[0] == model.in_chans and len(model.default_input_size) == 3


def test_arch_kwargs_round_trip_with_overrides():
    model = create_model("ds_resnet20", widths=(8, 16, 32), neuron="lif(tau=0.5, reset=soft)", T=3,
                         restim=True, head_hidden=12, num_classes=7, backend="torch")
    kwargs = json.loads(json.dumps(model.arch_kwargs))
    assert kwargs["widths"] == [8, 16, 32] and kwargs["neuron"]["tau"] == 0.5 and kwargs["restim"]
    assert all(n.backend == "torch" for n in model.neurons())
    rebuilt = create_model("ds_resnet20", **kwargs)
    assert repr(rebuilt).replace("'auto'", "'torch'") == repr(model)
    rebuilt.load_state_dict(model.state_dict())  # strict: same graph


# -- parameter counts derived by hand from the authors' code -------------------------------------
def conv(cin, cout, k):
    return cin * cout * k * k


def bn(c):
    return 2 * c


def linear(fin, fout):
    return fin * fout + fout


def block_params(c):
    """A basic block: two conv3x3 + BN."""
    return 2 * (conv(c, c, 3) + bn(c))


def down_params(cin, c):
    """A downsampling basic block: two conv3x3 + BN and the 1x1 conv + BN shortcut."""
    return conv(cin, c, 3) + bn(c) + conv(c, c, 3) + bn(c) + conv(cin, c, 1) + bn(c)


def test_parameter_count_ds_resnet20_from_mlf_code():
    # MLF-DSResNet ResNet_for_cifar10.py, resnet20 = ResNet(BasicBlock, [3, 3, 3]), widths 64-128-256
    stem = conv(3, 64, 3) + bn(64)
    layers = (3 * block_params(64) + down_params(64, 128) + 2 * block_params(128)
              + down_params(128, 256) + 2 * block_params(256))
    expected = stem + layers + linear(256, 10)
    assert expected == 4_327_754
    assert sum(p.numel() for p in create_model("ds_resnet20").parameters()) == expected


def test_parameter_count_spiking_resnet19_from_reloss_code():
    # Re-Loss models/resnet.py, resnet19_cifar = ResNet_Cifar(BasicBlock, [3, 3, 2]), inplanes 128
    stem = conv(3, 128, 3) + bn(128)
    layers = (3 * block_params(128) + down_params(128, 256) + 2 * block_params(256)
              + down_params(256, 512) + 1 * block_params(512))
    expected = stem + layers + linear(512, 10)
    assert expected == 12_569_226
    assert sum(p.numel() for p in create_model("spiking_resnet19").parameters()) == expected
    # tdBN's ResNet-19 head: FC-256 -> neuron -> FC
    with_hidden = expected - linear(512, 10) + linear(512, 256) + linear(256, 10)
    assert sum(p.numel() for p in create_model("spiking_resnet19", head_hidden=256).parameters()) == with_hidden


@pytest.mark.parametrize("name,expected", [
    # ResNet_for_Gesture.py: widths 16-32-64, 2 input channels, 11 classes (bn0 has no parameters)
    ("ds_resnet20_dvsgesture", 272_395),
    # ResNet_for_dvscifar10.py: resnet14, widths 32-64-128, 2 input channels, 10 classes
    ("ds_resnet14_cifar10dvs", 696_330),
    # torchvision-identical graphs (BasicBlock ResNet-18/34, 1000 classes)
    ("spiking_resnet18", 11_689_512),
    ("spiking_resnet34", 21_797_672),
    # VGG-11 "A": 8 convs, 8 BNs, Linear(512, 10); the QCFS twin adds one lambda per activation
    ("spiking_vgg11", 9_228_362),
    ("vgg11_qcfs", 9_228_362 + 8),
    # convnet: conv(1,128) + BN + conv(128,128) + BN + Linear(128*7*7, 10)
    ("spiking_convnet", 1152 + 256 + 147_456 + 256 + 62_730),
])
def test_parameter_counts(name, expected):
    assert sum(p.numel() for p in create_model(name).parameters()) == expected


# -- the model contract ------------------------------------------------------------------------------
def test_direct_encoding_equals_repeated_input_and_forward_is_the_mean():
    torch.manual_seed(0)
    model = create_model("ds_resnet14", widths=(8, 16, 32), T=3).eval()
    x = torch.rand(2, 3, 16, 16)
    steps = model.forward_timesteps(x)
    torch.testing.assert_close(steps, model.forward_timesteps(x.unsqueeze(0).repeat(3, 1, 1, 1, 1)))
    torch.testing.assert_close(model(x), steps.mean(0))
    assert model(x).shape == (2, 10)


@pytest.mark.parametrize("name, kwargs", [
    ("spiking_resnet20", {"widths": (8, 16, 32), "neuron": "lif"}),  # standard blocks, tdBN (eps inside)
    ("ds_resnet20", {"widths": (8, 16, 32)}),  # DS blocks, MLF (three levels), tdBN (eps outside)
    ("spiking_vgg7", {"neuron": "lif"}),  # plain BN, pooling
])
def test_bptt_step_equals_the_reference_path(name, kwargs):
    """A BPTT training step at T = 2 as the engine runs it (the fused CPU kernels, the static image's
    first layer run once for all steps) against the reference path (backend "torch", the papers'
    equations under autograd, on the image materialised at every step): logits, the gradient of
    every parameter and the running statistics, over two steps. Both channels-last, so that their
    convolutions round alike. The first layer's convolution still runs on B images in the engine and
    on T * B in the reference, which may round differently (oneDNN blocks by batch); an element of
    its neuron's membrane can then cross the surrogate's window edge (seen at VGG-7: about 1 %),
    so the first layer's gradients agree to 2 % of their largest value, every other to 1e-4."""
    torch.manual_seed(0)
    engine = create_model(name, T=2, **kwargs).to(memory_format=torch.channels_last).train()
    reference = create_model(name, T=2, backend="torch", **kwargs).to(memory_format=torch.channels_last).train()
    reference.load_state_dict(engine.state_dict())
    gen = torch.Generator().manual_seed(1)
    for _ in range(2):
        x = torch.rand(4, 3, 32, 32, generator=gen).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (4,), generator=gen)
        logits = engine(x)
        logits_ref = reference.forward_timesteps(torch.cat([x, x]).unflatten(0, (2, 4))).mean(0)
        torch.testing.assert_close(logits, logits_ref, rtol=1e-4, atol=1e-5)
        nn.functional.cross_entropy(logits, y).backward()
        nn.functional.cross_entropy(logits_ref, y).backward()
    params = dict(reference.named_parameters())
    first_layer = engine.first_conv.rsplit(".", 1)[0] + "."
    for key, p in engine.named_parameters():
        ref = params[key].grad
        atol = 2e-2 * ref.abs().max().item() if key.startswith(first_layer) else 1e-5
        torch.testing.assert_close(p.grad, ref, rtol=1e-4, atol=atol, msg=key)
    buffers = dict(reference.named_buffers())
    for key, b in engine.named_buffers():
        torch.testing.assert_close(b, buffers[key], rtol=1e-5, atol=1e-6, msg=key)


def test_T_is_settable_and_event_frames_must_fit_it():
    model = create_model("spiking_convnet", T=2)
    x = torch.rand(1, 1, 28, 28)
    assert model.forward_timesteps(x).shape[0] == 2
    model.T = 5
    assert model.forward_timesteps(x).shape[0] == 5 and model.arch_kwargs["T"] == 5
    assert model.forward_timesteps(torch.rand(5, 1, 1, 28, 28)).shape[0] == 5  # one frame per step
    assert model.forward_timesteps(torch.rand(1, 1, 1, 28, 28)).shape[0] == 5  # one frame, repeated
    with pytest.raises(ValueError, match="runs T=5 steps .* got 3 in dimension 0"):
        model.forward_timesteps(torch.rand(3, 1, 1, 28, 28))
    model.T = 1  # a spiking network at T=1 would carry its membrane across the frames
    with pytest.raises(ValueError, match="runs T=1 steps .* got 3 in dimension 0"):
        model.forward_timesteps(torch.rand(3, 1, 1, 28, 28))
    twin = create_model("convnet_qcfs", channels=4)  # stateless at T=1: each frame is one step
    assert twin.forward_timesteps(torch.rand(3, 1, 1, 28, 28)).shape[0] == 3
    with pytest.raises(ValueError, match="positive integer"):
        model.T = 0


def test_wrong_input_shape_names_the_expected_shape():
    model = create_model("ds_resnet14", widths=(8, 16, 32))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\].*\[T, B, 3, H, W\]"):
        model(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        model(torch.rand(2, 1, 16, 16))
    convnet = create_model("spiking_convnet_nmnist")
    with pytest.raises(ValueError, match=r"\[T, B, 2, 34, 34\]"):
        convnet(torch.rand(4, 1, 2, 28, 28))


def test_neurons_and_record_firing():
    torch.manual_seed(0)
    model = create_model("spiking_resnet19", widths=(8, 16, 32), T=2)
    names = [n for n, _ in model.named_neurons()]
    assert len(names) == 1 + 2 * 8 and all(isinstance(n, zn.Neuron) for n in model.neurons())
    with zn.record_firing(model) as stats:
        model(torch.rand(2, 3, 16, 16))
    assert sorted(stats) == sorted(names)
    assert all(s.elements > 0 for s in stats.values())
    assert stats["stem.act"].shape == (8, 16, 16)


@pytest.mark.parametrize("spec", ["lif", "mlf", "srif", "multibit(m=2, n=1)", "noisy_if"])
@pytest.mark.parametrize("name,kwargs", [
    ("ds_resnet14", {"widths": (8, 16, 32)}),
    ("spiking_resnet19", {"widths": (8, 16, 32), "head_hidden": 8}),
    ("spiking_vgg11", {}),
    ("spiking_convnet", {"channels": 8, "head_hidden": 8}),
])
def test_neuron_swapping_on_every_family(name, kwargs, spec):
    torch.manual_seed(0)
    model = create_model(name, neuron=spec, T=2, **kwargs)
    expected = zn.create(spec).spec()
    assert model.arch_kwargs["neuron"] == expected
    assert all(n.spec() == expected for n in model.neurons()) and len(list(model.neurons())) > 2
    x = small_input(model, batch=1)
    model(x).sum().backward()
    model.eval()
    assert model.forward_timesteps(x).shape == (2, 1, 10)


def test_timm_optimizer_and_scheduler():
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    model = create_model("vgg11_qcfs")
    optimizer = create_optimizer_v2(model, "sgd", lr=0.1, momentum=0.9, weight_decay=1e-4)
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert all(id(m.weight) in decayed for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert all(id(m.weight) not in decayed for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    scheduler, epochs = create_scheduler_v2(optimizer, sched="cosine", num_epochs=10, warmup_epochs=0)
    model(torch.rand(1, 3, 32, 32)).sum().backward()
    optimizer.step()
    scheduler.step(1)
    assert epochs == 10 and optimizer.param_groups[0]["lr"] < 0.1
    assert create_optimizer_v2(create_model("ds_resnet14"), "adamw", lr=1e-3)


# -- ANN twins -----------------------------------------------------------------------------------
@pytest.mark.parametrize("snn_name,ann_name,kwargs", [
    ("spiking_vgg11", "vgg11_qcfs", {}),
    ("spiking_vgg16", "vgg16_qcfs", {}),
    ("spiking_convnet", "convnet_qcfs", {"head_hidden": 16}),
    ("spiking_convnet_nmnist", "convnet_nmnist_qcfs", {}),
])
def test_ann_twin_shares_parameter_names_and_its_checkpoint_loads(snn_name, ann_name, kwargs):
    snn, ann = create_model(snn_name, **kwargs), create_model(ann_name, **kwargs)
    assert ann.T == 1 and not list(ann.neurons())
    ann_keys, snn_keys = set(ann.state_dict()), set(snn.state_dict())
    thresholds = {n for n, _ in ann.named_parameters() if n.endswith("act.threshold")}
    assert ann_keys - snn_keys == thresholds and snn_keys <= ann_keys
    # each activation slot of the twin is a neuron slot of the SNN: where a converter puts v_th = lambda
    assert {n + ".threshold" for n, _ in snn.named_neurons()} == thresholds
    assert all(isinstance(m, QCFS) for n, m in ann.named_modules() if n + ".threshold" in thresholds)

    missing, unexpected = snn.load_state_dict(ann.state_dict(), strict=False)
    assert not missing and set(unexpected) == thresholds
    torch.testing.assert_close(snn.head.fc.weight, ann.head.fc.weight)
    x = small_input(ann, batch=2)
    expected_T = x.shape[0] if x.dim() == 5 else 1
    assert ann.forward_timesteps(x).shape == (expected_T, 2, 10)


# -- block semantics ---------------------------------------------------------------------------------
def _capture(module: nn.Module, store: dict, key: str, pre: bool = False):
    if pre:
        return module.register_forward_pre_hook(lambda m, args: store.__setitem__(key, args[0].detach()))
    return module.register_forward_hook(lambda m, args, out: store.__setitem__(key, out.detach()))


def test_ds_block_has_no_activation_after_the_add():
    torch.manual_seed(0)
    model = create_model("ds_resnet14", widths=(8, 16, 32), T=2).eval()
    for block in (model.layers[0][0], model.layers[1][0]):  # identity and projection shortcut
        seen = {}
        _capture(block.act2, seen, "act2")
        x = torch.randint(0, 6, (2, 1, block.conv1.in_channels, 8, 8)).float()  # counts, as between DS blocks
        out = block(x)
        if block.downsample is None:
            torch.testing.assert_close(out, seen["act2"] + x)
        else:
            shortcut = block.downsample_act(torch.stack([block.downsample(x[t]) for t in range(2)]))
            torch.testing.assert_close(out, seen["act2"] + shortcut)
        assert set(seen["act2"].unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}  # MLF K = 3 before the add
    assert model.layers[0][0].downsample_act is None and model.layers[1][0].downsample_act is not None


def test_ds_block_outputs_can_exceed_the_level_count():
    torch.manual_seed(0)
    block = create_model("ds_resnet14", widths=(8, 16, 32), T=2).eval().layers[0][0]
    x = torch.full((2, 1, 8, 8, 8), 3.0)
    assert block(x).max() > 3  # spike counts add up across the shortcut


def test_spiking_resnet_block_has_activation_after_the_add():
    torch.manual_seed(0)
    model = create_model("spiking_resnet19", widths=(8, 16, 32), T=2).eval()
    for block in (model.layers[0][0], model.layers[1][0]):
        seen = {}
        _capture(block.act2, seen, "act2_in", pre=True)
        x = torch.randint(0, 2, (2, 1, block.conv1.in_channels, 8, 8)).float()
        out = block(x)
        main = torch.stack([block.bn2(block.conv2(s)) for s in block.act1(
            torch.stack([block.bn1(block.conv1(x[t])) for t in range(2)]))])
        shortcut = x if block.downsample is None else torch.stack([block.downsample(x[t]) for t in range(2)])
        torch.testing.assert_close(seen["act2_in"], main + shortcut)
        torch.testing.assert_close(out, block.act2(main + shortcut))
        assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_inflor_alpha_rule_and_tdbn_settings():
    model = create_model("spiking_resnet19")
    assert type(model.stem.bn) is nn.BatchNorm2d  # the code's plain myBatchNorm3d, no alpha * V_th
    for stage in model.layers:
        for block in stage:
            assert isinstance(block.bn1, TdBatchNorm2d) and block.bn1.alpha == 1.0
            assert block.bn2.v_th == 0.5 and block.bn2.eps_mode == "inside"
            if block.downsample is not None:
                assert block.bn2.alpha == pytest.approx(1 / math.sqrt(2))
                assert block.downsample.bn.alpha == pytest.approx(1 / math.sqrt(2))
            else:
                assert block.bn2.alpha == 1.0
    assert [b.downsample is not None for s in model.layers for b in s] == [False] * 3 + [True, False, False, True, False]


def test_mlf_tdbn_settings_and_input_bn():
    model = create_model("ds_resnet20_dvsgesture")
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(isinstance(m, TdBatchNorm2d) and m.alpha == 1.0 and m.v_th == 0.6 and m.eps_mode == "outside" for m in bns)
    assert model.input_bn is not None and not model.input_bn.affine and model.input_bn.num_features == 2
    assert create_model("ds_resnet14_cifar10dvs").input_bn is None  # as the authors' code
    assert create_model("ds_resnet20").input_bn is None


def test_imagenet_stem():
    model = create_model("spiking_resnet18")
    assert model.stem.conv.kernel_size == (7, 7) and model.stem.conv.stride == (2, 2)
    assert isinstance(model.stem.pool, nn.AvgPool2d) and model.stem.pool.kernel_size == 3
    assert model.stem.pool.stride == 2


@pytest.mark.parametrize("name", ["ds_resnet14", "spiking_resnet19"])
def test_restim_adds_eca_of_the_shortcut_to_the_output_current(name):
    torch.manual_seed(0)
    plain = create_model(name, widths=(8, 16, 32), T=2).eval()
    restim = create_model(name, widths=(8, 16, 32), T=2, restim=True).eval()
    missing, unexpected = restim.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.endswith("restim.conv.weight") for k in missing)
    for block in (restim.layers[0][0], restim.layers[1][0]):
        nn.init.zeros_(block.restim.conv.weight)  # channel weights sigmoid(0) = 1/2
    for i in (0, 1):
        seen = {}
        _capture(plain.layers[i][0].act2, seen, "plain", pre=True)
        _capture(restim.layers[i][0].act2, seen, "restim", pre=True)
        block = plain.layers[i][0]
        x = torch.rand(2, 1, block.conv1.in_channels, 8, 8)
        plain.layers[i][0](x), restim.layers[i][0](x)
        s = x if block.downsample is None else torch.stack([block.downsample(x[t]) for t in range(2)])
        torch.testing.assert_close(seen["restim"] - seen["plain"], 0.5 * s, rtol=1e-5, atol=1e-6)


# -- zoo info ------------------------------------------------------------------------------------
def test_zoo_info_prints_defaults_parameter_count_and_summary(capsys):
    parser = argparse.ArgumentParser()
    info.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["info", "spiking_convnet"])
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert "parameters: 211,850" in out and 'neuron = {"name": "lif"' in out
    assert "features.0" in out and "128 x 14 x 14" in out and "head.fc" in out


def test_zoo_info_unknown_name(capsys):
    parser = argparse.ArgumentParser()
    info.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["info", "ds_resnet"])
    assert args.run(args) == 2
    assert "similar: ds_resnet110" in capsys.readouterr().err


def test_res20m_is_the_inflor_scripts_resnet20():
    """``spiking_resnet20_modified``: the InfLoR code's ``ResNet_Cifar_Modified`` ([2, 2, 2, 2])."""
    model = create_model("spiking_resnet20_modified", T=1)
    assert [m.conv.out_channels for m in model.stem] == [64, 64, 64]
    assert isinstance(model.stem[2].pool, torch.nn.AvgPool2d)
    shortcut = model.layers[1][0].downsample
    assert list(shortcut._modules) == ["pool", "conv", "bn"] and shortcut.conv.stride == (1, 1)
    assert model.layers[0][0].downsample is None
    assert all(not block.bn2.weight.detach().any() for stage in model.layers for block in stage)
    assert sum(p.numel() for p in model.parameters()) == 11_247_946
    assert model.forward_features(torch.rand(1, 3, 32, 32)).shape == (1, 1, 512, 2, 2)
