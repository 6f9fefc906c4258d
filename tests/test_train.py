"""The training engine: bit-exact resume, DDP against gradient accumulation, the checkpoint a run
writes, conversion at the end of a run, and the pieces (batch plan, augmentation, losses,
schedules, the pickle-free train state).

Runs use the real recipe files with ``--set`` overrides that shrink them (a convnet of width 4,
64 training samples) and a tiny Fashion-MNIST written in its native IDX format.
"""

from __future__ import annotations

import csv
import importlib.util
import gzip
import json
import math
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from zoo.cards import render_card
from zoo.checkpoint import load_checkpoint
from zoo.config import CheckpointConfig
from zoo.evaluation import evaluate_checkpoint
from zoo.train import load_recipe, train
from zoo.train.cli import main as train_main
from zoo.train.data import Plan, alternating_flips, cutout, epoch_plan, hflip, random_crop, warn_if_classes_lost
from zoo.train.ema import WeightEMA
from zoo.train.distributed import Context
from zoo.train.losses import loss_fn
from zoo.train.optim import lr_at
from zoo.train.recipe import Cosine, RecipeError, Step
from zoo.train.state import StateError, capture_rng, load_state, restore_rng, save_state

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
LIF = RECIPES / "lif_spiking_convnet_fashion_mnist_t4.yaml"
NOISE = RECIPES / "noise_spiking_convnet_fashion_mnist_t1.yaml"
NMNIST = RECIPES / "mlf_spiking_convnet_nmnist_t8.yaml"
NOISE_NMNIST = RECIPES / "noise_spiking_convnet_nmnist_t1.yaml"
MULTIBIT_CONVERTED = RECIPES / "multibit_converted_convnet_qcfs_fashion_mnist_t1.yaml"
TINY = ["model.kwargs.channels=4", "train.epochs=3", "train.batch_size=16", "data.eval_batch_size=32",
        "train.eval_every=1", "data.augment.cutout=8", "data.augment.alternate_flip=true", "train.ema={decay: 0.9}"]
CPU = torch.device("cpu")


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """Fashion-MNIST in its native IDX files: 64 training and 32 test images, each class a bright
    bar at its own row over noise (so that a few steps of training move the accuracy)."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "fashion-mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 64), ("t10k", 32)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 80, (n, 28, 28))
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 255
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


def run(recipe_file: Path, out: Path, data_root: Path, overrides: list[str], **options):
    recipe = load_recipe(recipe_file, overrides)
    return train(recipe, out, recipe_file=str(recipe_file), overrides=overrides, data_root=str(data_root),
                 device="cpu", progress=False, **options)


def log_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------------------------
# Whole runs
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def straight(tmp_path_factory, data_root) -> Path:
    """The noise recipe (noisy IF at T = 1, AdamW, crop + flip + cutout), 3 epochs in one go,
    converted to T = N at the end."""
    out = tmp_path_factory.mktemp("straight")
    assert run(NOISE, out, data_root, TINY) == out / "checkpoint"
    return out


def test_resume_is_bit_exact(straight, tmp_path, data_root):
    """Stopped after 1 epoch and resumed (a fresh process state: model, optimizer, weight average,
    RNGs all rebuilt from the state file), the run ends with exactly the weights of the straight run.
    The noisy neurons draw from the global RNG, the augmentation from the data generator and the
    alternating flips from the epoch, so this holds only if every generator is saved and restored."""
    assert run(NOISE, tmp_path, data_root, TINY, stop_after=1) is None
    assert [r["epoch"] for r in log_rows(tmp_path)] == ["1"]
    assert load_state(tmp_path)["epoch"] == 1
    torch.manual_seed(1234)  # the resumed run must not depend on the caller's generators
    random.seed(99)
    assert run(NOISE, tmp_path, data_root, TINY, resume=True) == tmp_path / "checkpoint"
    a = load_file(straight / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "checkpoint" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    state_a, state_b = load_state(straight), load_state(tmp_path)
    assert all(torch.equal(state_a["optimizer"]["state"][k]["exp_avg"], state_b["optimizer"]["state"][k]["exp_avg"])
               for k in state_a["optimizer"]["state"])
    assert state_a["ema"]["steps"] == state_b["ema"]["steps"] == 3 * 4
    assert all(torch.equal(state_a["ema"]["model"][k], state_b["ema"]["model"][k]) for k in state_a["ema"]["model"])
    drop = ("epoch_time_s", "eval_time_s", "images_per_s", "peak_memory_mb")
    assert [{k: v for k, v in r.items() if k not in drop} for r in log_rows(straight)] == \
           [{k: v for k, v in r.items() if k not in drop} for r in log_rows(tmp_path)]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_resume_refuses_another_recipe_and_reuse_without_resume(straight, data_root):
    with pytest.raises(StateError, match="train.optimizer.lr"):
        run(NOISE, straight, data_root, [*TINY, "train.optimizer.lr=0.5"], resume=True)
    with pytest.raises(StateError, match="--resume"):
        run(NOISE, straight, data_root, TINY)


FINE_TUNE = ["model.kwargs.channels=4", "model.kwargs.T=2", "train.epochs=1", "train.batch_size=16",
             "data.eval_batch_size=32"]


def test_fine_tune_with_a_new_head_and_frozen_layers(straight, tmp_path, data_root):
    """The LIF recipe at T = 2 started from the noise run's checkpoint (IF neurons, T = 4): every
    weight copied but the classifier (12 classes instead of 10), the first conv block frozen, the
    lineage in the config and the card."""
    parent = straight / "checkpoint"
    init = f"model.init={{checkpoint: '{parent}', new_classifier: false, freeze: ['features.0.*']}}"
    folder = run(LIF, tmp_path, data_root, [*FINE_TUNE, "model.kwargs.num_classes=12", init])
    config = CheckpointConfig.load(folder / "config.json")
    parent_config = CheckpointConfig.load(parent / "config.json")
    lineage = config.metrics["lineage"]
    assert (lineage["name"], lineage["weights_sha256"]) == (parent_config.name, parent_config.weights_sha256)
    assert lineage["fresh"] == ["head.fc.bias", "head.fc.weight"] and lineage["not_used"] == lineage["fresh"]
    assert lineage["frozen"] == ["features.0.conv.weight", "features.0.bn.weight", "features.0.bn.bias"]
    assert "before_training" not in lineage  # a new classifier: the parent's accuracy says nothing
    before, after = load_file(parent / "model.safetensors"), load_file(folder / "model.safetensors")
    assert all(torch.equal(before[key], after[key]) for key in lineage["frozen"])
    assert not torch.equal(before["features.1.conv.weight"], after["features.1.conv.weight"])
    assert after["head.fc.weight"].shape == (12, before["head.fc.weight"].shape[1])
    assert config.recipe["model"]["init"] == {"checkpoint": str(parent), "new_classifier": False,
                                              "freeze": ["features.0.*"]}
    card = render_card(config, "snnzoo/x")
    assert f"fine-tuned (backpropagation through time with surrogate gradients) from the checkpoint " \
           f"`{parent_config.name}`" in card
    # the cost of the whole chain: the parent's training steps, then this run's
    parent_s, own_s = parent_config.metrics["train"]["train_time_s"], config.metrics["train"]["train_time_s"]
    assert lineage["earlier_train_time_s"] == parent_s == parent_config.chain_train_time_s > 0
    assert config.chain_train_time_s == parent_s + own_s
    assert f"the whole chain took {(parent_s + own_s) / 60:.1f} min of training steps ({parent_s / 60:.1f} min" in card


def test_a_chained_run_records_where_it_started(straight, tmp_path, data_root):
    """The noise recipe started from its own finished run: the parent's weights as this recipe runs
    them (T = 1, and converted to T = 4) score what the parent's conversion sweep measured, are
    measured once when the run starts, kept for its resumption, and shown on the card."""
    parent = CheckpointConfig.load(straight / "checkpoint" / "config.json")
    swept = parent.metrics["train"]["conversion"]["accuracy_vs_T"]
    init = f"model.init={{checkpoint: '{straight / 'checkpoint'}', new_classifier: false, freeze: []}}"
    assert run(NOISE, tmp_path, data_root, [*TINY, init], stop_after=1) is None
    recorded = json.loads((tmp_path / "before_training.json").read_text())
    assert recorded == {"T": 1, "top1": swept["1"], "converted_T": 4, "converted_top1": swept["4"]}
    (tmp_path / "before_training.json").write_text(json.dumps({**recorded, "top1": 12.5}))  # read, not measured again
    config = CheckpointConfig.load(run(NOISE, tmp_path, data_root, [*TINY, init], resume=True) / "config.json")
    assert config.metrics["lineage"]["before_training"] == {**recorded, "top1": 12.5}
    assert (f"Before it, those weights scored 12.50 % at T=1, {swept['4']:.2f} % converted to T=4 on the same "
            "test set.") in render_card(config, "snnzoo/x")


def test_fine_tune_from_the_command_line(straight, tmp_path, data_root):
    out = tmp_path / "run"
    args = [str(LIF), "--init-from", str(straight / "checkpoint"), "--out", str(out), "--data-dir", str(data_root),
            "--device", "cpu", "--no-progress", *(f"--set={item}" for item in FINE_TUNE)]
    assert train_main(args) == 0
    config = CheckpointConfig.load(out / "checkpoint" / "config.json")
    assert config.metrics["lineage"]["fresh"] == [] and config.recipe["model"]["init"]["freeze"] == []
    new_head = [*FINE_TUNE, f"model.init={{checkpoint: '{straight / 'checkpoint'}', new_classifier: true, freeze: []}}"]
    lineage = CheckpointConfig.load(run(LIF, tmp_path / "new", data_root, new_head) / "config.json").metrics["lineage"]
    assert lineage["fresh"] == ["head.fc.bias", "head.fc.weight"] == lineage["not_used"]
    assert any(item.startswith("model.init=") for item in config.recipe["overrides"])


def test_fine_tune_refuses_another_architecture_and_unknown_freeze_patterns(straight, tmp_path, data_root):
    parent = straight / "checkpoint"
    wider = [*FINE_TUNE, "model.kwargs.channels=8", f"model.init={{checkpoint: '{parent}', new_classifier: true, "
             "freeze: []}"]
    with pytest.raises(RecipeError, match=r"model.init.checkpoint.*features.0.conv.weight.*must be the parent's"):
        run(LIF, tmp_path / "a", data_root, wider)
    typo = [*FINE_TUNE, f"model.init={{checkpoint: '{parent}', new_classifier: true, freeze: ['feature.0.*']}}"]
    with pytest.raises(RecipeError, match=r"model.init.freeze.*'feature.0.\*' matches no parameter"):
        run(LIF, tmp_path / "b", data_root, typo)


def test_checkpoint_folder(straight):
    """The run's checkpoint loads with the zoo's strict loader and carries the whole recipe, the
    data set's description, the training metrics, the conversion report and the log."""
    folder = straight / "checkpoint"
    config = CheckpointConfig.load(folder / "config.json")
    assert config.name == "spiking_convnet.noise_fashion_mnist_t1"
    assert config.recipe["file"] == "recipes/noise_spiking_convnet_fashion_mnist_t1.yaml"
    assert config.recipe["overrides"] == TINY and config.recipe["train"]["epochs"] == 3
    assert config.dataset["name"] == "fashion_mnist" and config.input.encoding == "direct"
    assert config.input.mean == [0.286] and config.input.size == [1, 28, 28]
    metrics = config.metrics["train"]
    assert metrics["epochs"] == 3 and metrics["images_per_s"] > 0 and metrics["peak_memory_mb"] > 0
    assert 0 <= metrics["test_top1"] <= 100 and metrics["test_samples"] == 32
    conversion = metrics["conversion"]
    recipe = load_recipe(NOISE, TINY)
    assert conversion["source_T"] == 1 and list(conversion["accuracy_vs_T"]) == [str(t) for t in recipe.convert.sweep]
    assert config.T == recipe.convert.T  # the saved network runs T = N steps
    model = load_checkpoint(folder)
    assert model.T == recipe.convert.T and model.neuron_spec["name"] == "noisy_if"
    rows = list(csv.DictReader(open(folder / "train_log.csv")))
    assert len(rows) == 3 and all(float(r["images_per_s"]) > 0 for r in rows)
    if importlib.util.find_spec("tensorboard") is not None:  # TensorBoard logging is optional
        assert any((straight / "tensorboard").iterdir())
    else:
        assert not (straight / "tensorboard").exists()


def write_nmnist(root: Path) -> None:
    """N-MNIST in its native layout Train/<digit>/<i>.bin, Test/<digit>/<i>.bin: 5-byte events
    (x, y, then polarity in bit 23 and the timestamp in us in bits 22..0, big-endian)."""
    rng = np.random.default_rng(1)
    for split, count in (("Train", 2), ("Test", 1)):
        for digit in range(10):
            folder = root / split / str(digit)
            folder.mkdir(parents=True)
            for i in range(count):
                n = 200
                x, y = rng.integers(0, 34, n), (rng.integers(0, 4, n) + 3 * digit).clip(0, 33)
                word = (rng.integers(0, 2, n) << 23) | np.sort(rng.integers(0, 300_000, n))
                events = np.stack([x, y, word >> 16, (word >> 8) & 0xFF, word & 0xFF], 1).astype(np.uint8)
                (folder / f"{i:05d}.bin").write_bytes(events.tobytes())


def test_event_data_through_the_loader_pipeline(tmp_path, monkeypatch):
    """The N-MNIST recipe (DataLoader pipeline, 8 frames per sample = the time steps) on native
    .bin recordings, with crop and flip applied to whole frame stacks on the device."""
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    write_nmnist(tmp_path / "nmnist")
    overrides = ["model.kwargs.channels=4", "train.epochs=1", "train.batch_size=10", "data.eval_batch_size=10",
                 "data.augment.crop_padding=2", "data.augment.hflip=true"]
    folder = run(NMNIST, tmp_path / "out", tmp_path / "nmnist", overrides)
    config = CheckpointConfig.load(folder / "config.json")
    assert config.input.encoding == "frames" and config.input.size == [2, 34, 34] and config.input.mean == []
    assert config.dataset["name"] == "nmnist" and config.dataset["integration"]["frames"] == 8
    assert config.metrics["train"]["test_samples"] == 10 and config.T == 8


def test_event_data_as_one_repeated_frame(tmp_path, monkeypatch):
    """The N-MNIST T = 1 route (noise training, frames = 1): each recording is one integrated frame,
    repeated over T. The checkpoint says so, and the evaluation harness, sweeping T on the
    checkpoint, gets exactly the accuracies the run's own conversion sweep measured (the frame is
    not integrated again per T, as frames per step are)."""
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    write_nmnist(tmp_path / "nmnist")
    overrides = ["model.kwargs.channels=4", "train.epochs=1", "train.batch_size=10", "data.eval_batch_size=10"]
    folder = run(NOISE_NMNIST, tmp_path / "out", tmp_path / "nmnist", overrides)
    config = CheckpointConfig.load(folder / "config.json")
    assert config.input.encoding == "repeated_frame" and config.input.size == [2, 34, 34]
    assert config.dataset["integration"]["frames"] == 1 and config.T == 8
    swept = config.metrics["train"]["conversion"]["accuracy_vs_T"]
    assert list(swept) == ["1", "2", "4", "8", "16"]
    records = evaluate_checkpoint(str(folder), Ts=[1, 4, 16], data_dir=str(tmp_path / "nmnist"), batch_size=10,
                                  results=tmp_path / "results", timing_batches=1, progress=False)
    assert [r["T"] for r in records] == [1, 4, 16] and all(r["samples"] == 10 for r in records)
    assert [r["top1"] for r in records] == pytest.approx([swept["1"], swept["4"], swept["16"]])
    assert all(r["input"]["encoding"] == "repeated_frame" and r["dataset_describe"]["input_size"] == [1, 2, 34, 34]
               for r in records)
    assert "the whole recording integrated into one frame, repeated over T" in render_card(config, "x/y")


def test_resume_accepts_later_keywords_at_their_defaults_and_another_conversion(straight, tmp_path, data_root):
    """A run saved before the architecture had a keyword (its recipe does not write it) resumes
    under a recipe that writes it with the default the run's graph had, and with another
    conversion (it acts after training); a keyword value other than that default is still another
    recipe."""
    shutil.copytree(straight, tmp_path / "run")
    state = load_state(tmp_path / "run")
    assert state["recipe"]["model"]["kwargs"].pop("head_hidden") == 0
    save_state(tmp_path / "run", state)
    later_conversion = [*TINY, "convert={kind: noisy_t1_to_tn, T: 2, sweep: [2], bn_recalibration_images: 0}"]
    assert run(NOISE, tmp_path / "run", data_root, later_conversion, resume=True) == tmp_path / "run" / "checkpoint"
    assert CheckpointConfig.load(tmp_path / "run" / "checkpoint" / "config.json").T == 2
    save_state(tmp_path / "run", state)
    with pytest.raises(StateError, match=r"differing field\(s\): model.kwargs.head_hidden$"):
        run(NOISE, tmp_path / "run", data_root, [*TINY, "model.kwargs.head_hidden=16"], resume=True)


def test_noise_conversion_recalibrates_batchnorm(straight, tmp_path, data_root):
    """The finished noise run converted again (--convert-from) with BatchNorm statistics
    re-estimated on 40 training images at T = N: the learned weights are the run's, only the
    running statistics differ; the report and the card say so."""
    calibrated = [*TINY, "convert={kind: noisy_t1_to_tn, T: 4, sweep: [4], bn_recalibration_images: 40}"]
    folder = run(NOISE, tmp_path, data_root, calibrated, convert_from=straight)
    config = CheckpointConfig.load(folder / "config.json")
    assert config.metrics["train"]["conversion"]["bn_recalibration"] == {"images": 40, "T": 4}
    before, after = load_checkpoint(straight / "checkpoint").state_dict(), load_checkpoint(folder).state_dict()
    statistics = {k for k in before if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert statistics and all(not torch.equal(before[k], after[k]) for k in statistics)
    assert all(torch.equal(before[k], after[k]) for k in before.keys() - statistics)
    assert "re-estimated on 40 training images" in render_card(config, "snnzoo/" + config.name)


def test_multibit_conversion_run_and_the_same_twin_converted_to_if(tmp_path, data_root):
    """ANN twin (QCFS, L = 3, shift 1/2) trained, converted to 2-bit spikes: at T = 1 the SNN is the
    ANN, so its test accuracy equals the twin's exactly. The same finished run converted again to IF
    neurons (--convert-from): no training, the twin's weights and training log, another conversion."""
    small = ["model.kwargs.channels=4", "train.epochs=1", "train.batch_size=16", "data.eval_batch_size=32"]
    folder = run(MULTIBIT_CONVERTED, tmp_path / "multibit", data_root, small)
    config = CheckpointConfig.load(folder / "config.json")
    assert config.architecture == "spiking_convnet" and config.arch_kwargs["neuron"]["name"] == "multibit"
    conversion = config.metrics["train"]["conversion"]
    assert conversion["accuracy_vs_T"]["1"] == conversion["source_top1"] == config.metrics["train"]["test_top1"]
    assert set(conversion["thresholds"]) == {"features.0.act", "features.1.act"}
    load_checkpoint(folder)

    as_if = [*small, "name=spiking_convnet.if_converted_tiny_t4", "convert={kind: qcfs_to_if, T: 4, sweep: [1, 4]}"]
    folder_if = run(MULTIBIT_CONVERTED, tmp_path / "if", data_root, as_if, convert_from=tmp_path / "multibit")
    config_if = CheckpointConfig.load(folder_if / "config.json")
    assert config_if.name == "spiking_convnet.if_converted_tiny_t4" and config_if.arch_kwargs["neuron"]["name"] == "if"
    assert config_if.metrics["train"]["conversion"]["source_top1"] == conversion["source_top1"]
    assert config_if.metrics["train"]["train_time_s"] == config.metrics["train"]["train_time_s"]
    assert (folder_if / "train_log.csv").read_text() == (folder / "train_log.csv").read_text()
    with pytest.raises(StateError, match="another recipe; differing field"):
        run(MULTIBIT_CONVERTED, tmp_path / "other", data_root, [*as_if, "train.optimizer.lr=0.5"],
            convert_from=tmp_path / "multibit")
    assert run(MULTIBIT_CONVERTED, tmp_path / "half", data_root, [*small, "train.epochs=2"], stop_after=1) is None
    with pytest.raises(StateError, match="finished 1 of its 2 epochs"):
        run(MULTIBIT_CONVERTED, tmp_path / "early", data_root, [*small, "train.epochs=2"], convert_from=tmp_path / "half")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_equal_one_process_with_accumulation(tmp_path, data_root):
    """torchrun, 2 CPU processes (gloo), micro-batch 8 each, against 1 process accumulating 2
    micro-batches of 8: the same samples, augmentations and averaged gradients, so the same
    weights up to float summation order (measured: 1e-7; one process with one micro-batch of 16
    differs by 5e-3 after these steps). The distributed run also checks at its end that both
    ranks hold bit-identical parameters (``check_replicas``)."""
    overrides = ["model.kwargs.channels=4", "model.kwargs.T=2", "train.epochs=2", "train.batch_size=16",
                 "data.eval_batch_size=32", "train.eval_every=0"]
    ddp_out, single_out = tmp_path / "ddp", tmp_path / "single"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZOO_DATA_DIR": str(data_root), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), "-m", "zoo.train", str(LIF), "--device", "cpu", "--no-progress",
               "--out", str(ddp_out), *[a for o in overrides for a in ("--set", o)]]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run(LIF, single_out, data_root, [*overrides, "train.accumulation=2"])
    ddp = load_file(ddp_out / "checkpoint" / "model.safetensors")
    single = load_file(single_out / "checkpoint" / "model.safetensors")
    params = [k for k in ddp if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    for key in params:
        torch.testing.assert_close(ddp[key], single[key], rtol=1e-5, atol=1e-6, msg=key)
    losses = [float(r["train_loss"]) for r in log_rows(ddp_out)], [float(r["train_loss"]) for r in log_rows(single_out)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    assert CheckpointConfig.load(ddp_out / "checkpoint" / "config.json").metrics["train"]["processes"] == 2


def test_cli_check_and_errors(capsys, tmp_path):
    assert train_main([str(LIF), "--check"]) == 0
    assert "ok" in capsys.readouterr().out
    assert train_main([str(LIF), "--set", "train.optimiser.lr=1", "--check"]) == 2
    assert "train.optimiser" in capsys.readouterr().err
    # bad input found while training is reported the same way, without a traceback
    assert train_main([str(LIF), "--data-dir", str(tmp_path), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo train: fashion_mnist: native files not found") and str(tmp_path) in err, err


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------


def test_batch_plan_does_not_depend_on_the_split_between_processes_and_accumulation():
    def micro_batches(world: int, accumulation: int) -> list[torch.Tensor]:
        out = []
        for rank in range(world):
            plan = epoch_plan(50, 8, accumulation, Context(rank, world, CPU), torch.Generator().manual_seed(3))
            out += [plan.order[:, s] for s in plan.slices()]
        return out

    one = micro_batches(1, 4)
    for world, accumulation in ((2, 2), (4, 1)):
        assert all(torch.equal(a, b) for a, b in zip(one, micro_batches(world, accumulation)))
    plan = epoch_plan(50, 8, 1, Context(0, 1, CPU), torch.Generator().manual_seed(3))
    assert isinstance(plan, Plan) and plan.steps == 6 and plan.order.unique().numel() == 48  # last 2 dropped


def test_augmentations_against_direct_indexing():
    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).view(2, 3, 5, 6)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    offsets = torch.tensor([[0, 4], [3, 1]])
    crop = random_crop(x, offsets, 2)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        assert torch.equal(crop[i], padded[i, :, dy : dy + 5, dx : dx + 6])
    frames = x.unsqueeze(1).expand(2, 4, 3, 5, 6)  # [B, T, C, H, W]: one crop for every frame
    assert torch.equal(random_crop(frames, offsets, 2)[:, 2], crop)
    flipped = hflip(x, torch.tensor([True, False]))
    assert torch.equal(flipped[0], x[0].flip(-1)) and torch.equal(flipped[1], x[1])
    holed = cutout(torch.ones(1, 1, 5, 6), torch.tensor([[0, 3]]), 4)  # rows [-2, 2) -> 0, 1; cols [1, 5)
    expected = torch.ones(5, 6)
    expected[0:2, 1:5] = 0
    assert torch.equal(holed[0, 0], expected)


def test_alternating_flips_show_each_image_both_ways_in_consecutive_epochs():
    order = torch.randperm(1000, generator=torch.Generator().manual_seed(1)).view(10, 100)
    first, second, third = (alternating_flips(order, 1000, epoch, seed=5) for epoch in (0, 1, 2))
    assert torch.equal(first, ~second) and torch.equal(first, third)
    assert 400 < int(first.sum()) < 600  # a random half starts flipped
    by_sample = torch.empty(1000, dtype=torch.bool)
    by_sample[order.flatten()] = first.flatten()
    assert torch.equal(alternating_flips(torch.arange(1000), 1000, 0, seed=5), by_sample)  # a property of the sample


def test_weight_ema_follows_the_formula():
    """avg <- avg + (1 - d_n)(w - avg), d_n = min(decay, (1 + n) / (10 + n)), on parameters and BN
    running statistics; the integer batch counter is copied."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    ema = WeightEMA(model, decay=0.5)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    for n in range(1, 4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(5, 3))  # moves the running statistics
        ema.update(model)
        d = min(0.5, (1 + n) / (10 + n))
        for key, value in model.state_dict().items():
            expected[key] = value.clone() if not value.is_floating_point() else expected[key] + (1 - d) * (value - expected[key])
    assert all(torch.allclose(ema.module.state_dict()[k].float(), expected[k].float()) for k in expected)
    assert int(ema.module.state_dict()["1.num_batches_tracked"]) == 3
    assert not any(p.requires_grad for p in ema.module.parameters())
    again = WeightEMA(model, decay=0.5)
    again.load_state_dict(ema.state_dict())
    assert again.steps == 3 and again.current_decay() == ema.current_decay()


def test_losses():
    torch.manual_seed(0)
    logits, target = torch.randn(3, 4, 5), torch.randint(0, 5, (4,))
    ce = torch.nn.functional.cross_entropy
    assert torch.allclose(loss_fn("ce", logits, target, 0.0), ce(logits.mean(0), target))
    tet = sum(ce(logits[t], target) for t in range(3)) / 3
    assert torch.allclose(loss_fn("tet", logits, target, 0.0), tet)


def test_schedules_match_torch():
    model = torch.nn.Linear(1, 1)
    for schedule, torch_cls, kwargs in ((Cosine("cosine", 0, 0.001), torch.optim.lr_scheduler.CosineAnnealingLR, {"T_max": 10, "eta_min": 0.001}),
                                        (Step("step", 0, 4, 0.1), torch.optim.lr_scheduler.StepLR, {"step_size": 4, "gamma": 0.1})):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        reference = torch_cls(optimizer, **kwargs)
        for epoch in range(10):
            assert lr_at(schedule, 0.1, epoch, 10) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12)
            optimizer.step()
            reference.step()
    warm = Cosine("cosine", 2, 0.0)
    assert [lr_at(warm, 1.0, e, 4) for e in range(4)] == pytest.approx([0.5, 1.0, 1.0, 0.5 * (1 + math.cos(math.pi / 2))])


def test_state_round_trip_without_pickle(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    save_state(tmp_path, {"optimizer": optimizer.state_dict(), "rng": capture_rng(CPU), "note": None})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    state = load_state(tmp_path)
    restore_rng(state["rng"], CPU)
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]
    fresh = torch.optim.AdamW(model.parameters(), lr=0.1)
    fresh.load_state_dict(state["optimizer"])
    for key, value in optimizer.state_dict()["state"][0].items():
        assert torch.equal(fresh.state_dict()["state"][0][key], value)
    assert fresh.param_groups[0]["betas"] == [0.8, 0.9] and state["note"] is None
    (tmp_path / "train_state.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(StateError, match="train_state.safetensors"):
        load_state(tmp_path)


def test_a_limit_that_keeps_only_some_classes_is_said(capsys):
    """CIFAR-10's PNG folders are read class by class: the first 512 training images are all aeroplanes."""
    warn_if_classes_lost("cifar10", "train", 120, torch.arange(10).repeat_interleave(50))
    assert capsys.readouterr().err == ("zoo train: warning: data.train_limit 120 keeps 3 of the 10 classes of cifar10 "
                                       "(the first 120 samples in the order it is stored); the run sees those alone\n")
    warn_if_classes_lost("mnist", "train", 20, torch.arange(10).repeat(50))  # mixed order: every class kept
    assert capsys.readouterr().err == ""
