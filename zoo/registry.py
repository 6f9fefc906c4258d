"""The model registry: architecture names, their entry points, and the published checkpoints.

Names are ``arch`` (an architecture) or ``arch.tag`` (a published checkpoint of it); the factory
above the registry and the Hub code, :func:`zoo.factory.create_model`, builds and loads them.
Architectures register themselves with ``@register_model``; an entry point only chooses arguments
and returns the module. Checkpoints
are data: ``zoo/pretrained.json`` lists each published ``arch.tag`` with its Hub repository, its
revision and the sha256 of every file a load reads: ``sha256`` of ``model.safetensors`` and
``config_sha256`` of ``config.json`` (see ``zoo.hub``). The file is parsed strictly (format
version 2): a malformed file, an unknown or missing field, a name or Hub id that could become an
unsafe path, or a digest that is not 64 lowercase hex digits is one :class:`zoo.config.ConfigError`
(or :class:`zoo.names.UnsafeNameError`) naming the file and the entry.
"""

from __future__ import annotations

import fnmatch
import importlib
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # the registry imports no torch: ``zoo list`` / ``zoo info`` read it without
    from torch import nn

from .config import ConfigError, brief, check_sha256, parse_json, read_limited
from .names import check_checkpoint_name, check_repo_id, check_revision
from .suggest import unknown

PRETRAINED_FILE = Path(__file__).resolve().parent / "pretrained.json"
_ENTRYPOINTS: dict[str, Callable[..., nn.Module]] = {}
_MODULES: dict[str, str] = {}
REGISTRY_FORMAT = 2  # 2: every entry pins config.json too (config_sha256)
# a Hub revision: a 40-hex commit, or a branch or tag name (never a path: no '/', no '..')


@dataclass(frozen=True)
class Pins:
    """The sha256 of each file a checkpoint load reads. ``config`` None: the config is not pinned
    from outside (an explicit folder: its config must carry ``weights_sha256`` itself)."""

    weights: str
    config: str | None
    source: str  # who pins them, for error messages


@dataclass(frozen=True)
class PretrainedEntry:
    """One published checkpoint, as recorded in ``zoo/pretrained.json``."""

    name: str  # "arch.tag"
    hf_hub_id: str  # "owner/repo" on the Hugging Face Hub (and in the local mirror)
    revision: str  # commit, tag or branch on the Hub; the content is pinned by the digests either way
    sha256: str  # of model.safetensors
    config_sha256: str  # of config.json

    @property
    def pins(self) -> Pins:
        return Pins(weights=self.sha256, config=self.config_sha256,
                    source=f"{PRETRAINED_FILE} (entry {self.name!r})")

    @property
    def arch(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register an architecture entry point under its function name."""
    name = fn.__name__
    if name in _ENTRYPOINTS and _ENTRYPOINTS[name] is not fn:
        raise ValueError(f"model {name!r} is already registered by {_MODULES[name]}")
    _ENTRYPOINTS[name] = fn
    _MODULES[name] = fn.__module__
    module = sys.modules.get(fn.__module__)
    if module is not None:
        exported = getattr(module, "__all__", None)
        if isinstance(exported, list) and name not in exported:
            exported.append(name)
    return fn


def split_name(name: str) -> tuple[str, str | None]:
    """``"ds_resnet20.mlf_cifar10_t4"`` -> ``("ds_resnet20", "mlf_cifar10_t4")``."""
    arch, _, tag = name.partition(".")
    return arch, (tag or None)


def _ensure_models_imported() -> None:
    importlib.import_module("zoo.models")  # importing the package registers every family


def is_model(name: str) -> bool:
    _ensure_models_imported()
    return split_name(name)[0] in _ENTRYPOINTS


def model_entrypoint(name: str) -> Callable[..., nn.Module]:
    _ensure_models_imported()
    arch = split_name(name)[0]
    if arch not in _ENTRYPOINTS:
        raise ValueError(unknown("model", arch, _ENTRYPOINTS, "`zoo list` shows every registered model"))
    return _ENTRYPOINTS[arch]


def _pretrained_table() -> dict[str, PretrainedEntry]:
    """The published checkpoints, read from ``PRETRAINED_FILE`` (small; read on every call so a
    fresh ``zoo publish`` is seen at once)."""
    return read_registry(PRETRAINED_FILE)


def read_registry(path: Path) -> dict[str, PretrainedEntry]:
    """The entries of a registry file, each validated (``parse_entry``), keyed by name."""
    source = str(path)
    data = parse_json(read_limited(path), source)
    if not isinstance(data, dict) or sorted(data) != ["checkpoints", "format_version"]:
        raise ConfigError(f"{source}: expected an object with exactly 'format_version' and 'checkpoints'")
    if type(data["format_version"]) is not int or data["format_version"] != REGISTRY_FORMAT:
        raise ConfigError(f"{source}: field 'format_version' is {brief(data['format_version'])}; this snnzoo reads "
                          f"version {REGISTRY_FORMAT} (every entry pins config.json with 'config_sha256')")
    if not isinstance(data["checkpoints"], list):
        raise ConfigError(f"{source}: field 'checkpoints' must be a list of entries")
    table: dict[str, PretrainedEntry] = {}
    for i, record in enumerate(data["checkpoints"]):
        entry = parse_entry(record, f"{source}: checkpoints[{i}]")
        if entry.name in table:
            raise ConfigError(f"{source}: checkpoints[{i}]: {entry.name!r} is listed twice")
        table[entry.name] = entry
    return table


def parse_entry(record: Any, source: str) -> PretrainedEntry:
    """One registry entry, every field checked: names and ids safe as paths, digests well formed."""
    expected = [f.name for f in fields(PretrainedEntry)]
    if not isinstance(record, dict) or sorted(record) != sorted(expected):
        keys = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise ConfigError(f"{source}: expected an object with exactly the fields {', '.join(expected)}; "
                          f"got {brief(keys)}")
    check_checkpoint_name(record["name"], source, what="field 'name'")
    check_repo_id(record["hf_hub_id"], f"{source}: field 'hf_hub_id'")
    check_revision(record["revision"], f"{source}: field 'revision'")
    check_sha256(record["sha256"], "field 'sha256' (of model.safetensors)", source)
    check_sha256(record["config_sha256"], "field 'config_sha256' (of config.json)", source)
    return PretrainedEntry(**record)


def pretrained_entry(name: str) -> PretrainedEntry:
    """The published checkpoint ``arch.tag``; a bare ``arch`` resolves to its first checkpoint."""
    table = _pretrained_table()
    arch, tag = split_name(name)
    if tag is None:
        tags = [entry for entry in table.values() if entry.arch == arch]
        if not tags:
            raise ValueError(f"model {arch!r} has no published checkpoint; pretrained=True needs one of: "
                             f"{', '.join(sorted(table)) or '(none published)'}")
        return tags[0]
    if name not in table:
        raise ValueError("no published checkpoint " + unknown("checkpoint", name, table,
                                                               "`zoo list --pretrained` shows every one")
                         .removeprefix("unknown checkpoint "))
    return table[name]


def list_models(pattern: str | None = None, pretrained: bool = False) -> list[str]:
    """Registered names matching the glob ``pattern``; with ``pretrained`` the ``arch.tag`` names
    of published checkpoints instead."""
    _ensure_models_imported()
    names = sorted(_pretrained_table()) if pretrained else sorted(_ENTRYPOINTS)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def build_architecture(arch: str, **kwargs: Any) -> nn.Module:
    """Call the entry point of ``arch`` with ``kwargs`` (used by checkpoint loading)."""
    return model_entrypoint(arch)(**kwargs)
