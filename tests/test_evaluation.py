"""The evaluation harness end to end on a probe network whose every output is known in advance.

The probe reads the first row of a 28x28 image: pixel j drives neuron j (LIF, tau 0.25, V_th 0.5)
through a unit weight, and neuron j drives logit j, whose bias -0.01 j breaks ties towards low
classes. Images are written as MNIST IDX files and read back by ``zoo.data``. A "hot" pixel
(255 -> +1 after the probe's normalisation with mean 0.5, std 0.5) makes its neuron fire at every
step (current 1 > 0.5, hard reset), a dark one (-1) never does, so the ranking of the logits is
"the hot class, then 0, 1, 2, ..." and top-1/top-5 follow from the labels by hand.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import zoo.data
from zoo import registry
from zoo.cards import render_card
from zoo.checkpoint import save_checkpoint
from zoo.config import CheckpointConfig, InputSpec
from zoo.evaluation import cli, harness, leaderboard, records
from zoo.models.base import SpikingModel, build_model

# (hot pixel or None, label) -> top-5 of the probe is [hot, then the lowest other classes]
SAMPLES = [(3, 3), (3, 0), (3, 4), (3, 5), (7, 7), (7, 3), (7, 4), (None, 0), (None, 4), (None, 9), (9, 9), (0, 1)]
TOP1 = 100 * 4 / 12  # (3, 3), (7, 7), (None, 0), (9, 9)
TOP5 = 100 * 9 / 12  # all but (3, 5), (7, 4), (None, 9)
HOT = sum(hot is not None for hot, _ in SAMPLES)  # 10 samples with one neuron firing at every step
NAME = "eval_probe_net.lif_probe_t4"
ROOT = Path(__file__).resolve().parents[1]


class ProbeNet(SpikingModel):
    input_size_fixed = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fc1 = nn.Linear(28 * 28, 10, bias=False)
        self.neuron = self.act()
        self.fc2 = nn.Linear(10, 10)
        with torch.no_grad():
            self.fc1.weight.zero_()
            self.fc1.weight[:, :10] = torch.eye(10)
            self.fc2.weight.copy_(torch.eye(10))
            self.fc2.bias.copy_(-0.01 * torch.arange(10.0))

    def forward_seq(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        spikes = self.neuron(self.fc1(x.reshape(T * B, -1)).reshape(T, B, -1))
        return self.fc2(spikes.reshape(T * B, -1)).reshape(T, B, -1)


def eval_probe_net(**kwargs) -> ProbeNet:
    """Test-only probe network, registered only while this module's tests run."""
    return build_model(ProbeNet, kwargs, neuron="lif", T=4, num_classes=10, in_chans=1, img_size=28)


def write_idx(path, array: np.ndarray, type_code: int) -> None:
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(">u1").tobytes()))


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """(checkpoint folder, data root) of the probe and its 12-image MNIST test split."""
    with pytest.MonkeyPatch.context() as patch:
        registry.list_models()  # imports the zoo's models, so the probe is added after them
        patch.setitem(registry._ENTRYPOINTS, "eval_probe_net", eval_probe_net)
        yield make_probe(tmp_path_factory.mktemp("probe"))


def make_probe(root):
    """The IDX files of the samples and a checkpoint folder of the probe, under ``root``."""
    images = np.zeros((len(SAMPLES), 28, 28), dtype=np.uint8)
    for i, (hot, _) in enumerate(SAMPLES):
        if hot is not None:
            images[i, 0, hot] = 255
    write_idx(root / "t10k-images-idx3-ubyte.gz", images, 0x08)
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.array([label for _, label in SAMPLES]), 0x08)
    config = CheckpointConfig(name=NAME, architecture="eval_probe_net", arch_kwargs={},
                              input=InputSpec("direct", [1, 28, 28], [0.5], [0.5]),
                              dataset={"name": "mnist", "split": "train"}, recipe={"method": "probe"})
    folder = save_checkpoint(eval_probe_net(), root / "checkpoint", config)
    return folder, root


def run(probe, results, **kwargs):
    folder, root = probe
    options = dict(data_dir=str(root), results=results, batch_size=5, device="cpu", timing_batches=1,
                   progress=False)
    return harness.evaluate_checkpoint(str(folder), "mnist", **{**options, **kwargs})


def measured(record):
    """A record without what depends on the machine and the clock."""
    return {k: v for k, v in record.items() if k not in records.TIMING_KEYS}


def test_accuracy_activity_and_operations(probe, tmp_path):
    [record] = run(probe, tmp_path)
    assert (record["T"], record["trained_T"], record["samples"]) == (4, 4, 12)
    assert record["top1"] == pytest.approx(TOP1) and record["top5"] == pytest.approx(TOP5)
    # one neuron of ten fires at every step in 10 of 12 samples
    assert record["firing_rate"] == pytest.approx(HOT / (12 * 10)) and record["mean_event_value"] == 1.0
    [layer] = record["neuron_layers"]
    assert (layer["name"], layer["neurons"], layer["bits_per_spike"]) == ("neuron", 10, 1)
    # fc2: 4 spikes per hot sample, each reaching 10 synapses; fc1: analog, 4 steps x 10 x 784 MACs
    assert record["sops_per_sample"] == pytest.approx(HOT * 4 * 10 / 12)
    assert record["macs_per_sample"] == 4 * 10 * 784
    energy_pj = 0.9 * record["sops_per_sample"] + 4.6 * record["macs_per_sample"]
    assert record["energy_uj_per_sample"] == pytest.approx(energy_pj / 1e6)
    assert record["energy_constants"]["e_ac_pj"] == 0.9 and record["energy_constants"]["e_mac_pj"] == 4.6
    fc1, fc2 = record["synaptic_layers"]
    assert (fc1["input"], fc2["input"]) == ("analog", "events")
    assert record["params"] == 784 * 10 + 10 * 10 + 10
    assert record["checkpoint_sha256"] == CheckpointConfig.load(probe[0] / "config.json").weights_sha256
    assert record["dataset_describe"]["num_samples"] == 12 and record["method"] == "probe"
    assert record["input"] == {"encoding": "direct", "size": [1, 28, 28], "mean": [0.5], "std": [0.5]}
    assert record["command"].startswith(f"zoo eval {probe[0]} --dataset mnist --split test --T 4")
    for key in ("latency_ms", "throughput_samples_per_s", "peak_memory_mb", "device", "software"):
        assert record[key]
    # the JSON record and the dataset's CSV row are on disk
    path = tmp_path / "mnist" / f"{NAME}_test_T4.json"
    assert json.loads(path.read_text()) == record
    header, row = (tmp_path / "mnist.csv").read_text().splitlines()
    assert header.split(",") == list(records.CSV_COLUMNS) and row.startswith(f"{NAME},eval_probe_net,probe,")


def test_t_sweep_gives_one_record_per_T(probe, tmp_path):
    sweep = run(probe, tmp_path, Ts=[1, 2, 4], limit=10)
    assert [r["T"] for r in sweep] == [1, 2, 4]
    assert all(r["samples"] == 10 and r["trained_T"] == 4 for r in sweep)
    # the probe fires at every step, so accuracy does not depend on T and SOPs grow with it: of the
    # first ten samples three are top-1 correct and seven are hot (T spikes x 10 synapses each)
    assert [r["top1"] for r in sweep] == [100 * 3 / 10] * 3
    assert [r["sops_per_sample"] for r in sweep] == [pytest.approx(T * 7 * 10 / 10) for T in (1, 2, 4)]
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == [
        f"{NAME}_test_T{T}_n10.json" for T in (1, 2, 4)]
    assert " --T 1,2,4 " in sweep[0]["command"] and " --limit 10" in sweep[0]["command"]


def test_published_weights_are_named_as_published(probe, tmp_path, monkeypatch):
    """A folder holding the published weights gets a reproduce command a reader can run."""
    sha = CheckpointConfig.load(probe[0] / "config.json").weights_sha256
    config_sha = hashlib.sha256((probe[0] / "config.json").read_bytes()).hexdigest()
    table = tmp_path / "pretrained.json"
    entry = {"name": NAME, "hf_hub_id": f"snnzoo/{NAME}", "revision": "main", "sha256": sha, "config_sha256": config_sha}
    table.write_text(json.dumps({"format_version": registry.REGISTRY_FORMAT, "checkpoints": [entry]}))
    monkeypatch.setattr(registry, "PRETRAINED_FILE", table)
    [record] = run(probe, tmp_path / "published")
    assert record["command"].startswith(f"zoo eval {NAME} --dataset mnist")
    table.write_text(json.dumps({"format_version": registry.REGISTRY_FORMAT, "checkpoints": [{**entry, "sha256": "0" * 64}]}))
    [record] = run(probe, tmp_path / "other weights")
    assert record["command"].startswith(f"zoo eval {probe[0]} --dataset mnist")
    [cached] = run(probe, tmp_path / "published")  # a stored record gets the command of today's registry
    assert cached["command"] == record["command"] and cached["top1"] == record["top1"]


def test_event_frames_are_time_first_events():
    # Three samples of T = 2 frames: sample i holds 2 events at pixel i in frame 0 and none in
    # frame 1. Neuron i fires at t = 0 only (current 2 > 0.5; hard reset, then no current).
    frames = torch.zeros(3, 2, 1, 28, 28)
    for i in range(3):
        frames[i, 0, 0, 0, i] = 2.0
    data = torch.utils.data.TensorDataset(frames, torch.arange(3))
    result = harness.evaluate(eval_probe_net(), data, T=2, batch_size=3, analog_input=False, timing_batches=1,
                              progress=False)
    assert result["top1"] == 100.0 and result["firing_rate"] == pytest.approx(1 / (10 * 2))
    # fc1 is fed one event per sample reaching 10 synapses, fc2 one spike reaching 10: no MACs
    assert result["sops_per_sample"] == 20 and result["macs_per_sample"] == 0
    assert [layer["input"] for layer in result["synaptic_layers"]] == ["events", "events"]


class Interrupting(torch.utils.data.Dataset):
    """Wraps a dataset, records the indices read and raises KeyboardInterrupt at ``stop``."""

    def __init__(self, dataset, stop=None):
        self.dataset, self.stop, self.read = dataset, stop, []

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        if index == self.stop:
            raise KeyboardInterrupt
        self.read.append(index)
        return self.dataset[index]

    def describe(self):
        return self.dataset.describe()


def test_resume_after_interrupt_and_no_recompute(probe, tmp_path, monkeypatch, capsys):
    reference = measured(run(probe, tmp_path / "reference")[0])
    made = []

    def create(*args, stop=None, **kwargs):
        made.append(Interrupting(zoo.data.static_dataset(*args, **kwargs), stop))
        return made[-1]

    # batches of 5: index 7 interrupts the second batch, after the first was saved
    monkeypatch.setattr(zoo.data, "create_dataset", lambda *a, **k: create(*a, stop=7, **k))
    with pytest.raises(KeyboardInterrupt):
        run(probe, tmp_path)
    state = json.loads(next((tmp_path / records.PARTIAL).iterdir()).read_text())
    assert state["done"] == 5 and state["correct1"] == 2  # (3, 3) and (7, 7) among the first five
    assert not (tmp_path / "mnist").exists()

    monkeypatch.setattr(zoo.data, "create_dataset", lambda *a, **k: create(*a, **k))
    resumed = run(probe, tmp_path)[0]
    # the five samples already counted are read again only to check that they have not changed,
    # then the counting pass starts at sample 5
    assert made[-1].read[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert "ignoring" not in capsys.readouterr().err
    assert measured(resumed) == reference
    assert not any((tmp_path / records.PARTIAL).iterdir())

    # a finished evaluation is read back, not recomputed; --force recomputes it
    count = len(made)
    assert run(probe, tmp_path)[0] == resumed and len(made) == count
    forced = run(probe, tmp_path, force=True)[0]
    assert len(made) == count + 1 and measured(forced) == reference


def test_neurobench_metrics_of_the_probe(probe, tmp_path):
    """NeuroBench's metrics by hand. The normalised image is -1 or +1 everywhere, which NeuroBench
    calls spiking: fc1's 784 inputs meet its 10 non-zero weights (an identity on the first row) at
    each of the 4 steps; fc2's spikes meet one non-zero weight each (an identity)."""
    [record] = run(probe, tmp_path)
    metrics = record["neurobench"]
    assert metrics["Footprint"] == (784 * 10 + 10 * 10 + 10) * 4  # float32 parameters, no buffers
    assert metrics["ConnectionSparsity"] == pytest.approx((784 * 10 - 10 + 10 * 10 - 10) / (784 * 10 + 10 * 10))
    assert metrics["ActivationSparsity"] == pytest.approx(1 - record["firing_rate"])
    ops = metrics["SynapticOperations"]
    assert ops["Effective_MACs"] == 0 and ops["Effective_ACs"] == pytest.approx(4 * 10 + 4 * HOT / 12)
    assert ops["Dense"] == 4 * 784 * 10 + 4 * 10 * 10
    # every membrane at step 0; a hot neuron (input +1 > V_th, hard reset) is back at 1 at every step,
    # a dark one (input -1, tau 0.25) changes at each of steps 1-3: 9 dark neurons in a hot sample, 10 else
    assert metrics["MembraneUpdates"] == pytest.approx((HOT * (10 + 3 * 9) + (12 - HOT) * (10 + 3 * 10)) / 12)
    header, row = (tmp_path / "mnist.csv").read_text().splitlines()
    values = dict(zip(header.split(","), next(csv.reader([row]))))
    assert float(values["nb_effective_acs"]) == ops["Effective_ACs"] and int(values["nb_footprint_bytes"]) == 31800


def test_force_rewrites_a_record_only_where_a_result_differs(probe, tmp_path, capsys):
    """The README's main job measures a shipped record again: the same results keep the file as it
    is (the timing of the machine that measured it included), a different result or a field the
    record lacks replaces it whole, so a record is always one measurement."""
    [first] = run(probe, tmp_path)
    path = tmp_path / "mnist" / f"{NAME}_test_T4.json"
    stored = path.read_bytes()
    [again] = run(probe, tmp_path, force=True)
    assert path.read_bytes() == stored and again == first
    assert "measured again with the same results" in capsys.readouterr().err

    for change in ({"top1": first["top1"] - 1}, {"neurobench": None}):
        edited = {k: v for k, v in {**first, **change}.items() if v is not None}
        path.write_text(records.dumps(edited))
        [fresh] = run(probe, tmp_path, force=True)
        assert measured(json.loads(path.read_text())) == measured(fresh) and fresh["top1"] == first["top1"]
        assert "neurobench" in fresh and fresh["date"] >= first["date"]


def test_remeasured_agrees_within_float_rounding():
    stored = {"top1": 90.0, "sops_per_sample": 1e6, "layers": [{"rate": 0.25}], "date": "a", "latency_ms": 1.0}
    same, kept = records.remeasured(stored, {**stored, "sops_per_sample": 1e6 + 0.5, "date": "b", "latency_ms": 2.0})
    assert kept and same is stored
    _, kept = records.remeasured(stored, {**stored, "sops_per_sample": 1e6 + 2})  # 2e-6 relative: another result
    assert not kept
    _, kept = records.remeasured(stored, {**stored, "layers": [{"rate": 0.25}, {"rate": 0.5}]})
    assert not kept
    fresh, kept = records.remeasured(stored, {**stored, "neurobench": {"Footprint": 4}})  # a field it lacks
    assert not kept and fresh["neurobench"] == {"Footprint": 4}


def test_deterministic(probe, tmp_path):
    a = [measured(r) for r in run(probe, tmp_path / "a", Ts=[2, 4])]
    b = [measured(r) for r in run(probe, tmp_path / "b", Ts=[2, 4])]
    assert a == b


def test_records_stored_in_the_checkpoint_and_its_card(probe, tmp_path):
    folder = probe[0]
    run(probe, tmp_path, Ts=[2, 4], write_checkpoint=True)
    config = CheckpointConfig.load(folder / "config.json")
    assert [(r["T"], r["top1"]) for r in config.metrics["evaluations"]] == [(2, TOP1), (4, TOP1)]
    card = render_card(config, "snnzoo/probe")
    assert f"| 4 | test | 12 | {TOP1:.2f} | {TOP5:.2f} |" in card
    with pytest.raises(ValueError, match="first 3 samples"):
        run(probe, tmp_path, limit=3, write_checkpoint=True)


def test_leaderboard_training_time_comes_from_the_published_checkpoint():
    """A shipped record's training time is its checkpoint's own (the config in the local mirror), and
    only for the same weights; a fine-tune whose parent's time was not recorded shows its own stage's,
    said so."""
    def shipped(model: str) -> tuple[dict, dict]:
        path = next((ROOT / "evaluation" / "results" / "fashion_mnist").glob(f"{model}_test_T*.json"))
        return json.loads(path.read_text()), json.loads((ROOT / "hub" / "snnzoo" / model / "config.json").read_text())

    record, config = shipped("spiking_convnet.lif_fashion_mnist_t4_c32")
    assert leaderboard._training(record) == f"{config['metrics']['train']['train_time_s'] / 60:.0f} min"
    assert leaderboard._training({**record, "checkpoint_sha256": "0" * 64}) == ""
    record, config = shipped("spiking_convnet.if_converted_finetuned_fashion_mnist_t2_c32")
    assert "earlier_train_time_s" not in config["metrics"]["lineage"]  # published before chains recorded it
    assert leaderboard._training(record) == f"{config['metrics']['train']['train_time_s'] / 60:.0f} min (last stage)"
    assert leaderboard.standard_error(90.0, 10_000) == pytest.approx(0.3)


def test_a_record_names_re_stimulation_in_its_method():
    """The re-stimulation ablation's two networks share a recipe method; the records (and so the
    leaderboard and its plots) tell them apart."""
    config = CheckpointConfig.load(ROOT / "hub" / "snnzoo" / "spiking_resnet20_w32.noise_cifar10_t1" / "config.json")
    assert harness._method(config) == config.recipe["method"] == "noise-t1"
    config.arch_kwargs["restim"] = True
    assert harness._method(config) == "noise-t1+restim"
    config.recipe.pop("method")
    assert harness._method(config) == "noisy_if+restim"  # no recipe method: the neuron's name


def test_leaderboard(probe, tmp_path):
    results, out = tmp_path / "results", tmp_path / "evaluation"
    run(probe, results, Ts=[1, 4])
    (out / "references.csv").parent.mkdir()
    (out / "references.csv").write_text(
        "method,match_neuron,match_arch,dataset,architecture,T,top1,source\n"
        "Probe,lif,eval_probe_*,mnist,Probe net,4,99.50,Nobody 2024\n"
        "Other,mlf,ds_resnet20,cifar10,DS-ResNet-20,4,94.25,Somebody 2022\n")
    written = leaderboard.build(results, out)
    md = (out / "leaderboard.md").read_text()
    assert "## MNIST" in md and "## CIFAR-10" in md and "No measured results yet." in md
    assert "| model | method / neuron | arch | T | top-1 % | ± SE | top-5 % | firing rate | SOPs / sample |" in md
    rows = [line for line in md.splitlines() if line.startswith(f"| `{NAME}`")]
    rows, neurobench_rows = rows[:2], rows[2:]  # the main table, then NeuroBench's metrics of the same records
    assert [row.split(" | ")[3] for row in rows] == ["1", "4"]  # equal top-1: ordered by T
    assert "| model | T | Footprint KB | ConnectionSparsity | ActivationSparsity | Effective_MACs |" in md
    assert [row.split(" | ")[1:3] for row in neurobench_rows] == [["1", "31.8"], ["4", "31.8"]]
    se = 100 * math.sqrt(TOP1 / 100 * (1 - TOP1 / 100) / 12)
    assert rows[1].endswith(f"| {TOP1:.2f} | {se:.2f} | {TOP5:.2f} | {HOT / 120:.4f} | {HOT * 40 / 12:.3g} | "
                            f"{(0.9 * HOT * 40 / 12 + 4.6 * 31360) / 1e6:.3g} | 0.01 M |  | 99.50 |")  # no training time: not in the mirror
    assert rows[0].endswith("| 0.01 M |  |  |")  # no published number at T = 1
    assert "| *paper (unverified)*: Nobody 2024 | Probe | Probe net | 4 |" in md
    assert "| *paper (unverified)*: Somebody 2022 | Other | DS-ResNet-20 | 4 |" in md
    with open(results / "mnist.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(row["model"], row["T"], row["neuron"][:4]) for row in table] == [(NAME, "1", "lif("), (NAME, "4", "lif(")]
    pngs = sorted(p.name for p in (out / "plots").iterdir())
    assert pngs == ["mnist_accuracy_vs_T.png", "mnist_accuracy_vs_energy.png", f"mnist_{NAME}_firing_rate.png"]
    assert all((out / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert set(written) == {results / "mnist.csv", out / "leaderboard.md", *(out / "plots" / p for p in pngs)}
    # regenerating from the same records gives the same bytes
    before = {p: p.read_bytes() for p in written}
    leaderboard.build(results, out)
    assert {p: p.read_bytes() for p in written} == before


def test_cli(probe, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="zoo")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    folder, root = probe
    args = parser.parse_args(["eval", str(folder), "--data-dir", str(root), "--T", "2,4", "--batch-size", "6",
                              "--out", str(tmp_path / "results"), "--device", "cpu", "--layers"])
    assert args.T == [2, 4] and args.run(args) == 0
    printed = capsys.readouterr().out
    assert f"{NAME} on mnist/test (12 samples)" in printed and f"{TOP1:.2f}" in printed and "fc2" in printed
    args = parser.parse_args(["leaderboard", "--results", str(tmp_path / "results"), "--out", str(tmp_path)])
    assert args.run(args) == 0 and (tmp_path / "leaderboard.md").is_file()
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "x", "--T", "0"])
