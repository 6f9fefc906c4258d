"""Where checkpoints come from: an explicit path, the project's local Hub mirror, the Hugging Face Hub.

``resolve_checkpoint(name)`` returns a local checkpoint folder, trying in order:

1. an explicit folder or ``model.safetensors`` file;
2. the local mirror of the Hub: ``$ZOO_HUB_MIRROR`` or the ``hub/`` folder of a source checkout,
   laid out as ``<mirror>/<owner>/<repo>/{model.safetensors, config.json, README.md}`` (plus the
   ``train_log.csv`` that ``zoo publish`` adds, which loading does not need);
3. the Hugging Face Hub through ``huggingface_hub.hf_hub_download`` at the revision the registry
   pins, with its cache (``HF_HOME``/``cache_dir``), ``HF_ENDPOINT`` and offline mode
   (``HF_HUB_OFFLINE=1``) honoured.

Whatever the source, the weights are verified against the sha256 in ``zoo/pretrained.json``
before anything is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from .checkpoint import CARD, CONFIG, WEIGHTS, CheckpointError, load_checkpoint
from .registry import PretrainedEntry, build_architecture, pretrained_entry, split_name

HUB_FILES = (CONFIG, WEIGHTS, CARD)


def mirror_root() -> Path | None:
    """The local Hub mirror: ``$ZOO_HUB_MIRROR``, else ``hub/`` beside the ``zoo`` package in a
    source checkout, else None."""
    configured = os.environ.get("ZOO_HUB_MIRROR")
    if configured:
        return Path(configured).expanduser()
    checkout = Path(__file__).resolve().parents[1] / "hub"
    return checkout if checkout.is_dir() else None


def mirror_folder(hf_hub_id: str, root: Path | None = None) -> Path | None:
    root = root or mirror_root()
    return None if root is None else root.joinpath(*hf_hub_id.split("/"))


def download(entry: PretrainedEntry, cache_dir: str | Path | None = None) -> Path:
    """Fetch a checkpoint's files from the Hugging Face Hub (or its cache) at the pinned revision."""
    from huggingface_hub import hf_hub_download

    paths = [hf_hub_download(entry.hf_hub_id, filename, revision=entry.revision, cache_dir=cache_dir)
             for filename in HUB_FILES]
    return Path(paths[0]).parent


def resolve_checkpoint(name: str | os.PathLike, cache_dir: str | Path | None = None) -> tuple[Path, str | None]:
    """A local folder holding the checkpoint ``name`` (``arch.tag``, ``arch`` or a path), and the
    sha256 the registry pins for it (None for an explicit path, verified by its config alone)."""
    path = Path(name)
    if path.exists():
        return (path.parent if path.is_file() else path), None
    entry = pretrained_entry(str(name))
    local = mirror_folder(entry.hf_hub_id)
    if local is not None and all((local / filename).is_file() for filename in HUB_FILES):
        return local, entry.sha256
    try:
        return download(entry, cache_dir), entry.sha256
    except Exception as error:  # huggingface_hub raises many types: offline, HTTP, missing repo
        where = f"the local mirror {local}" if local is not None else "no local mirror (set ZOO_HUB_MIRROR)"
        raise CheckpointError(
            f"checkpoint {entry.name!r} not found: tried {where}, then the Hub repository "
            f"{entry.hf_hub_id!r} at revision {entry.revision!r} ({type(error).__name__}: {error})"
        ) from error


def load_pretrained(name: str, weights: bool = True, cache_dir: str | Path | None = None, **kwargs: Any) -> nn.Module:
    """The model ``arch.tag`` with its SNN-trained weights (``weights=False``: the same graph, random
    weights). kwargs override architecture arguments (``T``, ``backend``, ...)."""
    if not weights:
        from .config import CheckpointConfig

        folder, _ = resolve_checkpoint(name, cache_dir)
        config = CheckpointConfig.load(folder / CONFIG)
        return build_architecture(config.architecture, **{**config.arch_kwargs, **kwargs})
    folder, sha256 = resolve_checkpoint(name, cache_dir)
    arch = split_name(str(name))[0]
    model = load_checkpoint(folder, sha256=sha256, **kwargs)
    if not Path(name).exists() and model.pretrained_cfg.architecture != arch:
        raise CheckpointError(f"{folder / CONFIG}: describes {model.pretrained_cfg.architecture!r}, not {arch!r}")
    return model
