"""Where checkpoints come from: an explicit path, the project's local Hub mirror, the Hugging Face Hub.

``resolve_checkpoint(name)`` returns a local checkpoint folder and the ``Pins`` that verify it:

0. ``hf-hub:owner/repo[@revision]``: any checkpoint repository on the Hub (or ``HF_ENDPOINT``),
   downloaded through ``huggingface_hub.hf_hub_download`` at the revision (default ``main``) with
   its cache and offline mode; not in the registry, so it is verified as an explicit folder is;
1. an explicit folder or file: a ``os.PathLike``, or a string that is not a zoo name (``arch.tag``,
   or a registered ``arch``) and exists. A zoo name is always looked up in the registry, even when
   a folder of that name happens to exist in the working directory, so that no folder can stand in
   for a published checkpoint without its pins. An explicit folder is verified by its own config,
   which must record the weights' sha256;
2. the local mirror of the Hub: ``$ZOO_HUB_MIRROR`` or the ``hub/`` folder of a source checkout,
   laid out as ``<mirror>/<owner>/<repo>/{model.safetensors, config.json, README.md}`` (plus the
   ``train_log.csv`` that ``zoo publish`` adds). The Hub id comes from the validated registry and
   the folder is ``confined`` to the mirror root (a symlink leading out of it is refused);
3. the Hugging Face Hub through ``huggingface_hub.hf_hub_download`` at the registry's revision, with
   its cache (``HF_HOME``/``cache_dir``), ``HF_ENDPOINT`` and offline mode (``HF_HUB_OFFLINE=1``)
   honoured.

What is pinned. Whatever the source, every file a load reads is verified against the registry
(``zoo/pretrained.json``) before it is parsed: ``config.json`` against ``config_sha256`` and
``model.safetensors`` against ``sha256``. The model card ``README.md`` and ``train_log.csv`` are
documentation; loading never reads them, so they are not pinned (nor downloaded by a load).

What a revision means. A registry revision is a Hub commit when ``zoo publish`` uploaded the
checkpoint itself (it records the commit the upload created), or a branch such as ``main`` for
checkpoints published to the mirror only. Either way the content is pinned by the digests, not by
the revision: if the branch moves to a commit whose config or weights differ in a single byte,
the load fails naming the file and the pinned sha256, it never loads the new content. The
revision only chooses where to look.
"""

from __future__ import annotations

import os
from pathlib import Path


from .checkpoint import CARD, CONFIG, WEIGHTS, CheckpointError
from .names import (UnsafeNameError, check_checkpoint_name, check_repo_id, check_revision, check_segment, confined,
                    no_such_folder)
from .registry import Pins, is_model, pretrained_entry

HF_HUB_PREFIX = "hf-hub:"  # names of Hub repositories outside the registry, as in timm
HUB_FILES = (CONFIG, WEIGHTS, CARD)  # what a Hub repository holds
LOAD_FILES = (CONFIG, WEIGHTS)  # what loading reads, each pinned by sha256


def mirror_root() -> Path | None:
    """The local Hub mirror: ``$ZOO_HUB_MIRROR``, else ``hub/`` beside the ``zoo`` package in a
    source checkout, else None."""
    configured = os.environ.get("ZOO_HUB_MIRROR")
    if configured:
        return Path(configured).expanduser()
    checkout = Path(__file__).resolve().parents[1] / "hub"
    return checkout if checkout.is_dir() else None


def mirror_folder(hf_hub_id: str, root: Path | None = None) -> Path | None:
    """The folder of the Hub repository ``hf_hub_id`` (``owner/repo``, checked) inside the mirror,
    refused if it would resolve outside the mirror root; None without a mirror."""
    root = root or mirror_root()
    return None if root is None else confined(root, *check_repo_id(hf_hub_id).split("/"))


def download(repo_id: str, revision: str | None, cache_dir: str | Path | None = None) -> Path:
    """Fetch the files loading reads from the Hub repository ``repo_id`` (or the local cache) at
    ``revision``; the caller verifies them."""
    from huggingface_hub import hf_hub_download

    paths = [Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir))
             for filename in LOAD_FILES]
    if len({path.parent for path in paths}) != 1:
        raise CheckpointError(f"{repo_id}: the Hub served {', '.join(LOAD_FILES)} from different snapshots")
    return paths[0].parent


def parse_hf_hub(name: str) -> tuple[str, str | None]:
    """``hf-hub:owner/repo[@revision]`` -> (repo id, revision or None), both checked as names."""
    repo_id, at, revision = name[len(HF_HUB_PREFIX):].partition("@")
    source = f"model name {name[:200]!r}"
    check_repo_id(repo_id, source)
    return repo_id, (check_revision(revision, source) if at else None)


def _download_named(name: str, cache_dir: str | Path | None) -> Path:
    repo_id, revision = parse_hf_hub(name)
    try:
        return download(repo_id, revision, cache_dir)
    except Exception as error:  # huggingface_hub raises many types: offline, HTTP, missing repo or file
        raise CheckpointError(f"{name}: the Hub repository {repo_id!r} at revision {revision or 'main'!r} "
                              f"could not be read ({type(error).__name__}: {error})") from error


def is_zoo_name(name: str) -> bool:
    """Whether ``name`` is a registry name: ``arch.tag`` or a registered ``arch``."""
    try:
        check_checkpoint_name(name)
        return True
    except UnsafeNameError:
        pass
    try:
        return is_model(check_segment(name, "model name"))
    except UnsafeNameError:
        return False


def _explicit_folder(name: str | os.PathLike) -> Path | None:
    if isinstance(name, os.PathLike):
        path = Path(name)
    elif isinstance(name, str) and not is_zoo_name(name) and Path(name).exists():
        path = Path(name)
    else:
        return None
    return path.parent if path.is_file() else path


def resolve_checkpoint(name: str | os.PathLike, cache_dir: str | Path | None = None) -> tuple[Path, Pins | None]:
    """A local folder holding the checkpoint ``name`` (``arch.tag``, ``arch``, ``hf-hub:...`` or a
    path), and the pins the registry gives it (None outside the registry: the folder is verified by
    its own config)."""
    if isinstance(name, str) and name.startswith(HF_HUB_PREFIX):
        return _download_named(name, cache_dir), None
    explicit = _explicit_folder(name)
    if explicit is not None:
        return explicit, None
    if "/" in str(name):  # a path (no registry name has a slash)
        raise CheckpointError(no_such_folder(str(name)))
    entry = pretrained_entry(str(name))
    local = mirror_folder(entry.hf_hub_id)
    if local is not None and all((local / filename).is_file() for filename in LOAD_FILES):
        return local, entry.pins
    try:
        return download(entry.hf_hub_id, entry.revision, cache_dir), entry.pins
    except Exception as error:  # huggingface_hub raises many types: offline, HTTP, missing repo
        where = f"the local mirror {local}" if local is not None else "no local mirror (set ZOO_HUB_MIRROR)"
        raise CheckpointError(
            f"checkpoint {entry.name!r} not found: tried {where}, then the Hub repository "
            f"{entry.hf_hub_id!r} at revision {entry.revision!r} ({type(error).__name__}: {error})"
        ) from error
