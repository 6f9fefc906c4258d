"""The running totals of an unfinished evaluation (``.partial/<dataset>_<record>.json``), and when
to trust them.

A partial file lets an interrupted ``zoo eval`` resume where it stopped. Totals measured on
something else would be added into a wrong record, so a partial is used only when all of this
holds; otherwise it is ignored (one line on stderr says why) and the evaluation starts again:

- its ``key`` equals this evaluation's: the schema below, the weights' sha256, the architecture
  keywords and input spec of the checkpoint config, the data set's description and parameters,
  split, T, samples, limit, batch size, seed and device kind (:func:`zoo.evaluation.harness.evaluate`
  and ``evaluate_checkpoint`` build it);
- its ``checksum`` (sha256 of the rest of the document) matches: a torn or hand-edited file fails;
- its counts are consistent: integers or finite numbers of the right kind, none negative, ``done``
  a whole number of batches within the samples, ``correct1 <= correct5 <= done``, events within
  elements, and layers that the model has, with the count names the counters write; NeuroBench's
  totals with the names :mod:`zoo.evaluation.neurobench` writes, non-zero activations within
  activations;
- its ``data_sha256``, a hash chained over the batches already counted (their inputs and labels),
  equals the hash of those batches read again now (the harness checks it): the data set's files
  have not changed under it.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch

SCHEMA = 3  # of the partial document; a partial of another schema is never resumed (3: NeuroBench totals)
MAX_BYTES = 16 << 20  # a partial holds a few numbers per layer
NEURON_COUNTS = ("events", "value_sum", "elements")  # zoo.evaluation.firing.batch_counts
SYNAPSE_COUNTS = ("acs", "macs", "input_events", "input_elements")  # counters.OperationCounter.counts
NEUROBENCH_COUNTS = ("effective_macs", "effective_acs", "dense", "activation_nonzero", "activation_outputs",
                     "membrane_updates")  # neurobench.WorkloadCounter.counts
FIELDS = ("key", "done", "correct1", "correct5", "neurons", "synapses", "neurobench", "data_sha256", "checksum")


def canonical(key: dict[str, Any]) -> dict[str, Any]:
    """``key`` as it reads back from JSON (tuples become lists), so that keys compare equal."""
    return json.loads(json.dumps(key, sort_keys=True, default=repr))


def fresh(key: dict[str, Any]) -> dict[str, Any]:
    """The totals before the first batch."""
    return {"key": key, "done": 0, "correct1": 0, "correct5": 0, "neurons": {}, "synapses": {},
            "neurobench": dict.fromkeys(NEUROBENCH_COUNTS, 0), "data_sha256": ""}


def chain(previous: str, x: torch.Tensor, y: torch.Tensor) -> str:
    """The data hash after one more batch: sha256 of the previous hash and the batch's shapes,
    dtypes and bytes."""
    digest = hashlib.sha256(previous.encode())
    for tensor in (x, y):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{tuple(tensor.shape)} {tensor.dtype};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _checksum(state: dict[str, Any]) -> str:
    body = {k: v for k, v in state.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def dumps(state: dict[str, Any]) -> str:
    """The partial document of ``state``, with its checksum."""
    return json.dumps({**state, "checksum": _checksum(state)}, sort_keys=True)


def read(path: Path) -> tuple[Any, str | None]:
    """The JSON document at ``path`` and None, or None and why it cannot be read (None, None when
    there is no file)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None, None
    except OSError as error:
        return None, f"cannot be read ({error.strerror or error})"
    if len(data) > MAX_BYTES:
        return None, f"larger than {MAX_BYTES} bytes"
    try:
        return json.loads(data.decode("utf-8")), None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        return None, f"not valid JSON ({error})"


def problem(state: Any, key: dict[str, Any], samples: int, batch_size: int, layers: set[str]) -> str | None:
    """Why ``state`` cannot be resumed by the evaluation ``key`` of ``samples`` samples in batches
    of ``batch_size`` on a model with modules ``layers``; None when it can (but for its data hash)."""
    if not isinstance(state, dict) or sorted(state) != sorted(FIELDS):
        return f"not a partial evaluation (expected the fields {', '.join(FIELDS)})"
    if state["checksum"] != _checksum(state):
        return "its checksum does not match its content (damaged or edited)"
    if state["key"] != key:
        differ = sorted(k for k in {*key, *(state["key"] if isinstance(state["key"], dict) else {})}
                        if not isinstance(state["key"], dict) or state["key"].get(k) != key.get(k))
        return f"measured another evaluation (differing: {', '.join(differ)})"
    counts = [state[k] for k in ("done", "correct1", "correct5")]
    if not all(_count(c) for c in counts):
        return f"done, correct1 and correct5 must be non-negative integers, got {counts}"
    done, correct1, correct5 = counts
    if done > samples or (done % batch_size and done != samples):
        return f"done = {done} is not a whole number of batches of {batch_size} within {samples} samples"
    if not correct1 <= correct5 <= done:
        return f"needs correct1 <= correct5 <= done, got {correct1}, {correct5}, {done}"
    if not isinstance(state["data_sha256"], str):
        return "data_sha256 must be a string"
    for field, names, within in (("neurons", NEURON_COUNTS, ("events", "elements")),
                                 ("synapses", SYNAPSE_COUNTS, ("input_events", "input_elements"))):
        reason = _layer_problem(state[field], names, within, layers)
        if reason:
            return f"{field}: {reason}"
    totals = state["neurobench"]
    if not isinstance(totals, dict) or sorted(totals) != sorted(NEUROBENCH_COUNTS) or not all(map(_count, totals.values())):
        return f"neurobench must hold the non-negative integers {', '.join(NEUROBENCH_COUNTS)}"
    if totals["activation_nonzero"] > totals["activation_outputs"]:
        return "neurobench counts more non-zero activations than activations"
    return None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _layer_problem(layers_counts: Any, names: tuple[str, ...], within: tuple[str, str], layers: set[str]) -> str | None:
    """Per-layer totals: a mapping of the model's layers to their counts, finite, non-negative
    (but a sum of output values), a part (``within[0]``) never above its whole (``within[1]``)."""
    if not isinstance(layers_counts, dict):
        return "must be a mapping of layers"
    for layer, counts in layers_counts.items():
        if layer not in layers:
            return f"the model has no layer {layer!r}"
        if not isinstance(counts, dict) or sorted(counts) != sorted(names):
            return f"layer {layer!r} must hold exactly {', '.join(names)}"
        if not all(_number(v) and (k == "value_sum" or v >= 0) for k, v in counts.items()):
            return f"layer {layer!r} holds a negative or non-finite count: {counts}"
        if counts[within[0]] > counts[within[1]]:
            return f"layer {layer!r} counts more {within[0]} than {within[1]}"
    return None
