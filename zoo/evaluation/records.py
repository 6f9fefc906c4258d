"""Evaluation records: one JSON document per (checkpoint, dataset, split, T, sample limit).

Layout under a results folder (default ``evaluation/results/``)::

    <dataset>/<model>_<split>_T<T>[_n<limit>].json   one record each (the source of truth)
    <dataset>.csv                                    one row per record, regenerated from the JSON
    .partial/<record name>.json                      the running state of an unfinished evaluation

Record keys (``SCHEMA_VERSION`` 1); the model card (``zoo.cards``) reads ``T``, ``split``,
``top1``, ``top5``, ``firing_rate``, ``sops_per_sample``, ``energy_uj_per_sample``,
``latency_ms``, ``device`` and ``command``:

    schema, model, architecture, method, neuron, arch_kwargs, checkpoint_sha256, T, trained_T,
    input {encoding, size, mean, std: the normalisation applied}, dataset, split, dataset_describe,
    samples, limit, seed, batch_size,
    top1, top5 (percent), firing_rate, mean_event_value, sops_per_sample, macs_per_sample,
    energy_uj_per_sample, energy_constants, params,
    throughput_samples_per_s, latency_ms, peak_memory_mb, peak_memory_kind, timing_batches,
    neuron_layers [{name, neuron, neurons, firing_rate, mean_event_value, bits_per_spike,
                    events_per_sample}],
    synaptic_layers [{name, kind, fan_in, input, acs_per_sample, macs_per_sample, input_event_rate}],
    device, software, command, date
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterable

from zoo.checkpoint import CONFIG, CheckpointError, write_atomic
from zoo.config import CheckpointConfig

SCHEMA_VERSION = 1
PARTIAL = ".partial"
# Measurements of the machine, not of the model: they differ between identical runs.
TIMING_KEYS = ("throughput_samples_per_s", "latency_ms", "peak_memory_mb", "date")
CSV_COLUMNS = (
    "model", "architecture", "method", "neuron", "T", "trained_T", "split", "samples", "top1", "top5",
    "firing_rate", "mean_event_value", "sops_per_sample", "macs_per_sample", "energy_uj_per_sample",
    "params", "throughput_samples_per_s", "latency_ms", "peak_memory_mb", "batch_size", "device",
    "checkpoint_sha256", "command",
)


def record_name(model: str, split: str, T: int, limit: int | None) -> str:
    """``convnet.lif_mnist_t4_test_T4`` (``_n<limit>`` appended for a subset)."""
    return f"{model}_{split}_T{T}" + (f"_n{limit}" if limit is not None else "")


def record_path(results: str | Path, dataset: str, name: str) -> Path:
    return Path(results) / dataset / f"{name}.json"


def partial_path(results: str | Path, dataset: str, name: str) -> Path:
    return Path(results) / PARTIAL / f"{dataset}_{name}.json"


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON document at ``path``, or None when there is none."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def load_records(results: str | Path, dataset: str | None = None) -> list[dict[str, Any]]:
    """Every record under ``results`` (one dataset's when given), sorted by dataset, model, split,
    T and limit."""
    pattern = f"{dataset}/*.json" if dataset else "*/*.json"
    records = [json.loads(p.read_text()) for p in sorted(Path(results).glob(pattern))
               if not p.parent.name.startswith(".")]
    return sorted(records, key=sort_key)


def sort_key(record: dict[str, Any]) -> tuple:
    return (record["dataset"], record["model"], record["split"], record["T"], record["limit"] or 0)


def csv_text(records: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow({key: "" if record.get(key) is None else record[key] for key in CSV_COLUMNS})
    return buffer.getvalue()


def write_csv(results: str | Path, dataset: str) -> Path:
    """Regenerate ``<results>/<dataset>.csv`` from that dataset's JSON records."""
    path = Path(results) / f"{dataset}.csv"
    write_atomic(path, csv_text(load_records(results, dataset)))
    return path


def write_record(results: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as JSON and bring its dataset's CSV up to date (both atomically)."""
    name = record_name(record["model"], record["split"], record["T"], record["limit"])
    path = record_path(results, record["dataset"], name)
    write_atomic(path, dumps(record))
    write_csv(results, record["dataset"])
    return path


def write_to_checkpoint(folder: str | Path, records: Iterable[dict[str, Any]]) -> Path:
    """Store ``records`` in the checkpoint's ``config.json`` under ``metrics["evaluations"]`` (the
    model card and ``zoo publish`` read them there). A record replaces an earlier one of the same
    dataset, split and T; records of other weights, or of a subset (``--limit``), are refused."""
    path = Path(folder) / CONFIG
    config = CheckpointConfig.load(path)
    evaluations = {_slot(r): r for r in config.metrics.get("evaluations", [])}
    for record in records:
        if record["checkpoint_sha256"] != config.weights_sha256:
            raise CheckpointError(f"{path}: the record of {record['model']} at T={record['T']} measured weights "
                                  f"{record['checkpoint_sha256']}, not this checkpoint's {config.weights_sha256}")
        if record["limit"] is not None:
            raise ValueError(f"{record['model']} T={record['T']}: measured on the first {record['limit']} samples "
                             "only; a checkpoint records evaluations of the whole split")
        evaluations[_slot(record)] = record
    config.metrics["evaluations"] = [evaluations[key] for key in sorted(evaluations)]
    write_atomic(path, config.dumps())
    return path


def _slot(record: dict[str, Any]) -> tuple[str, str, int]:
    return record.get("dataset", ""), record.get("split", ""), record.get("T", 0)
