"""Conversions: QCFS ANN -> IF (soft reset, u0 = V_th/2), QCFS ANN -> multi-bit, noisy T=1 -> T=N.

The IF case is checked against a hand-computed sequence; the multi-bit case against the ANN it
comes from, exactly, at T = 1; the noise case against the IF semantics of methods.md section 4.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import zoo
from zoo.convert import ConversionError, convert_module, noisy_to_multistep, qcfs_to_snn, recalibrate_batchnorm, snn_arch
from zoo.layers import QCFS
from zoo.neurons import create


def ann(levels: int, shift: float, lam: float, weights: list[float]) -> nn.Sequential:
    """x (one input) -> Linear (weights = the currents z) -> QCFS -> Linear (identity)."""
    first, second = nn.Linear(1, len(weights), bias=False), nn.Linear(len(weights), len(weights), bias=False)
    act = QCFS(levels=levels, shift=shift, threshold_init=lam)
    with torch.no_grad():
        first.weight.copy_(torch.tensor(weights).unsqueeze(1))
        second.weight.copy_(torch.eye(len(weights)))
    return nn.Sequential(first, act, second)


def run_snn(net: nn.Module, x: torch.Tensor, T: int) -> torch.Tensor:
    """Constant input at every step, time-first; outputs averaged over T."""
    with torch.no_grad():
        return net(x.unsqueeze(0).expand(T, *x.shape)).mean(0)


def test_qcfs_to_if_hand_computed():
    """lambda = 2, L = 4, shift 1/2: QCFS gives 2 * floor(2 z + 1/2) / 4 (clipped to [0, 2]).
    The IF neuron with V_th = 2, soft reset, u[0] = 1 run for T = L = 4 steps on a constant z:
      z = 0.3: u = 1.3 1.6 1.9 2.2* -> 1 spike  -> rate * V_th = 0.5 = QCFS
      z = 0.9: u = 1.9 2.8* 1.7 2.6*          -> 2 spikes -> 1.0
      z = 1.7: u = 2.7* 2.4* 2.1* 1.8         -> 3 spikes -> 1.5
      z = 2.5: a spike at every step           -> 4 spikes -> 2.0 (clipped at lambda)
      z = -0.4: never                          -> 0
    """
    net = ann(4, 0.5, 2.0, [0.3, 0.9, 1.7, 2.5, -0.4])
    x = torch.ones(1, 1)
    expected = torch.tensor([[0.5, 1.0, 1.5, 2.0, 0.0]])
    assert torch.allclose(net(x), expected)
    snn = convert_module(net, "if")
    neuron = snn[1]
    assert neuron.spec()["name"] == "if" and neuron.params["v_init"] == 0.5 and neuron.params["reset"] == "soft"
    assert torch.allclose(snn[0].weight, net[0].weight / 2) and torch.allclose(snn[2].weight, net[2].weight * 2)
    assert torch.allclose(run_snn(snn, x, 4), expected, atol=1e-6)
    with torch.no_grad():
        spikes = snn[1](snn[0](x.unsqueeze(0).expand(4, 1, 1)))[:, 0]
    assert spikes.sum(0).tolist() == [1, 2, 3, 4, 0]
    assert spikes[:, 0].tolist() == [0, 0, 0, 1] and spikes[:, 1].tolist() == [0, 1, 0, 1]


def test_qcfs_to_if_error_shrinks_with_T():
    """With T != L the rate is a finer quantisation of the same clip: floor(T z / lambda + 1/2) / T
    * lambda, within lambda / (2T) of clip(z, 0, lambda)."""
    z = torch.linspace(-0.5, 2.5, 31).tolist()
    snn = convert_module(ann(4, 0.5, 2.0, z), "if")
    clipped = torch.tensor(z).clamp(0, 2.0)
    for T in (8, 32, 128):
        error = (run_snn(snn, torch.ones(1, 1), T)[0] - clipped).abs().max()
        assert error <= 2.0 / (2 * T) + 1e-5


@pytest.mark.parametrize("shift", [0.0, 0.5])
@pytest.mark.parametrize("m, n", [(2, 0), (1, 1), (2, 1)])
def test_multibit_at_T1_is_the_clip_floor_ann(m, n, shift):
    """QCFS with L = 2^(m+n) - 1 levels maps onto an m.n-bit spike exactly at T = 1; the shift
    becomes the initial membrane, in units of one step 2^-n."""
    levels = 2 ** (m + n) - 1
    net = ann(levels, shift, 1.5, (torch.linspace(-1, 2, 41) + 0.013).tolist())  # no input on a step boundary
    x = torch.ones(1, 1)
    snn = convert_module(net, "multibit", m, n)
    assert snn[1].spec() == {"name": "multibit", "m": m, "n": n, "v_th": 1.0, "decay": 1.0, "v_init": shift / 2**n}
    torch.testing.assert_close(run_snn(snn, x, 1), net(x), rtol=1e-6, atol=1e-6)
    with pytest.raises(ConversionError, match="levels"):
        convert_module(ann(levels + 1, shift, 1.5, [1.0]), "multibit", m, n)


def test_multibit_needs_one_common_shift():
    mixed = nn.Sequential(*ann(3, 0.0, 1.5, [1.0]), QCFS(levels=3, shift=0.5, threshold_init=1.5), nn.Linear(1, 1))
    with pytest.raises(ConversionError, match="one common shift"):
        convert_module(mixed, "multibit", 2, 0)


def test_multibit_rate_is_unbiased_with_half_shift():
    """m = 2, n = 0, lambda = 1.5, L = 3 (step 0.5): with shift 1/2 (u[0] = V_th / 2) the T-step
    rate is floor(T z / 0.5 + 1/2) / T steps, within 0.5 / (2T) of clip(z, 0, 1.5), as for IF.
    Hand-computed, z = 0.6 (1.2 steps), T = 4, u[0] = 0.5: u = 1.7 -> s = 1, 0.7 + 1.2 = 1.9 -> 1,
    2.1 -> 2, 1.3 -> 1: 5 steps in 4 -> 0.625 (floor(4 * 1.2 + 0.5) = 5)."""
    z = torch.linspace(-0.5, 2.0, 26).tolist()
    snn = convert_module(ann(3, 0.5, 1.5, z), "multibit", 2, 0)
    clipped = torch.tensor(z).clamp(0, 1.5)
    for T in (8, 32, 128):
        error = (run_snn(snn, torch.ones(1, 1), T)[0] - clipped).abs().max()
        assert error <= 0.5 / (2 * T) + 1e-5
    one = convert_module(ann(3, 0.5, 1.5, [0.6]), "multibit", 2, 0)
    with torch.no_grad():
        spikes = one[1](one[0](torch.ones(4, 1, 1)))[:, 0, 0]
    assert spikes.tolist() == [1, 1, 2, 1]
    assert run_snn(one, torch.ones(1, 1), 4).item() == pytest.approx(0.625)


def random_twin(arch: str, **kwargs) -> nn.Module:
    """A zoo ANN twin with random weights, BN statistics and thresholds, in evaluation mode."""
    torch.manual_seed(0)
    twin = zoo.create_model(arch, **kwargs)
    with torch.no_grad():
        for module in twin.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
            if isinstance(module, QCFS):
                module.threshold.uniform_(0.5, 3.0)
    return twin.eval()


@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_convnet_twin_to_multibit_spiking_convnet(shift):
    """The registered twin becomes the registered SNN (strict load, thresholds folded away); at
    T = 1 its logits are the twin's."""
    twin = random_twin("convnet_qcfs", channels=4, neuron=f"qcfs(levels=3, shift={shift})")
    snn = qcfs_to_snn(twin, "convnet_qcfs", "multibit", T=1, m=2, n=0)
    assert snn_arch("convnet_qcfs") == "spiking_convnet" and snn.T == 1
    assert snn.arch_kwargs["neuron"]["name"] == "multibit" and snn.arch_kwargs["channels"] == 4
    assert snn.arch_kwargs["neuron"]["v_init"] == shift
    x = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(snn(x), twin(x), rtol=1e-5, atol=1e-5)
    rebuilt = zoo.create_model("spiking_convnet", **snn.arch_kwargs)
    rebuilt.load_state_dict(snn.state_dict())  # what the checkpoint holds rebuilds the SNN


def test_vgg_twin_to_if_network():
    twin = random_twin("vgg11_qcfs", neuron="qcfs(levels=8)", num_classes=4)
    snn = qcfs_to_snn(twin, "vgg11_qcfs", "if", T=4)
    assert snn.neuron_spec["name"] == "if" and snn.neuron_spec["v_init"] == 0.5 and snn.T == 4
    with torch.no_grad():
        assert snn(torch.randn(1, 3, 32, 32)).shape == (1, 4)


def test_residual_networks_are_refused():
    twin = zoo.create_model("spiking_resnet20", neuron="qcfs", T=1, widths=[4, 8, 8])
    with pytest.raises(ConversionError, match="residual"):
        convert_module(twin, "if")


def test_noisy_t1_to_tN():
    """Trained at T = 1 with noise; converted: same weights, T = N, evaluation mode, where each
    neuron is IF with soft reset and u[0] = mu V_th: for a constant z it fires
    floor(N z / V_th + mu) times in N steps (z away from the rounding boundaries)."""
    neuron = create("noisy_if(mu=0.5, sigma=0.3, v_th=1.0)").eval()
    for z, N in ((0.35, 8), (0.1, 16), (0.72, 5), (1.4, 4)):
        count = neuron(torch.full((N, 1), z)).sum().item()
        assert count == min(math.floor(N * z + 0.5), N)
    torch.manual_seed(0)
    model = zoo.create_model("spiking_convnet", channels=4, T=1, neuron="noisy_if(sigma=0.3)")
    x = torch.randn(4, 1, 28, 28)
    model.train()
    assert not torch.equal(model(x), model(x))  # noise drawn afresh at every call
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    converted = noisy_to_multistep(model, 8)
    assert converted is model and model.T == 8 and model.arch_kwargs["T"] == 8 and not model.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # no noise at inference
        assert model.forward_timesteps(x).shape == (8, 4, 10)
    with pytest.raises(ConversionError, match="noisy_if"):
        noisy_to_multistep(zoo.create_model("spiking_convnet", channels=4), 4)


def test_batchnorm_recalibration_estimates_the_statistics_of_the_converted_network():
    """After recalibration, the first BatchNorm's running mean is the mean of its inputs over the
    batches (equal batches: the mean of batch means), computed here with the network running as it
    will at inference (deterministic IF, T = 4); no learned parameter changes, and the neurons
    draw no noise, so recalibrating twice gives the same statistics."""
    torch.manual_seed(0)
    model = noisy_to_multistep(zoo.create_model("spiking_convnet", channels=4, T=1, neuron="noisy_if(sigma=0.3)"), 4)
    norm = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    norm.momentum = 0.3
    learned = {k: v.clone() for k, v in model.named_parameters()}
    batches = [(torch.randn(8, 1, 28, 28), torch.zeros(8, dtype=torch.int64)) for _ in range(3)]
    inputs = []
    hook = norm.register_forward_hook(lambda module, args, out: inputs.append(args[0].detach()))
    with torch.no_grad():
        for x, _ in batches:
            model(x)
    hook.remove()
    assert recalibrate_batchnorm(model, batches) == 24
    expected = torch.stack([x.mean(dim=(0, 2, 3)) for x in inputs]).mean(0)
    torch.testing.assert_close(norm.running_mean, expected, rtol=1e-5, atol=1e-6)
    assert int(norm.num_batches_tracked) == 3 and norm.momentum == 0.3 and not model.training
    assert all(torch.equal(v, dict(model.named_parameters())[k]) for k, v in learned.items())
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    recalibrate_batchnorm(model, batches)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in stats.items())
    with pytest.raises(ValueError, match="no batches"):
        recalibrate_batchnorm(model, [])
    with pytest.raises(ValueError, match="no BatchNorm"):
        recalibrate_batchnorm(nn.Sequential(nn.Linear(2, 2)), batches)
