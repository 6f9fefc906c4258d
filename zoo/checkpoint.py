"""Checkpoint folders: ``model.safetensors`` + ``config.json`` + ``README.md`` (the model card).

Saving writes each file atomically (temporary file, then rename). Loading is strict: the
weights' sha256 must match what the config (and the registry, when given) records, the keys must
match the architecture exactly and every shape must fit; each failure names the file and the
keys. Weights are safetensors only; nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from . import __version__
from .config import CheckpointConfig
from .registry import build_architecture

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
TRAIN_LOG = "train_log.csv"  # per-epoch log that zoo train leaves in the checkpoint folder


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as it is: bad hash, keys or shapes."""


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename (with
    the permissions a plain ``open`` would give, not mkstemp's private 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(model: nn.Module, folder: str | Path, config: CheckpointConfig, card: str | None = None) -> Path:
    """Write ``model``'s weights and ``config`` (its ``weights_sha256`` and ``arch_kwargs`` filled in
    from what was written) into ``folder``; ``card`` becomes README.md. Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().to("cpu").contiguous() for key, value in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".model.", suffix=".safetensors.tmp")
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    try:
        save_file(state, tmp, metadata={"format": "pt", "snnzoo": __version__, "name": config.name})
        config.weights_sha256 = sha256_file(tmp)
        os.replace(tmp, folder / WEIGHTS)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    config.arch_kwargs = dict(model.arch_kwargs)
    config.software = {"snnzoo": __version__, "torch": torch.__version__.split("+")[0]}
    write_atomic(folder / CONFIG, config.dumps())
    if card is not None:
        write_atomic(folder / CARD, card)
    return folder


def verify_sha256(path: Path, expected: str, source: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise CheckpointError(f"{path}: sha256 is {actual}, but {source} records {expected}; the file is corrupt, "
                              f"truncated or not the published checkpoint (delete it to download it again)")


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, with a clear error for anything else."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None


def load_weights(model: nn.Module, path: str | Path, sha256: str | None = None, source: str = "the config") -> None:
    """Load ``path`` into ``model`` strictly, after checking its ``sha256`` when one is given."""
    path = Path(path)
    if sha256:
        verify_sha256(path, sha256, source)
    state = load_state(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{key}: checkpoint {tuple(state[key].shape)}, model {tuple(expected[key].shape)}"
             for key in expected if key in state and state[key].shape != expected[key].shape]
    problems = []
    if missing:
        problems.append(f"missing keys {_short(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_short(unexpected)}")
    if wrong:
        problems.append(f"shape mismatch {_short(wrong)}")
    if problems:
        raise CheckpointError(f"{path} does not fit {type(model).__name__}: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


def load_checkpoint(path: str | Path, sha256: str | None = None, **overrides: Any) -> nn.Module:
    """Build the architecture a checkpoint folder (or its ``model.safetensors``) describes and load
    its weights. ``overrides`` change architecture kwargs (``T`` for a sweep, ``backend``); ones
    that change shapes fail in loading with the keys named. The model's ``pretrained_cfg`` is the
    parsed config."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    config = CheckpointConfig.load(folder / CONFIG)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing; a checkpoint folder holds {WEIGHTS}, {CONFIG} and {CARD}")
    if sha256 and config.weights_sha256 != sha256:
        raise CheckpointError(f"{folder / CONFIG}: records weights sha256 {config.weights_sha256}, but the registry "
                              f"pins {sha256}; the folder holds another checkpoint than the one published")
    model = build_architecture(config.architecture, **{**config.arch_kwargs, **overrides})
    load_weights(model, weights, config.weights_sha256, source=str(folder / CONFIG))
    model.pretrained_cfg = config
    return model


def _short(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
