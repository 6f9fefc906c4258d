"""NeuroBench's metrics as the zoo computes them (zoo.evaluation.neurobench) against the ``neurobench``
package itself (the optional extra ``.[neurobench]``), on shipped checkpoints and real data.

- The MLF Fashion-MNIST checkpoint on the shipped test images (``data/fashion-mnist``) and a LIF
  N-MNIST checkpoint on real recordings (``../shared/data``): every metric the package computes for
  the zoo's model agrees with the zoo's figure; where the two definitions agree (binary spikes, event
  input, no zero weights), NeuroBench's effective operations equal the zoo's SOPs.
- ``MembraneUpdates``: the package reads snnTorch membranes only, so the zoo's count is checked
  against the package on an snnTorch ``Leaky`` layer and the zoo LIF with the same dynamics.
- The definitions on a small network whose counts are known by hand (no package needed).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

import zoo
import zoo.neurons as zn
from zoo.data import create_dataset
from zoo.evaluation import harness
from zoo.evaluation import neurobench as znb

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SAMPLES = 48


def _package():
    return pytest.importorskip("neurobench", reason="the neurobench package is not installed "
                                                     "(pip install -c constraints.txt -e '.[neurobench]')")


def _slice(name: str, dataset: str, root: Path):
    """The checkpoint, the first SAMPLES test samples as the harness reads them, its input transform."""
    if not root.is_dir():
        pytest.skip(f"{root} is absent: the real {dataset} data is needed")
    model = zoo.create_model(name, pretrained=True).eval()
    config = model.checkpoint_config
    params = harness._data_params(config, config.T, dataset, Path("config.json"))
    data = Subset(create_dataset(dataset, root=str(root), split="test", **params), range(SAMPLES))
    return model, data, harness._normalizer(config, torch.device("cpu"))


def _package_results(model, data, transform) -> dict:
    """NeuroBench's Benchmark on the zoo model: TorchModel with the zoo's neuron class as an
    activation module, inputs transposed time-first and normalised as the harness does."""
    _package()
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint, ParameterCount
    from neurobench.metrics.workload import ActivationSparsity, ClassificationAccuracy, SynapticOperations
    from neurobench.models import TorchModel

    def preprocess(batch):
        x, y = batch
        x = x.transpose(0, 1).contiguous() if x.dim() == 5 else x
        return (transform(x) if transform else x), y

    wrapped = TorchModel(model)
    wrapped.add_activation_module(zn.Neuron)
    benchmark = Benchmark(wrapped, DataLoader(data, batch_size=16), [preprocess], [lambda out: out.argmax(-1)],
                          [[Footprint, ConnectionSparsity, ParameterCount],
                           [ActivationSparsity, SynapticOperations, ClassificationAccuracy]])
    with torch.no_grad():
        return benchmark.run(quiet=True)


CHECKPOINTS = [
    ("spiking_convnet.mlf_fashion_mnist_t4_c32", "fashion_mnist", ROOT / "data"),
    ("spiking_convnet_nmnist.lif_nmnist_t8_c32", "nmnist", SHARED),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,dataset,root", CHECKPOINTS, ids=[c[0] for c in CHECKPOINTS])
def test_the_zoo_computes_what_the_neurobench_package_computes(name, dataset, root):
    _package()
    model, data, transform = _slice(name, dataset, root)
    theirs = _package_results(model, data, transform)
    measured = harness.evaluate(model, data, T=model.T, batch_size=16, transform=transform, timing_batches=0,
                                analog_input=model.checkpoint_config.input.encoding == "direct", progress=False)
    ours = measured["neurobench"]
    assert ours["Footprint"] == theirs["Footprint"]
    assert round(ours["ConnectionSparsity"], 4) == theirs["ConnectionSparsity"]
    assert theirs["ParameterCount"] == measured["params"]
    assert ours["ActivationSparsity"] == pytest.approx(theirs["ActivationSparsity"], rel=1e-12)
    assert theirs["ClassificationAccuracy"] == pytest.approx(measured["top1"] / 100)
    assert ours["SynapticOperations"]["Dense"] == theirs["SynapticOperations"]["Dense"]
    for key in ("Effective_MACs", "Effective_ACs"):  # the package sums each call in float32, the zoo exactly
        assert ours["SynapticOperations"][key] == pytest.approx(theirs["SynapticOperations"][key], rel=1e-6, abs=0)
    # where the definitions agree: activation sparsity is 1 - the zoo's firing rate
    assert ours["ActivationSparsity"] == pytest.approx(1 - measured["firing_rate"], rel=1e-12)


@pytest.mark.slow
def test_effective_operations_equal_the_zoos_sops_where_the_definitions_agree():
    """N-MNIST frames T distinct steps, no zero weights: every (non-zero input, synapse) pair is one
    operation in both; NeuroBench only files the non-binary inputs (event counts, pooled spikes)
    under MACs."""
    model, data, transform = _slice("spiking_convnet_nmnist.lif_nmnist_t8_c32", "nmnist", SHARED)
    measured = harness.evaluate(model, data, T=model.T, batch_size=16, analog_input=False, timing_batches=0,
                                progress=False)
    ops = measured["neurobench"]["SynapticOperations"]
    assert measured["neurobench"]["ConnectionSparsity"] == 0 and measured["macs_per_sample"] == 0
    assert ops["Effective_MACs"] + ops["Effective_ACs"] == pytest.approx(measured["sops_per_sample"], rel=1e-12)


class _LeakyNet(nn.Module):
    """One snnTorch LIF layer, stepped by NeuroBench's SNNTorchModel: ``(spikes, membrane)`` per step."""

    def __init__(self, beta: float, threshold: float) -> None:
        super().__init__()
        import snntorch as snn

        self.lif = snn.Leaky(beta=beta, threshold=threshold, reset_mechanism="zero", init_hidden=True, output=True)

    def forward(self, x):
        return self.lif(x)


def test_membrane_updates_follow_the_package_on_snntorch_leaky():
    """snnTorch's Leaky with reset to zero is the zoo's LIF with hard reset (u = tau u (1 - o) + x,
    strict threshold), so the membranes are equal and so are NeuroBench's membrane updates."""
    _package()
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import MembraneUpdates
    from neurobench.models import SNNTorchModel

    generator = torch.Generator().manual_seed(0)
    x = torch.rand(6, 5, 40, generator=generator) * (torch.rand(6, 5, 40, generator=generator) < 0.4)  # [B, T, N]
    benchmark = Benchmark(SNNTorchModel(_LeakyNet(beta=0.5, threshold=0.3)), DataLoader(list(zip(x, torch.zeros(6))),
                          batch_size=3), [], [], [[], [MembraneUpdates]])
    theirs = benchmark.run(quiet=True)["MembraneUpdates"]
    lif = zn.create("lif(tau=0.5, v_th=0.3, reset='hard')")
    ours = sum(int(znb.membrane_updates(lif, batch.transpose(0, 1))) for batch in x.split(3)) / len(x)
    assert ours == theirs and 0 < ours < 5 * 40  # some membranes stay at rest: zero input, zero membrane


def test_definitions_on_a_network_counted_by_hand():
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=True)
    fc = nn.Linear(8, 3, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.weight[0, 0, 0, 0] = 0.0  # one zero weight of 18
        fc.weight.fill_(0.5)
    assert znb.footprint(nn.Sequential(conv, nn.ReLU())) == (18 + 2) * 4  # float32 weights and biases
    assert znb.connection_sparsity(nn.Sequential(conv, fc)) == pytest.approx(1 / (18 + 24))

    x = torch.zeros(1, 1, 2, 2)
    x[0, 0, 0, 0] = 1.0  # one spike in the corner of a 2x2 map
    with znb.WorkloadCounter(nn.Sequential(conv, nn.ReLU())) as counter:
        conv(x)
    counts = counter.counts()
    # the corner input reaches all 4 outputs of both channels within bounds; channel 0's weight (0, 0) is
    # zero and sits over the corner for the output at (1, 1): 8 - 1 effective pairs, all of binary input
    assert counts["effective_acs"] == 7 and counts["effective_macs"] == 0
    assert counts["dense"] == 2 * (4 * 4)  # every output sees its 4 in-bounds inputs (3x3 kernel, 2x2 map)

    with znb.WorkloadCounter(nn.Sequential(fc)) as counter:
        fc(torch.tensor([[2.0, 0, 0, 1, 0, 0, 0, 0]]))  # a multi-level input: a multiply in NeuroBench
    assert counter.counts()["effective_macs"] == 2 * 3 and counter.counts()["dense"] == 8 * 3


def test_membrane_updates_count_every_level_of_mlf():
    mlf = zn.create("mlf(levels=3)")
    x = torch.zeros(4, 2, 5)
    x[1, 0, 0] = 1.0  # one neuron driven at step 1 only
    # step 0: every membrane, 3 levels x 10 neurons. Step 1: the driven neuron's 3 membranes rise to 1
    # (level 1, threshold 0.6, fires and resets to 0). Step 2: level 1 stays 0 + 0 -> changed from 1 to
    # 0, levels 2 and 3 decay to 0.25: 3 changes. Step 3: level 1 stays 0, levels 2 and 3 decay: 2 changes.
    assert int(znb.membrane_updates(mlf, x)) == 30 + 3 + 3 + 2
