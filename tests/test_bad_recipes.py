"""Hostile input to recipes, training and evaluation: each class of bad input gets one clear error
naming the file and the field (or byte offset), loses nothing and writes nothing outside its folder.

Classes: names that would become paths; partial evaluations of something else, or damaged;
concurrent writers of one config.json; temporary files of killed writers; numbers that are not
finite, out of range, booleans or strings; a loss that turns non-finite; text that is not UTF-8,
alias bombs, deep nesting, huge files, malformed overrides; train states with missing or
mistyped fields. A bounded, seeded fuzzer mutates a valid recipe and checks that parsing only
ever succeeds or raises the zoo's own errors.
"""

from __future__ import annotations

import copy
import datetime
import json
import random
import threading
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest
import torch

import zoo
import zoo.data
from data_fixtures import write_mnist
from zoo.checkpoint import save_checkpoint
from zoo.cli import main as zoo_main
from zoo.config import CheckpointConfig, InputSpec
from zoo.evaluation import harness, partial, records
from zoo.names import UnsafeNameError
from zoo.train import recipe as recipes
from zoo.train.files import LockedError, file_lock
from zoo.train.loop import TrainingDiverged
from zoo.train.recipe import MAX_DEPTH, MAX_RECIPE_BYTES, RecipeError, apply_overrides, from_dict, load_recipe, read_file
from zoo.train.state import StateError, load_run_state, load_state, save_state

ROOT = Path(__file__).resolve().parents[1]
LIF = ROOT / "recipes" / "lif_spiking_convnet_fashion_mnist_t4.yaml"
NMNIST = ROOT / "recipes" / "mlf_spiking_convnet_nmnist_t8.yaml"
TINY = ["model.kwargs.channels=4", "model.kwargs.T=2", "train.epochs=2", "train.batch_size=16",
        "data.eval_batch_size=32", "train.eval_every=0"]
PARSE_ERRORS = (RecipeError, UnsafeNameError)


def base() -> dict:
    return read_file(LIF)


def refused(raw: dict, *patterns: str) -> str:
    """The message of the RecipeError that ``raw`` raises; it starts with the file and holds ``patterns``."""
    with pytest.raises(RecipeError) as info:
        from_dict(raw, str(LIF))
    message = str(info.value)
    assert message.startswith(str(LIF)), message
    for pattern in patterns:
        assert pattern in message, message
    return message


def one_line_exit(capsys, argv: list[str], status: int = 2) -> str:
    """Run ``zoo ARGV``: it exits with ``status`` and prints exactly one line (no traceback)."""
    try:
        code = zoo_main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    err = capsys.readouterr().err
    assert code == status, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """Fashion-MNIST in native IDX files: 64 random training images, 12 test images."""
    root = tmp_path_factory.mktemp("data")
    write_mnist(root / "fashion-mnist", n_train=64, n_test=12)
    return root


# --------------------------------------------------------------------------------------------
# 1. Names that would become paths
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path, value", [
    ("name", "spiking_convnet.x/../../victim"), ("name", "spiking_convnet./etc"), ("name", "spiking_convnet"),
    ("name", "spiking_convnet.a.b"), ("name", "spiking_convnet..."), ("name", "spiking_convnet.x\0y"),
    ("model.arch", "../spiking_convnet"), ("model.arch", "/tmp/x"), ("model.arch", ".hidden"),
    ("data.dataset", "../../etc"), ("data.dataset", "fashion_mnist/.."), ("data.dataset", ""),
])
def test_traversal_names_are_refused_naming_the_field(path, value):
    raw = base()
    node = raw
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    with pytest.raises(UnsafeNameError, match=rf"field '{path}'"):  # also a RecipeError
        from_dict(raw, str(LIF))
    message = refused(raw, f"field '{path}'")
    assert "\n" not in message


def test_unknown_architecture_and_data_set_are_named():
    refused({**base(), "model": {**base()["model"], "arch": "no_such_net"}}, "field 'model.arch'", "registered")
    raw = base()
    raw["data"]["dataset"] = "no_such_data"
    refused(raw, "field 'data.dataset'", "fashion_mnist")


def test_train_without_out_writes_nothing_outside_runs(tmp_path, monkeypatch, capsys):
    """``zoo train`` without --out puts the run in runs/<name>; a hostile name never gets there."""
    monkeypatch.chdir(tmp_path)
    line = one_line_exit(capsys, ["train", str(LIF), "--set", "name=spiking_convnet.x/../../victim", "--no-progress"])
    assert "field 'name'" in line
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "victim").exists()


def test_data_params_cannot_name_a_cache_folder():
    raw = read_file(NMNIST)
    raw["data"]["params"]["cache_dir"] = "/tmp/elsewhere"
    refused(raw, "field 'data.params'", "'cache_dir'")


def test_record_and_partial_paths_refuse_unsafe_names(tmp_path):
    for bad in ("spiking_convnet.x/../../victim", "../x.y", "a.b.c"):
        with pytest.raises(UnsafeNameError):
            records.record_name(bad, "test", 4, None)
    with pytest.raises(UnsafeNameError):
        records.record_name("spiking_convnet.ok", "../test", 4, None)
    for bad in ("../x", "a/b", ""):
        with pytest.raises(UnsafeNameError):
            records.record_path(tmp_path, bad, "m.t_test_T4")
        with pytest.raises(UnsafeNameError):
            records.partial_path(tmp_path, bad, "m.t_test_T4")
    (tmp_path / "mnist").symlink_to(tmp_path.parent)  # confined() follows links
    with pytest.raises(UnsafeNameError, match="outside"):
        records.record_path(tmp_path, "mnist", "m.t_test_T4")


def small_checkpoint(folder: Path, name: str = "spiking_convnet.tiny_fashion_mnist_t2") -> Path:
    """A spiking convnet of width 4 at T = 2 for Fashion-MNIST, saved as a checkpoint folder."""
    torch.manual_seed(0)
    model = zoo.create_model("spiking_convnet", T=2, num_classes=10, in_chans=1, neuron="lif", channels=4)
    config = CheckpointConfig(name=name, architecture="spiking_convnet", arch_kwargs={},
                              input=InputSpec("direct", [1, 28, 28], [0.286], [0.353]),
                              dataset={"name": "fashion_mnist", "split": "train"}, recipe={"method": "tiny"})
    return save_checkpoint(model.eval(), folder, config)


def evaluate(folder: Path, data_root: Path, results: Path, **options) -> list[dict]:
    return harness.evaluate_checkpoint(str(folder), "fashion_mnist", data_dir=str(data_root), results=results,
                                       batch_size=4, device="cpu", timing_batches=1, progress=False, **options)


def measured(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in records.TIMING_KEYS}


def test_eval_of_a_config_with_a_traversal_name_writes_nothing_outside_out(tmp_path, data_root, capsys):
    folder = small_checkpoint(tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    config["name"] = "spiking_convnet.x/../../victim"
    (folder / "config.json").write_text(json.dumps(config))
    results = tmp_path / "deep" / "results"
    line = one_line_exit(capsys, ["eval", str(folder), "--data-dir", str(data_root), "--out", str(results),
                                  "--device", "cpu"])
    assert "'name'" in line and "victim" in line
    assert not (tmp_path / "victim").exists() and not list(tmp_path.rglob("*victim*"))
    assert not any(p.is_file() for p in results.rglob("*")) if results.exists() else True


@pytest.mark.parametrize("option, value", [("--dataset", "../../x"), ("--dataset", "/etc"), ("--split", "../x"),
                                           ("--dataset", "no_such_data"), ("--limit", "0"), ("--batch-size", "-1"),
                                           ("--T", "0"), ("--seed", "x")])
def test_eval_arguments_are_checked(tmp_path, data_root, capsys, option, value):
    folder = small_checkpoint(tmp_path / "ckpt")
    one_line_exit(capsys, ["eval", str(folder), "--data-dir", str(data_root), "--out", str(tmp_path / "r"),
                           "--device", "cpu", option, value])
    assert not list((tmp_path / "r").rglob("*.json")) if (tmp_path / "r").exists() else True


def test_leaderboard_refuses_a_record_with_an_unsafe_model_name(tmp_path, data_root, capsys):
    folder = small_checkpoint(tmp_path / "ckpt")
    results = tmp_path / "results"
    [record] = evaluate(folder, data_root, results)
    path = next((results / "fashion_mnist").glob("*.json"))
    path.write_text(json.dumps({**record, "model": "spiking_convnet.x/../../../victim"}))
    line = one_line_exit(capsys, ["leaderboard", "--results", str(results), "--out", str(tmp_path / "board")])
    assert str(path) in line and "'model'" in line
    assert not list(tmp_path.rglob("*victim*")) and not list(tmp_path.parent.glob("*victim*"))
    path.write_text("{not json")
    assert "not valid JSON" in one_line_exit(capsys, ["leaderboard", "--results", str(results), "--out", str(tmp_path / "b")])


# --------------------------------------------------------------------------------------------
# 2. Partial evaluations: keyed on content, validated; concurrent config writers; leftovers
# --------------------------------------------------------------------------------------------


class Interrupting(torch.utils.data.Dataset):
    """A data set that raises KeyboardInterrupt when index ``stop`` is read."""

    def __init__(self, dataset, stop=None):
        self.dataset, self.stop = dataset, stop

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        if index == self.stop:
            raise KeyboardInterrupt
        return self.dataset[index]

    def describe(self):
        return self.dataset.describe()


def interrupted(folder, data_root, results, monkeypatch, stop=6) -> Path:
    """Evaluate until sample ``stop`` (batches of 4: one batch counted), return the partial file."""
    create = zoo.data.create_dataset
    monkeypatch.setattr(zoo.data, "create_dataset", lambda *a, **k: Interrupting(create(*a, **k), stop))
    with pytest.raises(KeyboardInterrupt):
        evaluate(folder, data_root, results)
    monkeypatch.setattr(zoo.data, "create_dataset", create)
    [path] = (results / records.PARTIAL).glob("*.json")
    assert json.loads(path.read_text())["done"] == 4
    return path


@pytest.fixture()
def evaluation(tmp_path, data_root):
    """(checkpoint folder, reference record of a straight evaluation)."""
    folder = small_checkpoint(tmp_path / "ckpt")
    [reference] = evaluate(folder, data_root, tmp_path / "reference")
    return folder, measured(reference)


def test_partial_resumes_when_nothing_changed(evaluation, data_root, tmp_path, monkeypatch, capsys):
    folder, reference = evaluation
    interrupted(folder, data_root, tmp_path / "r", monkeypatch)
    [record] = evaluate(folder, data_root, tmp_path / "r")
    assert "ignoring" not in capsys.readouterr().err
    assert measured(record) == reference


def test_partial_of_changed_test_data_is_not_resumed(evaluation, tmp_path, monkeypatch, capsys):
    """The test images change between the interruption and the resumed run (same count, so the
    data set's description is the same): the data hash tells, and the record is the new data's."""
    folder, _ = evaluation
    root = tmp_path / "data"
    write_mnist(root / "fashion-mnist", n_train=64, n_test=12, seed=1)
    interrupted(folder, root, tmp_path / "r", monkeypatch)
    write_mnist(root / "fashion-mnist", n_train=64, n_test=12, seed=2)
    [record] = evaluate(folder, root, tmp_path / "r")
    err = capsys.readouterr().err
    assert "ignoring the partial evaluation" in err and "has changed" in err and len(err.strip().splitlines()) == 1
    [fresh] = evaluate(folder, root, tmp_path / "fresh")
    assert measured(record) == measured(fresh)


@pytest.mark.parametrize("damage, reason", [
    (lambda s: {**s, "correct1": 15_634}, "checksum"),
    (lambda s: "not json at all", "not valid JSON"),
    (lambda s: [1, 2, 3], "not a partial"),
    (lambda s: {k: v for k, v in s.items() if k != "neurons"}, "not a partial"),
])
def test_damaged_partial_is_not_resumed(evaluation, data_root, tmp_path, monkeypatch, capsys, damage, reason):
    folder, reference = evaluation
    path = interrupted(folder, data_root, tmp_path / "r", monkeypatch)
    damaged = damage(json.loads(path.read_text()))
    path.write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))
    [record] = evaluate(folder, data_root, tmp_path / "r")
    err = capsys.readouterr().err
    assert reason in err and str(path) in err
    assert measured(record) == reference and 0 <= record["top1"] <= 100


@pytest.mark.parametrize("change, reason", [
    (lambda s: s.update(correct1=15_634), "correct1 <= correct5 <= done"),
    (lambda s: s.update(done=400), "whole number of batches"),
    (lambda s: s.update(done=-4), "non-negative integers"),
    (lambda s: s.update(correct5=2.5), "non-negative integers"),
    (lambda s: s.update(correct1=True), "non-negative integers"),
    (lambda s: s["neurons"].update(ghost={"events": 1, "value_sum": 1, "elements": 2}), "no layer 'ghost'"),
    (lambda s: next(iter(s["synapses"].values())).update(acs=float("inf")), "non-finite"),
    (lambda s: next(iter(s["synapses"].values())).update(macs=-1), "negative"),
    (lambda s: next(iter(s["neurons"].values())).update(events=10**12), "more events than elements"),
    (lambda s: s["key"].update(T=8), "differing: T"),
    (lambda s: s["key"].update(batch_size=8), "differing: batch_size"),
    (lambda s: s["key"].update(checkpoint_sha256="0" * 64), "differing: checkpoint_sha256"),
    (lambda s: s["key"].update(schema=1), "differing: schema"),
])
def test_inconsistent_partial_is_not_resumed_even_with_a_valid_checksum(evaluation, data_root, tmp_path, monkeypatch,
                                                                        capsys, change, reason):
    """A partial rewritten with a correct checksum (by hand or by another program) must still be
    consistent and of this evaluation; otherwise it is ignored and the record is right."""
    folder, reference = evaluation
    path = interrupted(folder, data_root, tmp_path / "r", monkeypatch)
    state = json.loads(path.read_text())
    del state["checksum"]
    change(state)
    path.write_text(partial.dumps(state))
    [record] = evaluate(folder, data_root, tmp_path / "r")
    assert reason in capsys.readouterr().err
    assert measured(record) == reference


def test_concurrent_write_checkpoint_writers_both_survive(tmp_path):
    """Threads that store records in one config.json at once: under the lock each one re-reads
    the config and merges, so every record of every writer is there at the end."""
    folder = small_checkpoint(tmp_path / "ckpt")
    sha = CheckpointConfig.load(folder / "config.json").weights_sha256
    errors = []

    def writer(first_T: int) -> None:
        try:
            start.wait()
            for T in range(first_T, first_T + 15):
                record = {"model": "spiking_convnet.tiny_fashion_mnist_t2", "dataset": "fashion_mnist",
                          "split": "test", "T": T, "limit": None, "checkpoint_sha256": sha, "top1": 10.0}
                records.write_to_checkpoint(folder, [record])
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(first,)) for first in (1, 101, 201)]
    start = threading.Barrier(len(threads))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    stored = CheckpointConfig.load(folder / "config.json").metrics["evaluations"]
    assert sorted(r["T"] for r in stored) == [*range(1, 16), *range(101, 116), *range(201, 216)]
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_file_lock_excludes_and_is_released(tmp_path):
    path = tmp_path / "x.lock"
    with file_lock(path):
        with pytest.raises(LockedError, match="locked by another"):
            with file_lock(path, wait=False):
                pass
    with file_lock(path, wait=False):
        pass


def test_leftover_tmp_files_are_removed(tmp_path, data_root):
    """Temporary files of killed atomic writers (records, CSV, partials, config.json, run folders)
    are removed by the next writer under the folder's lock; other files are kept."""
    folder = small_checkpoint(tmp_path / "ckpt")
    results = tmp_path / "results"
    leftovers = [results / ".fashion_mnist.csv.abc123.tmp", results / "fashion_mnist" / ".m.t_test_T2.json.x1.tmp",
                 results / records.PARTIAL / ".fashion_mnist_m.t_test_T2.json.x2.tmp", folder / ".config.json.k3.tmp"]
    kept = [results / "fashion_mnist" / "notes.txt", folder / "extra.tmp"]
    for path in leftovers + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("partial write")
    evaluate(folder, data_root, results, write_checkpoint=True)
    assert not [p for p in leftovers if p.exists()] and all(p.exists() for p in kept)

    out = tmp_path / "run"
    stale = [out / ".train_state.safetensors.q1.tmp", out / ".log.csv.q2.tmp", out / "checkpoint" / ".model.q3.safetensors.tmp"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 10)
    train(out, data_root, stop_after=1)
    assert not [p for p in stale if p.exists()]


def test_a_second_run_in_the_same_folder_is_refused(tmp_path, data_root):
    out = tmp_path / "run"
    with file_lock(out / ".zoo-train.lock"):
        with pytest.raises(StateError, match="another zoo train is running"):
            train(out, data_root, stop_after=1)


# --------------------------------------------------------------------------------------------
# 3. Numbers
# --------------------------------------------------------------------------------------------

SGD = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0}


@pytest.mark.parametrize("override, field, expected", [
    ("train.optimizer.lr=.inf", "train.optimizer.lr", "finite"),
    ("train.optimizer.lr=.nan", "train.optimizer.lr", "finite"),
    ("train.optimizer.lr=-.inf", "train.optimizer.lr", "finite"),
    ("train.optimizer.lr=0", "train.optimizer.lr", "in (0, 1000]"),
    ("train.optimizer.lr=-0.1", "train.optimizer.lr", "in (0, 1000]"),
    ("train.optimizer.lr=1e300", "train.optimizer.lr", "in (0, 1000]"),
    ("train.optimizer.lr=true", "train.optimizer.lr", "must be a number, got bool"),
    ("train.optimizer.lr='0.1'", "train.optimizer.lr", "must be a number, got str"),
    ("train.optimizer.betas=[0.9, 1.0]", "train.optimizer.betas[1]", "in [0, 1)"),
    ("train.optimizer.betas=[-0.1, 0.9]", "train.optimizer.betas[0]", "in [0, 1)"),
    ("train.optimizer.betas=[0.9]", "train.optimizer.betas", "two numbers"),
    ("train.optimizer.eps=0", "train.optimizer.eps", "in (0, 1]"),
    ("train.optimizer.weight_decay=-1e-4", "train.optimizer.weight_decay", "in [0, 1000]"),
    (f"train.optimizer={json.dumps({**SGD, 'momentum': 1.0})}", "train.optimizer.momentum", "in [0, 1)"),
    (f"train.optimizer={json.dumps({**SGD, 'momentum': float('nan')}).replace('NaN', '.nan')}",
     "train.optimizer.momentum", "finite"),
    ("train.epochs=0", "train.epochs", "in [1, 1_000_000]"),
    ("train.epochs=1.5", "train.epochs", "must be an integer, got float"),
    ("train.epochs=true", "train.epochs", "must be an integer, got bool"),
    ("train.epochs=10000000000000000000000", "train.epochs", "in [1, 1_000_000]"),
    ("train.batch_size=0", "train.batch_size", "in [1,"),
    ("train.accumulation=-2", "train.accumulation", "in [1,"),
    ("train.label_smoothing=1.0", "train.label_smoothing", "in [0, 1)"),
    ("train.label_smoothing=.nan", "train.label_smoothing", "finite"),
    ("train.ema={decay: 0.0}", "train.ema.decay", "in (0, 1)"),
    ("train.ema={decay: 1}", "train.ema.decay", "in (0, 1)"),
    ("train.grad_clip=0", "train.grad_clip", "in (0, 1e9]"),
    ("train.grad_clip=.inf", "train.grad_clip", "finite"),
    ("train.eval_every=-1", "train.eval_every", "in [0, 1_000_000]"),
    ("train.schedule={name: step, warmup_epochs: 0, step_size: 0, gamma: 0.1}", "train.schedule.step_size", "in [1,"),
    ("train.schedule={name: step, warmup_epochs: 0, step_size: 5, gamma: 0}", "train.schedule.gamma", "in (0, 1]"),
    ("train.schedule={name: cosine, warmup_epochs: -1, min_lr: 0}", "train.schedule.warmup_epochs", "in [0,"),
    ("train.schedule={name: cosine, warmup_epochs: 0, min_lr: -1e-5}", "train.schedule.min_lr", "in [0, 1000]"),
    ("model.kwargs.T=true", "model.kwargs.T", "must be an integer, got bool"),
    ("model.kwargs.T='4'", "model.kwargs.T", "must be an integer, got str"),
    ("model.kwargs.T=0", "model.kwargs.T", "in [1, 10_000]"),
    ("model.kwargs.T=4.0", "model.kwargs.T", "must be an integer, got float"),
    ("model.kwargs.num_classes=0", "model.kwargs.num_classes", "in [1,"),
    ("model.kwargs.channels=.nan", "model.kwargs.channels", "finite"),
    ("model.kwargs.img_size=[28]", "model.kwargs.img_size", "[height, width]"),
    ("model.kwargs.neuron={name: lif, tau: .inf}", "model.kwargs.neuron.tau", "finite"),
    ("model.kwargs.neuron={name: lif, tau: 1e300}", "model.kwargs.neuron.tau", "float32"),
    ("model.kwargs.neuron={name: lif, tau: 2.5}", "model.kwargs.neuron", "tau"),
    ("model.kwargs.neuron={name: lif, v_th: true}", "model.kwargs.neuron", "v_th"),
    ("model.kwargs.neuron={name: lif, v_th: .nan}", "model.kwargs.neuron.v_th", "finite"),
    ("data.eval_batch_size=true", "data.eval_batch_size", "got bool"),
    ("data.workers=-1", "data.workers", "in [0, 256]"),
    ("data.train_limit=0", "data.train_limit", "in [1,"),
    ("data.augment.cutout=-8", "data.augment.cutout", "in [0, 1024]"),
    ("seed=-1", "seed", "in [0,"),
    ("seed=1e400", "seed", "must be an integer, got float"),
])
def test_bad_numbers_are_refused_naming_the_field(override, field, expected):
    with pytest.raises(RecipeError) as info:
        load_recipe(LIF, [override])
    message = str(info.value)
    assert message.startswith(str(LIF)) and f"field {field!r}" in message and expected in message, message


@pytest.mark.parametrize("convert, field", [
    ({"kind": "noisy_t1_to_tn", "T": 0, "sweep": [1], "bn_recalibration_images": 0}, "convert.T"),
    ({"kind": "noisy_t1_to_tn", "T": 4, "sweep": [1, 0], "bn_recalibration_images": 0}, "convert.sweep[1]"),
    ({"kind": "noisy_t1_to_tn", "T": 4, "sweep": [True], "bn_recalibration_images": 0}, "convert.sweep[0]"),
    ({"kind": "noisy_t1_to_tn", "T": 4, "sweep": [], "bn_recalibration_images": 0}, "convert.sweep"),
    ({"kind": "noisy_t1_to_tn", "T": 4, "sweep": [4], "bn_recalibration_images": -1}, "convert.bn_recalibration_images"),
    ({"kind": "qcfs_to_multibit", "T": 1, "sweep": [1], "m": 0, "n": 1}, "convert.m"),
    ({"kind": "qcfs_to_multibit", "T": 1, "sweep": [1], "m": 1, "n": -1}, "convert.n"),
])
def test_conversion_numbers(convert, field):
    raw = base()
    raw["convert"] = convert
    refused(raw, f"field {field!r}")


def numeric_fields(cls: type, prefix: str = "") -> list[tuple[str, object]]:
    """(dotted path, field) of every int/float field (also inside lists and Optionals) of the schema."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        tp = hints[f.name]
        leaves = [tp, *typing.get_args(tp)]
        leaves += [a for t in typing.get_args(tp) for a in typing.get_args(t)]
        if any(t in (int, float) for t in leaves):
            out.append((prefix + f.name, f))
        out += [x for t in leaves if is_dataclass(t) for x in numeric_fields(t, f"{prefix}{f.name}.")]
    return out


def test_every_numeric_recipe_field_declares_its_range():
    found = numeric_fields(recipes.Recipe)
    assert len(found) >= 25
    assert not [path for path, f in found if "range" not in f.metadata]


# --------------------------------------------------------------------------------------------
# Non-finite loss
# --------------------------------------------------------------------------------------------


def train(out: Path, data_root: Path, overrides: list[str] = (), **options):
    recipe = load_recipe(LIF, [*TINY, *overrides])
    return zoo.train.train(recipe, out, recipe_file=str(LIF), data_root=str(data_root), device="cpu",
                           progress=False, **options)


def test_nonfinite_loss_stops_the_run_naming_epoch_and_step(tmp_path, data_root, monkeypatch, capsys):
    """The 6th loss (epoch 2, step 2 of 4: 64 samples in batches of 16) is NaN: the run stops with
    one line naming them and exit status 1; the state of epoch 1 is kept, nothing is exported,
    and the run resumes from epoch 1 once the problem is gone."""
    import zoo.train.loop as loop

    real, calls = loop.loss_fn, []

    def poisoned(*args):
        calls.append(1)
        loss = real(*args)
        return loss * float("nan") if len(calls) == 6 else loss

    monkeypatch.setattr(loop, "loss_fn", poisoned)
    out = tmp_path / "run"
    argv = ["train", str(LIF), "--data-dir", str(data_root), "--out", str(out), "--device", "cpu", "--no-progress",
            *[a for o in TINY for a in ("--set", o)]]
    line = one_line_exit(capsys, argv, status=1)
    assert "epoch 2, step 2 of 4" in line and "not finite" in line
    assert load_state(out)["epoch"] == 1 and not (out / "checkpoint").exists()
    assert len((out / "log.csv").read_text().splitlines()) == 2  # header and epoch 1
    monkeypatch.setattr(loop, "loss_fn", real)
    assert zoo_main([*argv, "--resume"]) == 0 and (out / "checkpoint" / "model.safetensors").is_file()


def test_nonfinite_weights_stop_the_run_naming_epoch_and_step(tmp_path, data_root, monkeypatch):
    """The learning rate of epoch 2 is infinite (one step per epoch): the step's loss was finite,
    the weights after it are not; the run stops naming epoch 2, step 1, and keeps epoch 1."""
    import zoo.train.loop as loop

    real, calls = loop.set_lr, []

    def poisoned(optimizer, lr):
        calls.append(lr)
        real(optimizer, float("inf") if len(calls) == 2 else lr)

    monkeypatch.setattr(loop, "set_lr", poisoned)
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 1 of 1: the weights are not finite"):
        train(out, data_root, ["train.batch_size=64"])
    assert load_state(out)["epoch"] == 1 and not (out / "checkpoint").exists()


# --------------------------------------------------------------------------------------------
# 4. Malformed text and structure
# --------------------------------------------------------------------------------------------


def write(tmp_path: Path, data: bytes | str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_non_utf8_recipe_names_the_byte_offset(tmp_path):
    text = LIF.read_bytes()
    offset = text.index(b"seed")
    path = write(tmp_path, text[:offset] + b"\xff\xfe" + text[offset:])
    with pytest.raises(RecipeError, match=rf"{path}: not UTF-8 text: byte 0xff at byte offset {offset}"):
        load_recipe(path)


def test_alias_bomb_is_refused_quickly(tmp_path):
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 12)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(RecipeError, match=r"alias \*a0: aliases are not allowed"):
        load_recipe(path)
    with pytest.raises(RecipeError, match="aliases are not allowed"):
        apply_overrides(base(), ["train.epochs=[&x 1, *x]"], str(LIF))


@pytest.mark.parametrize("text", [
    "seed: " + "[" * 5000 + "]" * 5000,
    "seed: " + "{a: " * 5000 + "1" + "}" * 5000,
    "".join(" " * i + f"k{i}:\n" for i in range(1000)) + " " * 1000 + "v: 1\n",
    "- " * 5000 + "x\n",
])
def test_deep_nesting_is_refused_without_recursion_error(tmp_path, text):
    with pytest.raises(RecipeError, match=f"nested deeper than {MAX_DEPTH} levels"):
        load_recipe(write(tmp_path, text))


def test_deep_nesting_through_the_python_api():
    raw = base()
    deep = 1
    for _ in range(5000):
        deep = {"x": deep}
    raw["data"]["params"] = {"p": deep}
    refused(raw, "nested deeper")


def test_huge_recipe_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.truncate(8 << 30)  # sparse: 8 GiB that are never read
    with pytest.raises(RecipeError, match=f"larger than {MAX_RECIPE_BYTES} bytes"):
        load_recipe(path)


@pytest.mark.parametrize("text, expected", [
    ("", "got an empty file"),
    ("- a\n- b\n", "got list"),
    ("seed: 1\nseed: 2\n", "duplicate key 'seed'"),
    ("? [a, b]\n: 1\n", "a key must be a scalar"),
    ("seed: 2001-13-45\n", "not valid YAML"),
    ("seed: !!python/object/apply:os.system ['echo hi']\n", "not valid YAML"),
    ("a: 1\n---\nb: 2\n", "not valid YAML"),
    ("seed: \x00\n", "not valid YAML"),
    ("key: [unclosed\n", "not valid YAML"),
    ("\tseed: 1\n", "not valid YAML"),
])
def test_malformed_yaml_is_one_recipe_error(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(RecipeError, match=expected) as info:
        load_recipe(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_not_a_regular_file(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(RecipeError, match="not a regular file"):
        load_recipe(tmp_path / "dir.yaml")
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe(tmp_path / "absent.yaml")


@pytest.mark.parametrize("item, expected", [
    ("train.epochs", "expected KEY=VALUE"),
    ("=3", "expected KEY=VALUE"),
    ("train..epochs=1", "no field 'train.'"),
    ("train.epochs.x=1", "no field 'train.epochs.x'"),
    (".train=1", "no field ''"),
    ("train.epochs=[", "not valid YAML"),
    ("train.epochs=*a", "not valid YAML"),
    ("train.epochs=" + "[" * 100 + "]" * 100, "nested deeper"),
    ("train.epochs=\x00", "not valid YAML"),
    ("name=spiking_convnet.a/../../b", "field 'name'"),
    ("train.epochs=" + "9" * 50, "field 'train.epochs'"),
])
def test_malformed_overrides(item, expected):
    with pytest.raises(RecipeError, match=expected) as info:
        load_recipe(LIF, [item])
    assert str(info.value).startswith(str(LIF))


@pytest.mark.parametrize("argv_tail", [
    ["--set", "train.epochs=.inf"], ["--set", "train.epochs"], ["--set", "train.optimizer.lr=.nan"],
    ["--stop-after", "0"], ["--stop-after", "x"], ["--set", "model.kwargs.channels=-4"],
])
def test_train_cli_user_errors_are_one_line(capsys, argv_tail):
    one_line_exit(capsys, ["train", str(LIF), "--check", *argv_tail])


def test_train_cli_bad_files_are_one_line(tmp_path, capsys):
    for data in (b"\xff\xfe", "a: &x 1\nb: *x\n", "seed: " + "[" * 3000):
        line = one_line_exit(capsys, ["train", str(write(tmp_path, data)), "--check"])
        assert str(tmp_path / "bad.yaml") in line
    assert "'bogus'" in one_line_exit(capsys, ["train", str(LIF), "--check", "--set", "model.kwargs={num_classes: 10, "
                                               "in_chans: 1, T: 4, neuron: lif, bogus: 1}"])


@pytest.fixture(scope="module")
def finished_state(tmp_path_factory, data_root) -> Path:
    """A run stopped after its first epoch (the state file to damage)."""
    out = tmp_path_factory.mktemp("state")
    assert train(out, data_root, stop_after=1) is None
    return out


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("optimizer"), "field 'optimizer' is missing"),
    (lambda s: s.pop("world"), "field 'world' is missing"),
    (lambda s: s.update(epoch="1"), "field 'epoch' must be int, got str"),
    (lambda s: s.update(epoch=True), "field 'epoch' must be int, got bool"),
    (lambda s: s.update(epoch=-1), "out of range"),
    (lambda s: s.update(epoch=99), "beyond the recipe's 2 epochs"),
    (lambda s: s.update(rng=[]), "generator states"),
    (lambda s: s.update(model=[1]), "field 'model' must be dict"),
    (lambda s: s.update(model={"nonsense": torch.zeros(1)}), "field 'model' does not fit"),
    (lambda s: s.update(data_generator=torch.zeros(3)), "field 'data_generator' does not fit"),
    (lambda s: s["rng"][0].update(numpy={"bad": 1}), "field 'rng' does not fit"),
    (lambda s: s.update(ema={"steps": 1, "model": {}}), "field 'ema' must be null"),
])
def test_damaged_train_state_is_a_clear_state_error(finished_state, tmp_path, data_root, change, message):
    state = load_state(finished_state)
    change(state)
    out = tmp_path / "run"
    save_state(out, state)
    with pytest.raises(StateError, match=message) as info:
        train(out, data_root, resume=True)
    assert str(out / "train_state.safetensors") in str(info.value)


@pytest.mark.parametrize("damage, message", [
    (lambda text: text.replace("\n1,", "\n7,", 1), "rows must be epochs 1, 2"),
    (lambda text: text.splitlines()[0] + "\n", r"holds 0 epoch\(s\)"),
    (lambda text: text.replace("epoch,lr", "epoch,rate"), "expected the columns"),
    (lambda text: text.rstrip("\n") + ",extra\n", "expected 10 columns"),
    (lambda text: "\n".join(line.rsplit(",", 1)[0] + ",nan" if i else line
                             for i, line in enumerate(text.splitlines())) + "\n", "'peak_memory_mb' must be a finite"),
])
def test_damaged_training_log_is_a_clear_state_error(finished_state, tmp_path, data_root, damage, message):
    """The log is what the exported checkpoint reports; a damaged one fails when the run resumes,
    not after its last epoch."""
    out = tmp_path / "run"
    out.mkdir()
    for name in ("train_state.safetensors", "log.csv"):
        (out / name).write_bytes((finished_state / name).read_bytes())
    (out / "log.csv").write_text(damage((out / "log.csv").read_text()))
    with pytest.raises(StateError, match=message) as info:
        train(out, data_root, resume=True)
    assert str(out / "log.csv") in str(info.value)


def test_unwritable_results_folder_is_one_line(tmp_path, data_root, capsys):
    folder = small_checkpoint(tmp_path / "ckpt")
    (tmp_path / "file").write_text("not a folder")
    line = one_line_exit(capsys, ["eval", str(folder), "--data-dir", str(data_root), "--out", str(tmp_path / "file"),
                                  "--device", "cpu"])
    assert str(tmp_path / "file") in line
    line = one_line_exit(capsys, ["train", str(LIF), "--out", str(tmp_path / "file"), "--data-dir", str(data_root),
                                  "--device", "cpu", "--no-progress", *[a for o in TINY for a in ("--set", o)]])
    assert str(tmp_path / "file") in line


def test_state_file_internals_are_checked(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "train_state.safetensors"
    for meta in ({"format": "snnzoo-train-state-1"}, {"format": "snnzoo-train-state-1", "state": "{bad"},
                 {"format": "snnzoo-train-state-1", "state": json.dumps({"model": {"__tensor__": "missing"}})},
                 {"format": "snnzoo-train-state-1", "state": json.dumps({"x": {"__items__": 3}})},
                 {"format": "snnzoo-train-state-1", "state": "[" * 100_000 + "]" * 100_000}):
        save_file({"t": torch.zeros(1)}, str(path), metadata=meta)
        with pytest.raises(StateError, match=str(path)):
            load_state(tmp_path)
    save_state(tmp_path, {"epoch": 1})
    with pytest.raises(StateError, match="field 'world' is missing"):
        load_run_state(tmp_path)


# --------------------------------------------------------------------------------------------
# 5. Fuzzing the recipe parser
# --------------------------------------------------------------------------------------------

NASTY = [None, True, False, 0, -1, 1, 2**70, -2**70, 0.5, -0.0, 1e308, float("inf"), float("-inf"), float("nan"),
         "", "4", "x" * 300, "../x", "a.b/../c", "spiking_convnet.x/../y", "\0", [], {}, [1, 2], [[[]]], {"a": 1},
         {1: 2}, {"name": "sgd"}, {"kind": "qcfs_to_if"}, datetime.date(2001, 1, 1), b"bytes", [float("nan")],
         {"name": "lif", "tau": float("inf")}, "lif(tau=1e999)", "lif(" * 300]
SNIPPETS = [":", ": ", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "!!binary ", "!!float ", "!!int ", "!!set ",
            "? ", "|", ">", "#", "'", '"', "\t", "\n", "  ", "---\n", "...", "%YAML 1.1\n", "\x00", "\x85", "\ufeff",
            "é", "1e", ".inf", ".nan", "0x", "0o9", "2001-02-30", "~", "null", "<<: ", "=", "\\"]


def paths_of(node, prefix=()):
    """Every key path of a nested dict/list."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths_of(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from paths_of(value, (*prefix, i))


def structural_mutant(rng: random.Random, raw: dict) -> dict:
    """``raw`` with 1-3 random changes: a value replaced by a nasty one, a key removed or added."""
    raw = copy.deepcopy(raw)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice([p for p in paths_of(raw) if p])
        parent = raw
        for part in path[:-1]:
            parent = parent[part]
        action = rng.random()
        if action < 0.75:
            parent[path[-1]] = copy.deepcopy(rng.choice(NASTY))
        elif action < 0.9 and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[rng.choice(["extra", 3, None, "T"])] = rng.choice(NASTY[:10])
    return raw


def text_mutant(rng: random.Random, text: str) -> bytes:
    """``text`` with 1-4 random edits: deletions, insertions of YAML syntax, swapped or duplicated
    lines, random bytes, truncation."""
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(text) + 1)
        action = rng.random()
        if action < 0.3:
            text = text[:i] + rng.choice(SNIPPETS) + text[i:]
        elif action < 0.5:
            text = text[:i] + text[i + rng.randint(1, 20):]
        elif action < 0.7:
            lines = text.splitlines(keepends=True)
            a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
            if rng.random() < 0.5:
                lines.insert(a, lines[b])
            text = "".join(lines)
        elif action < 0.9:
            lines = text.splitlines(keepends=True)
            a = rng.randrange(len(lines))
            lines[a] = " " * rng.randint(0, 6) + lines[a].lstrip() if rng.random() < 0.5 else lines[a].replace(": ", ":", 1)
            text = "".join(lines)
        else:
            text = text[:i]
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.1:
        j = rng.randrange(len(data) + 1)
        data = data[:j] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 3))) + data[j:]
    return data


def parse_outcome(thunk) -> str:
    try:
        thunk()
    except PARSE_ERRORS:
        return "refused"
    return "parsed"


def test_fuzz_recipe_parser(tmp_path):
    """Hundreds of seeded mutants of a valid recipe (text edits, structural replacements and
    --set overrides): each parses or raises RecipeError / UnsafeNameError, never anything else."""
    rng = random.Random(20240607)
    text = LIF.read_text()
    raw = base()
    outcomes = {"parsed": 0, "refused": 0}
    path = tmp_path / "mutant.yaml"
    for _ in range(300):
        path.write_bytes(text_mutant(rng, text))
        outcomes[parse_outcome(lambda: load_recipe(path))] += 1
    for _ in range(300):
        mutant = structural_mutant(rng, raw)
        outcomes[parse_outcome(lambda: from_dict(mutant, "mutant"))] += 1
    keys = [".".join(map(str, p)) for p in paths_of(raw) if p and all(isinstance(k, str) for k in p)]
    for _ in range(150):
        value = rng.choice([*map(str, NASTY[:20]), *SNIPPETS, "{a: [1, {b: .nan}]}", "!!binary aGk=", "2001-01-01"])
        item = f"{rng.choice(keys)}={value}" if rng.random() < 0.9 else rng.choice(SNIPPETS) + value
        outcomes[parse_outcome(lambda: load_recipe(LIF, [item]))] += 1
    assert outcomes["refused"] > 300 and outcomes["parsed"] > 10, outcomes
