"""The evaluation harness: accuracy, activity, operation counts, energy and speed of a checkpoint.

One pass over the data (fixed order, no shuffling, the RNG seeded per batch) measures top-1/top-5,
the firing statistics of every neuron layer (:mod:`zoo.evaluation.firing`) and the synaptic
operations of every Conv/Linear layer (:mod:`zoo.evaluation.counters`); energy follows from the
counts (:mod:`zoo.evaluation.energy`, methods.md section 5). The running totals are saved
atomically after every batch, so an interrupted evaluation resumes where it stopped with the same
result. Speed is then measured apart, without the counting hooks: the median forward time of up to
``timing_batches`` batches after one warm-up batch (latency per batch), samples per second over
those batches, and the peak memory (CUDA: allocated by tensors during the timed batches; CPU: the
process's peak resident set size).

A T sweep evaluates the same weights at each T (``model.T`` is set; event frames are integrated
again with T frames, while a checkpoint that takes one integrated frame gets it repeated T times)
and gives one record per T: accuracy against T is how ANN->SNN conversion
and T=1 -> T=N transfer are judged (methods.md sections 3 and 4).
"""

from __future__ import annotations

import json
import resource
import statistics
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from zoo.checkpoint import load_checkpoint, write_atomic
from zoo.config import CheckpointConfig
from zoo.hub import resolve_checkpoint
from zoo.machine import describe_device, software
from zoo.neurons import record_firing
from zoo.neurons import spec as specs
from zoo.registry import pretrained_entry

from . import counters, energy, firing, records

DEFAULT_RESULTS = Path("evaluation") / "results"


def evaluate(model: nn.Module, dataset: Dataset, *, T: int, batch_size: int = 128, device: str | torch.device = "cpu",
             limit: int | None = None, seed: int = 0, workers: int = 0, analog_input: bool = True,
             transform: Callable[[torch.Tensor], torch.Tensor] | None = None, state_path: str | Path | None = None,
             identity: dict[str, Any] | None = None, timing_batches: int = 10, progress: bool = True) -> dict[str, Any]:
    """Measure ``model`` at ``T`` steps on the first ``limit`` samples of ``dataset`` (all when None).

    Samples are ``(x, label)``: a static image ``[C, H, W]``, event frames ``[T, C, H, W]`` or one
    event frame ``[1, C, H, W]`` (repeated over T by the model).
    ``transform`` is applied to each batch on the device (the checkpoint's input normalisation).
    With ``state_path`` the running totals are kept there (``identity`` must match for a resume) and
    the file is removed when the pass completes. Returns the measurements of an evaluation record.
    """
    device = torch.device(device)
    model = model.to(device).eval()
    model.T = T
    samples = len(dataset) if limit is None else min(limit, len(dataset))
    if samples < 1:
        raise ValueError(f"nothing to evaluate: the dataset has {len(dataset)} samples and limit is {limit}")
    identity = {**(identity or {}), "T": T, "samples": samples, "batch_size": batch_size, "seed": seed,
                "device": device.type}
    totals = _counting_pass(model, dataset, samples, batch_size, device, seed, workers, analog_input, transform,
                            Path(state_path) if state_path else None, identity, progress)
    rate, value = firing.overall(totals["neurons"])
    acs = sum(c["acs"] for c in totals["synapses"].values())
    macs = sum(c["macs"] for c in totals["synapses"].values())
    result = {
        "samples": samples,
        "top1": 100.0 * totals["correct1"] / samples,
        "top5": 100.0 * totals["correct5"] / samples,
        "firing_rate": rate if totals["neurons"] else None,
        "mean_event_value": value if totals["neurons"] else None,
        "sops_per_sample": acs / samples,
        "macs_per_sample": macs / samples,
        "energy_uj_per_sample": energy.energy_pj(acs, macs) / samples / 1e6,
        "energy_constants": dict(energy.CONSTANTS),
        "params": sum(p.numel() for p in model.parameters()),
        "neuron_layers": firing.layer_summary(model, totals["neurons"], samples, T),
        "synaptic_layers": counters.layer_summary(model, totals["synapses"], samples),
    }
    subset = Subset(dataset, range(samples))
    return {**result, **_time_model(model, subset, batch_size, device, timing_batches, transform)}


def _counting_pass(model: nn.Module, dataset: Dataset, samples: int, batch_size: int, device: torch.device,
                   seed: int, workers: int, analog_input: bool, transform: Callable | None, state_path: Path | None,
                   identity: dict[str, Any], progress: bool) -> dict[str, Any]:
    """Accuracy, firing and operation totals over the samples, resumed from ``state_path``."""
    state = records.read_json(state_path) if state_path else None
    if state is None or state["identity"] != identity:
        state = {"identity": identity, "done": 0, "correct1": 0, "correct5": 0, "neurons": {}, "synapses": {}}
    batches = -(-samples // batch_size)
    loader = DataLoader(Subset(dataset, range(state["done"], samples)), batch_size=batch_size, shuffle=False,
                        num_workers=workers, pin_memory=device.type == "cuda")
    bar = tqdm(loader, total=batches, initial=state["done"] // batch_size, desc=f"T={identity['T']}",
               unit="batch", disable=not progress, leave=False)
    for x, y in bar:
        torch.manual_seed(seed + state["done"] // batch_size)  # stochastic layers see the same draws on resume
        x, y = _to_model_input(x, device, transform), y.to(device)
        with torch.no_grad(), counters.OperationCounter(model, analog_input) as ops, record_firing(model) as stats:
            logits = model(x).float()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        state["correct1"] += int((top[:, 0] == y).sum())
        state["correct5"] += int((top == y[:, None]).any(dim=1).sum())
        _add(state["neurons"], firing.batch_counts(stats))
        _add(state["synapses"], ops.counts())
        state["done"] += len(y)
        if state_path:
            write_atomic(state_path, json.dumps(state))
    if state_path:
        state_path.unlink(missing_ok=True)
    return state


def _to_model_input(x: torch.Tensor, device: torch.device, transform: Callable | None) -> torch.Tensor:
    """Batches of event frames are collated ``[B, T, C, H, W]``; the model takes time first."""
    x = x.to(device, non_blocking=True)
    if x.dim() == 5:
        x = x.transpose(0, 1).contiguous()
    return transform(x) if transform is not None else x


def _add(total: dict[str, dict[str, float]], batch: dict[str, dict[str, float]]) -> None:
    for layer, counts in batch.items():
        into = total.setdefault(layer, dict.fromkeys(counts, 0))
        for key, value in counts.items():
            into[key] += value


@torch.no_grad()
def _time_model(model: nn.Module, dataset: Dataset, batch_size: int, device: torch.device, timing_batches: int,
                transform: Callable | None) -> dict[str, Any]:
    """Latency (median ms per batch), throughput and peak memory of the plain forward pass."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    batches = []
    for x, _ in loader:
        batches.append(_to_model_input(x, device, transform))
        if len(batches) > timing_batches:
            break
    timed = batches[1:] or batches  # the first batch warms up (allocations, kernel selection)
    full = [b for b in timed if _batch_size(b) == batch_size] or timed
    model(batches[0])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for x in full:
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated(device) / 2**20, "cuda max allocated"
    else:
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process max RSS"
    return {"throughput_samples_per_s": sum(_batch_size(b) for b in full) / sum(times),
            "latency_ms": 1e3 * statistics.median(times), "peak_memory_mb": peak, "peak_memory_kind": kind,
            "timing_batches": len(full)}


def _batch_size(x: torch.Tensor) -> int:
    return x.shape[1] if x.dim() == 5 else x.shape[0]


# ---- checkpoints ------------------------------------------------------------------------------


def evaluate_checkpoint(checkpoint: str, dataset: str | None = None, *, Ts: Sequence[int] | None = None,
                        split: str = "test", data_dir: str | None = None, batch_size: int = 128,
                        results: str | Path = DEFAULT_RESULTS, limit: int | None = None, device: str | None = None,
                        force: bool = False, seed: int = 0, workers: int = 0, timing_batches: int = 10,
                        write_checkpoint: bool = False, progress: bool = True) -> list[dict[str, Any]]:
    """Evaluate a checkpoint (``arch.tag`` or a checkpoint folder) at each T of ``Ts`` (default:
    its own T) on ``dataset`` (default: the one it was trained on); write one record per T under
    ``results`` and return the records. A record already there for these weights is returned as
    it is, not recomputed, unless ``force``. ``write_checkpoint`` also stores the records in the
    checkpoint folder's ``config.json`` (``metrics["evaluations"]``)."""
    from zoo.data import create_dataset

    folder, pinned = resolve_checkpoint(checkpoint)
    if write_checkpoint and not Path(checkpoint).exists():
        raise ValueError(f"--write-checkpoint needs a checkpoint folder, not the published name {checkpoint!r}")
    model = load_checkpoint(folder, sha256=pinned)
    config: CheckpointConfig = model.pretrained_cfg
    dataset = (dataset or config.dataset["name"]).replace("-", "_").lower()
    Ts = list(dict.fromkeys(Ts or [config.T]))
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    command = _command(_public_name(checkpoint, config), dataset, split, Ts, batch_size, limit, seed)
    transform = _normalizer(config, device)
    out = []
    for T in Ts:
        name = records.record_name(config.name, split, T, limit)
        done = records.read_json(records.record_path(results, dataset, name))
        if done is not None and not force and done["checkpoint_sha256"] == config.weights_sha256:
            out.append({**done, "command": command})  # the command is derived, not measured
            continue
        data = create_dataset(dataset, root=data_dir, split=split, **_data_params(config, T))
        state = records.partial_path(results, dataset, name)
        if force:
            state.unlink(missing_ok=True)
        measured = evaluate(model, data, T=T, batch_size=batch_size, device=device, limit=limit, seed=seed,
                            workers=workers, analog_input=config.input.encoding == "direct", transform=transform, state_path=state,
                            identity={"checkpoint_sha256": config.weights_sha256, "dataset": dataset,
                                      "split": split}, timing_batches=timing_batches, progress=progress)
        record = {
            "schema": records.SCHEMA_VERSION, "model": config.name, "architecture": config.architecture,
            "method": config.recipe.get("method") or _neuron_name(config), "neuron": _neuron(config),
            "arch_kwargs": {**config.arch_kwargs, "T": T}, "checkpoint_sha256": config.weights_sha256,
            "T": T, "trained_T": config.T, "input": asdict(config.input), "dataset": dataset, "split": split,
            "dataset_describe": data.describe() if hasattr(data, "describe") else {"name": dataset, "split": split},
            "limit": limit, "seed": seed, "batch_size": batch_size, **measured,
            "device": describe_device(device), "software": software(), "command": command,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        records.write_record(results, record)
        out.append(record)
    if write_checkpoint:
        records.write_to_checkpoint(folder, out)
    return out


def _data_params(config: CheckpointConfig, T: int) -> dict[str, Any]:
    """How the data set is read for T steps: events integrated again into T frames (``frames``) or
    into the one frame the network was trained on (``repeated_frame``: the model repeats it); static
    images as [0, 1] pixels. All are then normalised as the checkpoint's input spec says
    (:func:`_normalizer`; event counts usually are not)."""
    params = dict(config.recipe.get("data", {}).get("params", {}))
    if config.input.encoding == "frames":
        return {**params, "frames": T}
    if config.input.encoding == "repeated_frame":
        return params
    return {**params, "normalize": False}


def _normalizer(config: CheckpointConfig, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """(x - mean) / std per channel (the third dimension from the end), with the checkpoint's own
    input normalisation; None where it has none."""
    if not config.input.mean:
        return None
    mean = torch.tensor(config.input.mean, device=device).view(-1, 1, 1)
    std = torch.tensor(config.input.std, device=device).view(-1, 1, 1)
    return lambda x: (x - mean) / std


def _neuron(config: CheckpointConfig) -> str:
    return specs.format(specs.parse(config.arch_kwargs["neuron"]))


def _neuron_name(config: CheckpointConfig) -> str:
    return specs.parse(config.arch_kwargs["neuron"])["name"]


def _public_name(checkpoint: str, config: CheckpointConfig) -> str:
    """How a reader names these weights: the published ``arch.tag`` when the folder holds the
    published checkpoint (same sha256), so that cards never show a local path; else the folder."""
    try:
        published = pretrained_entry(config.name).sha256 == config.weights_sha256
    except ValueError:
        published = False
    return config.name if published else checkpoint


def _command(checkpoint: str, dataset: str, split: str, Ts: list[int], batch_size: int, limit: int | None,
             seed: int) -> str:
    """The ``zoo eval`` command line that reproduces these records."""
    parts = ["zoo eval", str(checkpoint), "--dataset", dataset, "--split", split, "--T", ",".join(map(str, Ts)),
             "--batch-size", str(batch_size)]
    parts += ["--limit", str(limit)] if limit is not None else []
    parts += ["--seed", str(seed)] if seed else []
    return " ".join(parts)


