"""The resumable state of a run: one ``train_state.safetensors`` file, written atomically.

It holds the model, optimizer, gradient scaler and every random number generator (torch CPU and
CUDA, numpy, python, and the data path's generator, for each process) after a finished epoch.
Tensors go into the safetensors payload; everything else (epoch, recipe, optimizer
hyperparameters, scaler scale, python RNG state) is JSON in the file's metadata. Nothing is ever
unpickled, so resuming from a file of unknown origin cannot run code. The learning-rate schedule
is a pure function of the epoch (``zoo.train.optim``), so the epoch is its whole state.

``pack`` turns nested dicts/lists/tuples of tensors and JSON scalars into (JSON, tensors);
``unpack`` is its inverse (tuples come back as lists; callers that need tuples convert).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

STATE_FILE = "train_state.safetensors"
FORMAT = "snnzoo-train-state-1"


class StateError(ValueError):
    """A state file that cannot be resumed from; the message names the file."""


def pack(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able form of ``obj``; its tensors are stored in ``tensors`` under dotted keys."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: pack(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}
        return {"__items__": [[k, pack(v, f"{prefix}.{i}", tensors)] for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        return [pack(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix!r} in a train state")


def unpack(obj: Any, tensors: dict[str, torch.Tensor], where: str = "s") -> Any:
    """The inverse of ``pack``; a reference to a tensor the file lacks, or a malformed entry, is a
    StateError naming its dotted position (``where``)."""
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            if not isinstance(obj["__tensor__"], str) or obj["__tensor__"] not in tensors:
                raise StateError(f"{where}: refers to tensor {obj['__tensor__']!r}, which the file does not hold")
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__items__"}:
            items = obj["__items__"]
            if not isinstance(items, list) or not all(isinstance(i, list) and len(i) == 2 for i in items):
                raise StateError(f"{where}: '__items__' must be a list of [key, value] pairs")
            try:
                return {k: unpack(v, tensors, f"{where}.{i}") for i, (k, v) in enumerate(items)}
            except TypeError:  # an unhashable key
                raise StateError(f"{where}: '__items__' has a key that is not a scalar") from None
        return {k: unpack(v, tensors, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, list):
        return [unpack(v, tensors, f"{where}.{i}") for i, v in enumerate(obj)]
    return obj


def save_state(folder: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (nested, see ``pack``) to ``folder/train_state.safetensors`` atomically:
    a temporary file in the same folder, then ``os.replace``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    meta = pack(state, "s", tensors)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{STATE_FILE}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": FORMAT, "state": json.dumps(meta)})
        os.replace(tmp, folder / STATE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return folder / STATE_FILE


def load_state(folder: str | Path) -> dict[str, Any]:
    """The state in ``folder/train_state.safetensors``; a file that is not one is a StateError
    naming it."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise StateError(f"{path}: no train state to resume from (it is written after every epoch)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:  # safetensors raises its own error types for corrupt files
        raise StateError(f"{path}: not a readable safetensors file ({error})") from None
    if meta.get("format") != FORMAT:
        raise StateError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    try:
        tree = json.loads(meta.get("state", ""))
    except (json.JSONDecodeError, RecursionError) as error:
        raise StateError(f"{path}: metadata 'state' is not valid JSON ({error})") from None
    try:
        return unpack(tree, tensors)
    except StateError as error:
        raise StateError(f"{path}: {error}") from None
    except RecursionError:
        raise StateError(f"{path}: metadata 'state' is nested too deeply") from None


# What a run's state holds (zoo.train.loop writes it after every epoch): field -> allowed types.
RUN_STATE: dict[str, tuple[type, ...]] = {
    "epoch": (int,), "world": (int,), "recipe": (dict,), "model": (dict,), "optimizer": (dict,),
    "scaler": (dict,), "ema": (dict, type(None)), "data_generator": (torch.Tensor,), "rng": (list,),
}


def load_run_state(folder: str | Path) -> dict[str, Any]:
    """A run's state (``load_state``) with every field of ``RUN_STATE`` present and of its type:
    a file written by another program, or damaged by hand, fails here with the field named
    instead of with a KeyError half-way through restoring it."""
    state = load_state(folder)
    path = Path(folder) / STATE_FILE
    if not isinstance(state, dict):
        raise StateError(f"{path}: the state must be a mapping of fields, got {type(state).__name__}")
    for name, kinds in RUN_STATE.items():
        if name not in state:
            raise StateError(f"{path}: field {name!r} is missing; a run's state holds {', '.join(RUN_STATE)}")
        value = state[name]
        if isinstance(value, bool) or not isinstance(value, kinds):
            expected = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise StateError(f"{path}: field {name!r} must be {expected}, got {type(value).__name__}")
    if state["epoch"] < 0 or state["world"] < 1:
        raise StateError(f"{path}: fields 'epoch' (>= 0) and 'world' (>= 1) are out of range: "
                         f"{state['epoch']}, {state['world']}")
    if len(state["rng"]) != state["world"]:
        raise StateError(f"{path}: field 'rng' holds {len(state['rng'])} generator states for "
                         f"{state['world']} process(es)")
    return state


# --------------------------------------------------------------------------------------------
# Random number generators
# --------------------------------------------------------------------------------------------


def capture_rng(device: torch.device) -> dict[str, Any]:
    """This process's global generators: torch CPU (and the current CUDA device), numpy, python."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    rng = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "python": {"version": version, "state": list(py_state), "gauss": py_gauss},
    }
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return rng


def restore_rng(rng: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(rng["torch"])
    n = rng["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = rng["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
