"""The evaluation harness: accuracy, activity, operation counts, energy and speed of a checkpoint.

One pass over the data (fixed order, no shuffling, the RNG seeded per batch) measures top-1/top-5,
the firing statistics of every neuron layer (:mod:`zoo.evaluation.firing`), the synaptic
operations of every Conv/Linear layer (:mod:`zoo.evaluation.counters`) and NeuroBench's workload
metrics (:mod:`zoo.evaluation.neurobench`); energy follows from the zoo's counts
(:mod:`zoo.evaluation.energy`, methods.md section 5). The running totals are saved
atomically after every batch, so an interrupted evaluation resumes where it stopped with the same
result; totals that do not belong to this evaluation, or that are damaged, are never resumed
(:mod:`zoo.evaluation.partial`). Speed is then measured apart, without the counting hooks: the median forward time of up to
``timing_batches`` batches after one warm-up batch (latency per batch), samples per second over
those batches, and the peak memory (CUDA: allocated by tensors during the timed batches; CPU: the
process's peak resident set size).

A T sweep evaluates the same weights at each T (``model.T`` is set; event frames are integrated
again with T frames, while a checkpoint that takes one integrated frame gets it repeated T times)
and gives one record per T: accuracy against T is how ANN->SNN conversion
and T=1 -> T=N transfer are judged (methods.md sections 3 and 4).
"""

from __future__ import annotations

import contextlib
import resource
import statistics
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from zoo.checkpoint import CONFIG, load_checkpoint, write_atomic
from zoo.config import CheckpointConfig
from zoo.hub import resolve_checkpoint
from zoo.machine import describe_device, software
from zoo.names import UnsafeNameError, check_checkpoint_name, check_segment
from zoo.neurons import record_firing
from zoo.neurons import spec as specs
from zoo.registry import pretrained_entry
from zoo.suggest import unknown
from zoo.train.files import file_lock

from . import DEFAULT_RESULTS, counters, energy, firing, neurobench, partial, records


def evaluate(model: nn.Module, dataset: Dataset, *, T: int, batch_size: int = 128, device: str | torch.device = "cpu",
             limit: int | None = None, seed: int = 0, workers: int = 0, analog_input: bool = True,
             transform: Callable[[torch.Tensor], torch.Tensor] | None = None, state_path: str | Path | None = None,
             identity: dict[str, Any] | None = None, timing_batches: int = 10, progress: bool = True,
             state_lock: str | Path | None = None) -> dict[str, Any]:
    """Measure ``model`` at ``T`` steps on the first ``limit`` samples of ``dataset`` (all when None).

    Samples are ``(x, label)``: a static image ``[C, H, W]``, event frames ``[T, C, H, W]`` or one
    event frame ``[1, C, H, W]`` (repeated over T by the model).
    ``transform`` is applied to each batch on the device (the checkpoint's input normalisation).
    With ``state_path`` the running totals are kept there and the file is removed when the pass
    completes; they are resumed only by an evaluation of the same key (``identity``, which the
    caller fills with what defines the measurement beyond the arguments here, and these arguments)
    and on the same data (:mod:`zoo.evaluation.partial`). ``state_lock``: a lock file held while
    the totals are written (the results folder's). Returns the measurements of an evaluation record.
    """
    device = torch.device(device)
    model = model.to(device).eval()
    model.T = T
    samples = len(dataset) if limit is None else min(limit, len(dataset))
    if samples < 1:
        raise ValueError(f"nothing to evaluate: the dataset has {len(dataset)} samples and limit is {limit}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch size must be a positive integer, got {batch_size!r}")
    described = dataset.describe() if hasattr(dataset, "describe") else {"type": type(dataset).__name__}
    key = partial.canonical({**(identity or {}), "schema": partial.SCHEMA, "T": T, "samples": samples,
                             "limit": limit, "batch_size": batch_size, "seed": seed, "device": device.type,
                             "analog_input": analog_input, "dataset_describe": described})
    pass_state = _PassState(Path(state_path), key, state_lock) if state_path else None
    totals = _counting_pass(model, dataset, samples, batch_size, device, seed, workers, analog_input, transform,
                            pass_state, progress)
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
        "neurobench": neurobench.results(model, totals["neurobench"], samples),
        "neuron_layers": firing.layer_summary(model, totals["neurons"], samples, T),
        "synaptic_layers": counters.layer_summary(model, totals["synapses"], samples),
    }
    subset = Subset(dataset, range(samples))
    return {**result, **_time_model(model, subset, batch_size, device, timing_batches, transform)}


class _PassState:
    """Where the running totals of a counting pass are kept, under which key and lock."""

    def __init__(self, path: Path, key: dict[str, Any], lock: str | Path | None) -> None:
        self.path, self.key, self.lock = path, key, lock

    def save(self, state: dict[str, Any]) -> None:
        with file_lock(self.lock) if self.lock else contextlib.nullcontext():
            write_atomic(self.path, partial.dumps(state))

    def resume(self, model: nn.Module, dataset: Dataset, samples: int, batch_size: int, workers: int) -> dict[str, Any]:
        """The saved totals when they can be trusted (:mod:`zoo.evaluation.partial`), else fresh
        ones, with one line on stderr saying why the saved ones were ignored."""
        state, reason = partial.read(self.path)
        if state is not None:
            layers = {name for name, _ in model.named_modules()}
            reason = partial.problem(state, self.key, samples, batch_size, layers)
        if reason is None and state is not None and state["done"]:
            if _data_digest(dataset, state["done"], batch_size, workers) != state["data_sha256"]:
                reason = f"the data of the {state['done']} samples it counted has changed since"
        if reason is not None:
            print(f"zoo eval: ignoring the partial evaluation {self.path}: {reason}; evaluating from the start",
                  file=sys.stderr)
        return state if reason is None and state is not None else partial.fresh(self.key)

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)


def _data_digest(dataset: Dataset, done: int, batch_size: int, workers: int) -> str:
    """The chained hash of the first ``done`` samples, read in the batches the pass reads."""
    digest = ""
    for x, y in DataLoader(Subset(dataset, range(done)), batch_size=batch_size, shuffle=False, num_workers=workers):
        digest = partial.chain(digest, x, y)
    return digest


def _counting_pass(model: nn.Module, dataset: Dataset, samples: int, batch_size: int, device: torch.device,
                   seed: int, workers: int, analog_input: bool, transform: Callable | None,
                   kept: _PassState | None, progress: bool) -> dict[str, Any]:
    """Accuracy, firing and operation totals over the samples, resumed from ``kept``."""
    state = kept.resume(model, dataset, samples, batch_size, workers) if kept else partial.fresh({})
    batches = -(-samples // batch_size)
    loader = DataLoader(Subset(dataset, range(state["done"], samples)), batch_size=batch_size, shuffle=False,
                        num_workers=workers, pin_memory=device.type == "cuda")
    bar = tqdm(loader, total=batches, initial=state["done"] // batch_size, desc=f"T={model.T}",
               unit="batch", disable=not progress, leave=False)
    for x, y in bar:
        torch.manual_seed(seed + state["done"] // batch_size)  # stochastic layers see the same draws on resume
        if kept:
            state["data_sha256"] = partial.chain(state["data_sha256"], x, y)
        x, y = _to_model_input(x, device, transform), y.to(device)
        with torch.no_grad(), counters.OperationCounter(model, analog_input) as ops, record_firing(model) as stats, \
                neurobench.WorkloadCounter(model) as workload:
            logits = model(x).float()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        state["correct1"] += int((top[:, 0] == y).sum())
        state["correct5"] += int((top == y[:, None]).any(dim=1).sum())
        _add(state["neurons"], firing.batch_counts(stats))
        _add(state["synapses"], ops.counts())
        for key, value in workload.counts().items():
            state["neurobench"][key] += value
        state["done"] += len(y)
        if kept:
            kept.save(state)
    if kept:
        kept.finish()
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


class EvaluationError(ValueError):
    """An evaluation that cannot run as asked: bad arguments or a checkpoint config that names
    unsafe or unknown things; the message names the argument or the file and field."""


def evaluate_checkpoint(checkpoint: str, dataset: str | None = None, *, Ts: Sequence[int] | None = None,
                        split: str = "test", data_dir: str | None = None, batch_size: int = 128,
                        results: str | Path = DEFAULT_RESULTS, limit: int | None = None, device: str | None = None,
                        force: bool = False, seed: int = 0, workers: int = 0, timing_batches: int = 10,
                        write_checkpoint: bool = False, progress: bool = True) -> list[dict[str, Any]]:
    """Evaluate a checkpoint (``arch.tag`` or a checkpoint folder) at each T of ``Ts`` (default:
    its own T) on ``dataset`` (default: the one it was trained on); write one record per T under
    ``results`` and return the records. A record already there for these weights is returned as
    it is, not recomputed, unless ``force``; measured again, it is rewritten only where a result
    differs (:func:`records.remeasured`: the same results keep the stored record with its timing,
    so re-running a shipped evaluation leaves its files as they are). ``write_checkpoint`` also
    stores the records in the checkpoint folder's ``config.json`` (``metrics["evaluations"]``).

    Every name that becomes a path (the config's ``arch.tag``, the data set, the split) is checked
    first, and the records, CSV and partial totals are written inside ``results`` only."""
    from zoo.data import create_dataset

    _check_arguments(Ts, batch_size, limit, seed, workers, timing_batches)
    folder, pinned = resolve_checkpoint(checkpoint)
    if write_checkpoint and not Path(checkpoint).exists():
        raise ValueError(f"--write-checkpoint needs a checkpoint folder, not the published name {checkpoint!r}")
    model = load_checkpoint(folder, sha256=pinned)
    config: CheckpointConfig = model.checkpoint_config
    dataset, split = _check_names(config, folder / CONFIG, dataset, split)
    Ts = list(dict.fromkeys(Ts or [config.T]))
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    command = _command(_public_name(checkpoint, config), dataset, split, Ts, batch_size, limit, seed)
    transform = _normalizer(config, device)
    records.remove_leftovers(results, dataset)
    out = []
    for T in Ts:
        name = records.record_name(config.name, split, T, limit)
        path = records.record_path(results, dataset, name)
        stored = _stored_record(path, config)
        if stored is not None and not force:
            out.append({**stored, "command": command})  # the command is derived, not measured
            continue
        params = _data_params(config, T, dataset, folder / CONFIG)
        data = create_dataset(dataset, root=data_dir, split=split, **params)
        state = records.partial_path(results, dataset, name)
        if force:
            state.unlink(missing_ok=True)
        identity = {"checkpoint_sha256": config.weights_sha256, "arch_kwargs": config.arch_kwargs,
                    "input": asdict(config.input), "dataset": dataset, "data_params": params, "split": split}
        measured = evaluate(model, data, T=T, batch_size=batch_size, device=device, limit=limit, seed=seed,
                            workers=workers, analog_input=config.input.encoding == "direct", transform=transform,
                            state_path=state, state_lock=Path(results) / records.LOCK, identity=identity,
                            timing_batches=timing_batches, progress=progress)
        record = {
            "schema": records.SCHEMA_VERSION, "model": config.name, "architecture": config.architecture,
            "method": _method(config), "neuron": _neuron(config),
            "arch_kwargs": {**config.arch_kwargs, "T": T}, "checkpoint_sha256": config.weights_sha256,
            "T": T, "trained_T": config.T, "input": asdict(config.input), "dataset": dataset, "split": split,
            "dataset_describe": data.describe() if hasattr(data, "describe") else {"name": dataset, "split": split},
            "limit": limit, "seed": seed, "batch_size": batch_size, **measured,
            "device": describe_device(device), "software": software(), "command": command,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if stored is not None:
            record = _keep_agreeing(path, stored, record)
        if record != stored:
            records.write_record(results, record)
        out.append(record)
    if write_checkpoint:
        records.write_to_checkpoint(folder, out)
    return out


def _keep_agreeing(path: Path, stored: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """What ``--force`` keeps of a record measured again (:func:`records.remeasured`), with a line
    on stderr when the stored record stays: this run's timing is then printed, not stored."""
    record, kept = records.remeasured(stored, fresh)
    if kept:
        print(f"zoo eval: {path}: measured again with the same results; the record stays as it is, with the timing "
              f"measured on {stored.get('device')} ({stored.get('date')}); this run: {fresh['latency_ms']:.1f} ms per "
              f"batch, {fresh['throughput_samples_per_s']:.0f} samples/s on {fresh['device']}", file=sys.stderr)
    return record


def _check_arguments(Ts: Sequence[int] | None, batch_size: int, limit: int | None, seed: int, workers: int,
                     timing_batches: int) -> None:
    """The numbers of an evaluation: integers (not booleans) in range; a limit is at least 1
    (a record name holds it, and 0 or a negative limit measures nothing)."""
    ranges = {"batch size": (batch_size, 1), "seed": (seed, 0), "workers": (workers, 0),
              "timing batches": (timing_batches, 0), **({"limit": (limit, 1)} if limit is not None else {}),
              **{f"T={t!r}": (t, 1) for t in (Ts or [])}}
    for what, (value, low) in ranges.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise EvaluationError(f"{what} must be an integer >= {low}, got {value!r}")
    if seed >= 2**32:
        raise EvaluationError(f"seed must be below 2**32, got {seed}")


def _check_names(config: CheckpointConfig, source: Path, dataset: str | None, split: str) -> tuple[str, str]:
    """The checkpoint's ``arch.tag``, the data set (``--dataset`` or the config's) and the split,
    checked before any of them becomes part of a path; the data set must be one zoo.data knows."""
    from zoo.data import list_datasets

    try:
        check_checkpoint_name(config.name, str(source), "field 'name'")
        if dataset is None:
            named = config.dataset.get("name")
            dataset = check_segment(named.replace("-", "_").lower() if isinstance(named, str) else named,
                                    "field 'dataset.name'", str(source))
        else:
            dataset = check_segment(dataset.replace("-", "_").lower(), "--dataset")
        check_segment(split, "--split")
    except UnsafeNameError as error:
        raise EvaluationError(str(error)) from None
    if dataset not in list_datasets():
        raise EvaluationError(unknown("data set", dataset, list_datasets(), f"Known: {', '.join(list_datasets())}"))
    return dataset, split


def _stored_record(path: Path, config: CheckpointConfig) -> dict[str, Any] | None:
    """The record already at ``path`` for these weights, or None: absent, of other weights, or
    unreadable (then one line on stderr says so and it is measured again)."""
    try:
        record = records.read_json(path)
        if record is None:
            return None
        records.check_record(record, path)
    except records.RecordError as error:
        print(f"zoo eval: ignoring {error}; measuring again", file=sys.stderr)
        return None
    return record if record["checkpoint_sha256"] == config.weights_sha256 else None


def _data_params(config: CheckpointConfig, T: int, dataset: str, source: Path) -> dict[str, Any]:
    """How the data set is read for T steps: events integrated again into T frames (``frames``) or
    into the one frame the network was trained on (``repeated_frame``: the model repeats it); static
    images as [0, 1] pixels. All are then normalised as the checkpoint's input spec says
    (:func:`_normalizer`; event counts usually are not). The recipe's ``data.params`` in the
    config may hold only keywords a recipe may (no cache folder or other machine path)."""
    from zoo.train.recipe import dataset_keywords

    data = config.recipe.get("data") or {}
    params = (data.get("params") or {}) if isinstance(data, dict) else None
    if not isinstance(params, dict):
        raise EvaluationError(f"{source}: field 'recipe.data.params' must be a mapping, got {type(params).__name__}")
    unknown = sorted(set(params) - dataset_keywords(dataset), key=str)
    if unknown:
        raise EvaluationError(f"{source}: field 'recipe.data.params' has key(s) {', '.join(map(repr, unknown))} "
                              f"that {dataset} does not take; expected some of {', '.join(sorted(dataset_keywords(dataset)))}")
    params = dict(params)
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


def _method(config: CheckpointConfig) -> str:
    """The recipe's method (the neuron's name where there is no recipe), ``+restim`` where the network
    re-stimulates its neurons (multi-bit spikes' ECA connection), so that the leaderboard and its
    plots tell the re-stimulation ablation's two networks apart."""
    method = config.recipe.get("method") or specs.parse(config.arch_kwargs["neuron"])["name"]
    return f"{method}+restim" if config.arch_kwargs.get("restim") else method


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


