"""Evaluation records: one JSON document per (checkpoint, dataset, split, T, sample limit).

Layout under a results folder (default ``evaluation/results/``)::

    <dataset>/<model>_<split>_T<T>[_n<limit>].json   one record each (the source of truth)
    <dataset>.csv                                    one row per record, regenerated from the JSON
    .partial/<dataset>_<record name>.json            the running state of an unfinished evaluation
    .zoo-results.lock                                held by every writer (records, CSVs, partials)

Names from configs and records (the model's ``arch.tag``, the data set, the split) are checked
(:mod:`zoo.names`) before they become paths, and every path is confined to the results folder.
Writes are atomic and made under the results lock, so that two evaluations writing records of one
data set never lose a CSV row, and the temporary files of a killed writer are removed under it.
A checkpoint's ``config.json`` is updated the same way: under its lock (``.config.json.lock``
beside it), read again, merged and written atomically, so concurrent writers all keep their records.

Record keys (``SCHEMA_VERSION`` 1); the model card (``zoo.cards``) reads ``T``, ``split``,
``top1``, ``top5``, ``firing_rate``, ``sops_per_sample``, ``energy_uj_per_sample``,
``latency_ms``, ``device`` and ``command``:

    schema, model, architecture, method, neuron, arch_kwargs, checkpoint_sha256, T, trained_T,
    input {encoding, size, mean, std: the normalisation applied}, dataset, split, dataset_describe,
    samples, limit, seed, batch_size,
    top1, top5 (percent), firing_rate, mean_event_value, sops_per_sample, macs_per_sample,
    energy_uj_per_sample, energy_constants, params,
    neurobench {Footprint, ConnectionSparsity, ActivationSparsity, SynapticOperations {Effective_MACs,
                Effective_ACs, Dense}, MembraneUpdates, definitions}   (zoo.evaluation.neurobench; records
                measured before it lack the object),
    throughput_samples_per_s, latency_ms, peak_memory_mb, peak_memory_kind, timing_batches,
    neuron_layers [{name, neuron, neurons, firing_rate, mean_event_value, bits_per_spike,
                    events_per_sample}],
    synaptic_layers [{name, kind, fan_in, input, acs_per_sample, macs_per_sample, input_event_rate}],
    device, software, command, date
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable, Iterator

from zoo.checkpoint import CONFIG, CheckpointError, write_atomic
from zoo.config import CheckpointConfig
from zoo.names import UnsafeNameError, check_checkpoint_name, check_segment, confined
from zoo.train.files import CONFIG_LOCK, file_lock, remove_stale_tmp

SCHEMA_VERSION = 1
PARTIAL = ".partial"
LOCK = ".zoo-results.lock"
MAX_RECORD_BYTES = 64 << 20


class RecordError(ValueError):
    """A record file that is not a readable evaluation record; the message names the file."""
# Measurements of the machine, not of the model: they differ between identical runs.
TIMING_KEYS = ("throughput_samples_per_s", "latency_ms", "peak_memory_mb", "date")
# What describes the run that measured a record rather than the model: the timing and the machine
# it was measured on, and the command line (equivalent invocations differ, e.g. a T sweep or one T).
RUN_KEYS = (*TIMING_KEYS, "peak_memory_kind", "timing_batches", "device", "software", "command")
# NeuroBench's metrics (zoo.evaluation.neurobench) as CSV columns: column -> path in the record's "neurobench"
NEUROBENCH_COLUMNS = {
    "nb_footprint_bytes": ("Footprint",), "nb_connection_sparsity": ("ConnectionSparsity",),
    "nb_activation_sparsity": ("ActivationSparsity",), "nb_effective_macs": ("SynapticOperations", "Effective_MACs"),
    "nb_effective_acs": ("SynapticOperations", "Effective_ACs"), "nb_dense_ops": ("SynapticOperations", "Dense"),
    "nb_membrane_updates": ("MembraneUpdates",),
}
CSV_COLUMNS = (
    "model", "architecture", "method", "neuron", "T", "trained_T", "split", "samples", "top1", "top5",
    "firing_rate", "mean_event_value", "sops_per_sample", "macs_per_sample", "energy_uj_per_sample",
    "params", *NEUROBENCH_COLUMNS, "throughput_samples_per_s", "latency_ms", "peak_memory_mb", "batch_size",
    "device", "checkpoint_sha256", "command",
)


def record_name(model: str, split: str, T: int, limit: int | None) -> str:
    """``convnet.lif_mnist_t4_test_T4`` (``_n<limit>`` appended for a subset); the model and the
    split are checked names (:mod:`zoo.names`), T and limit integers."""
    check_checkpoint_name(model, what="model name")
    check_segment(split, "split")
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (T, 0 if limit is None else limit)):
        raise UnsafeNameError(f"T and limit must be integers, got {T!r}, {limit!r}")
    return f"{model}_{split}_T{T}" + (f"_n{limit}" if limit is not None else "")


def dataset_folder(results: str | Path, dataset: str) -> Path:
    return confined(results, check_segment(dataset, "data set name"))


def record_path(results: str | Path, dataset: str, name: str) -> Path:
    return confined(dataset_folder(results, dataset), f"{name}.json")


def partial_path(results: str | Path, dataset: str, name: str) -> Path:
    return confined(results, PARTIAL, f"{check_segment(dataset, 'data set name')}_{name}.json")


def csv_path(results: str | Path, dataset: str) -> Path:
    return confined(results, f"{check_segment(dataset, 'data set name')}.csv")


@contextlib.contextmanager
def locked(results: str | Path) -> Iterator[None]:
    """Hold the results folder's lock (every writer of records, CSVs and partials holds it)."""
    with file_lock(Path(results) / LOCK):
        yield


def remove_leftovers(results: str | Path, dataset: str) -> None:
    """Remove the temporary files that killed writers left among the records of ``dataset``."""
    with locked(results):
        for folder in (Path(results), dataset_folder(results, dataset), Path(results) / PARTIAL):
            remove_stale_tmp(folder)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON document at ``path``, or None when there is none; one that is not JSON, or not an
    object, is a RecordError naming the file."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_RECORD_BYTES + 1)
    except FileNotFoundError:
        return None
    if len(data) > MAX_RECORD_BYTES:
        raise RecordError(f"{path}: larger than {MAX_RECORD_BYTES} bytes; not an evaluation record")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise RecordError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise RecordError(f"{path}: expected a JSON object, got {type(document).__name__}")
    return document


NUMBER = (int, float)
# The fields a record must hold, and their types, for the leaderboard, CSVs, plots and cards to read it.
RECORD_FIELDS: dict[str, tuple[type, ...]] = {
    "model": (str,), "architecture": (str,), "method": (str,), "neuron": (str,), "dataset": (str,),
    "split": (str,), "T": (int,), "limit": (int, type(None)), "samples": (int,), "checkpoint_sha256": (str,),
    "top1": NUMBER, "top5": NUMBER, "firing_rate": (*NUMBER, type(None)), "sops_per_sample": NUMBER,
    "energy_uj_per_sample": NUMBER, "params": (int,), "neuron_layers": (list,),
}


def check_record(record: dict[str, Any], path: Path) -> dict[str, Any]:
    """``record`` read from ``path``, refused (RecordError) unless it has the fields above with
    finite numbers, its names are safe (:mod:`zoo.names`), it lies where its name says, its
    accuracies are percentages of at least one sample and its layers have names and rates."""
    for key, kinds in RECORD_FIELDS.items():
        if key not in record:
            raise RecordError(f"{path}: field {key!r} is missing")
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, kinds) or (isinstance(value, float) and not math.isfinite(value)):
            expected = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise RecordError(f"{path}: field {key!r} must be a finite {expected}, got {value!r}"[:300])
    for layer in record["neuron_layers"]:
        if not (isinstance(layer, dict) and isinstance(layer.get("name"), str)
                and isinstance(layer.get("firing_rate"), NUMBER) and not isinstance(layer.get("firing_rate"), bool)):
            raise RecordError(f"{path}: field 'neuron_layers' must hold objects with a 'name' and a 'firing_rate'")
    try:
        check_checkpoint_name(record["model"], str(path), "field 'model'")
        check_segment(record["dataset"], "field 'dataset'", str(path))
        check_segment(record["split"], "field 'split'", str(path))
    except UnsafeNameError as error:
        raise RecordError(str(error)) from None
    if record["samples"] < 1 or not all(0 <= record[k] <= 100 for k in ("top1", "top5")):
        raise RecordError(f"{path}: needs samples >= 1 and top1, top5 in [0, 100], got {record['samples']}, "
                          f"{record['top1']}, {record['top5']}")
    expected = f"{record_name(record['model'], record['split'], record['T'], record['limit'])}.json"
    if path.name != expected or path.parent.name != record["dataset"]:
        raise RecordError(f"{path}: holds the record {record['dataset']}/{expected}; a record lies at "
                          "<results>/<dataset>/<model>_<split>_T<T>[_n<limit>].json")
    return record


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def load_records(results: str | Path, dataset: str | None = None) -> list[dict[str, Any]]:
    """Every record under ``results`` (one dataset's when given), sorted by dataset, model, split,
    T and limit."""
    pattern = f"{check_segment(dataset, 'data set name')}/*.json" if dataset else "*/*.json"
    paths = [p for p in sorted(Path(results).glob(pattern)) if not p.parent.name.startswith(".") and not p.name.startswith(".")]
    records = [check_record(record, p) for p in paths if (record := read_json(p)) is not None]
    return sorted(records, key=sort_key)


def sort_key(record: dict[str, Any]) -> tuple:
    return (record["dataset"], record["model"], record["split"], record["T"], record["limit"] or 0)


def csv_text(records: Iterable[dict[str, Any]]) -> str:
    """The CSV of ``records``: one row each, NeuroBench's metrics flattened into their columns, blank
    where a record lacks a value (records measured before the harness computed NeuroBench's)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for record in records:
        row = {**record, **neurobench_columns(record)}
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in CSV_COLUMNS})
    return buffer.getvalue()


def neurobench_columns(record: dict[str, Any]) -> dict[str, Any]:
    """The record's NeuroBench metrics by CSV column (None where absent)."""
    columns = {}
    for column, path in NEUROBENCH_COLUMNS.items():
        value: Any = record.get("neurobench")
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        columns[column] = value
    return columns


def write_csv(results: str | Path, dataset: str) -> Path:
    """Regenerate ``<results>/<dataset>.csv`` from that dataset's JSON records (under the lock)."""
    with locked(results):
        return _write_csv(results, dataset)


def _write_csv(results: str | Path, dataset: str) -> Path:
    """``write_csv`` for a caller that holds the lock (flock is not reentrant: a second lock of
    the same file in one process waits for the first)."""
    path = csv_path(results, dataset)
    write_atomic(path, csv_text(load_records(results, dataset)))
    return path


def write_record(results: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as JSON and bring its dataset's CSV up to date (atomically, under the lock)."""
    name = record_name(record["model"], record["split"], record["T"], record["limit"])
    path = record_path(results, record["dataset"], name)
    with locked(results):
        write_atomic(path, dumps(record))
        _write_csv(results, record["dataset"])
    return path


def remeasured(stored: dict[str, Any], fresh: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The record to keep after measuring ``fresh`` again where ``stored`` lies, and whether it is
    ``stored``.

    ``stored`` stays as it is, with its timing, machine and command (``RUN_KEYS``), when the new
    measurement agrees with it: the same fields, and every field but those equal, numbers within a
    relative ``AGREE`` (float rounding on another CPU can move a membrane across its threshold: a
    few spikes in tens of millions). Otherwise ``fresh`` replaces it whole, so a record is always
    one measurement: its date, device and timing belong to the numbers beside them. Measuring a
    shipped record again (the README's main job does) so leaves its file as it is unless a result
    changed, or the harness measures a field the record lacks."""
    fresh = json.loads(dumps(fresh))  # as it would read back: tuples become lists
    same = set(stored) == set(fresh) and all(_agree(stored[k], fresh[k]) for k in stored if k not in RUN_KEYS)
    return (stored, True) if same else (fresh, False)


AGREE = 1e-6  # relative difference within which two measured numbers are the same result


def _agree(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_agree(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_agree(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, NUMBER) and isinstance(b, NUMBER) and math.isclose(a, b, rel_tol=AGREE, abs_tol=0.0)
    return a == b


def write_to_checkpoint(folder: str | Path, records: Iterable[dict[str, Any]]) -> Path:
    """Store ``records`` in the checkpoint's ``config.json`` under ``metrics["evaluations"]`` (the
    model card and ``zoo publish`` read them there). A record replaces an earlier one of the same
    dataset, split and T; records of other weights, or of a subset (``--limit``), are refused.

    The config is read and written under its lock (``.config.json.lock`` beside it), so that
    evaluations writing into one checkpoint at once merge instead of losing each other's records."""
    records = list(records)
    for record in records:
        if record["limit"] is not None:
            raise ValueError(f"{record['model']} T={record['T']}: measured on the first {record['limit']} samples "
                             "only; a checkpoint records evaluations of the whole split")
    path = Path(folder) / CONFIG
    with file_lock(Path(folder) / CONFIG_LOCK):
        remove_stale_tmp(folder, targets=(CONFIG,))
        config = CheckpointConfig.load(path)
        stored = config.metrics.get("evaluations")
        evaluations = {_slot(r): r for r in (stored if isinstance(stored, list) else []) if isinstance(r, dict)}
        for record in records:
            if record["checkpoint_sha256"] != config.weights_sha256:
                raise CheckpointError(f"{path}: the record of {record['model']} at T={record['T']} measured weights "
                                      f"{record['checkpoint_sha256']}, not this checkpoint's {config.weights_sha256}")
            evaluations[_slot(record)] = record
        config.metrics["evaluations"] = [evaluations[key] for key in sorted(evaluations)]
        write_atomic(path, config.dumps())
    return path


def _slot(record: dict[str, Any]) -> tuple[str, str, int]:
    """Where a record goes among a checkpoint's evaluations (sortable whatever the record holds)."""
    T = record.get("T")
    return str(record.get("dataset", "")), str(record.get("split", "")), T if type(T) is int else 0
