"""What the zoo holds, read from its files without importing PyTorch: for ``zoo list`` and ``zoo info``.

- **Architectures**: the functions decorated with ``@register_model`` in ``zoo/models/*.py`` and
  their docstrings, found by parsing those files (:mod:`ast`) instead of importing them;
  ``tests/test_cli.py`` checks the names against the runtime registry, :func:`zoo.list_models`.
- **Architecture facts**: ``zoo/architectures.json``, what building each architecture at its
  defaults yields (parameters, input, kwargs, a module summary), measured and written by
  :mod:`zoo.archfacts` (``python -m zoo.archfacts``); ``tests/test_cli.py`` checks it is current.
- **Published checkpoints**: the entries of ``zoo/pretrained.json`` (format 2), read with the zoo's
  bounded JSON reader and checked lightly: the names and Hub ids are safe names (:mod:`zoo.names`)
  and the digests 64 hex digits. :func:`zoo.registry.read_registry` is the full check that loading
  applies.
- **Checkpoint files**: where a published checkpoint's files are (the local Hub mirror, as
  :func:`zoo.hub.mirror_root` finds it), whether they match their pins, and the parameter count of
  ``model.safetensors`` from its header alone (the safetensors format: an 8-byte little-endian
  header length, then a JSON header mapping each tensor name to its dtype, shape and offsets).
"""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError, parse_json, read_limited
from .names import UnsafeNameError, confined
from .registry import PretrainedEntry, read_registry

PACKAGE = Path(__file__).resolve().parent
MODELS = PACKAGE / "models"
PRETRAINED_FILE = PACKAGE / "pretrained.json"  # the file zoo.registry.PRETRAINED_FILE names
FACTS_FILE = PACKAGE / "architectures.json"  # generated: FACTS_COMMAND rewrites it
FACTS_COMMAND = "python -m zoo.archfacts"
FACTS_FORMAT = 1
FACTS_DEPTH = 2  # module nesting the facts file summarises: zoo info's default --depth
FACTS_FIELDS = ("class", "parameters", "input_size", "T", "neuron_layers", "kwargs", "modules")
CONFIG, WEIGHTS, CARD = "config.json", "model.safetensors", "README.md"  # as zoo.checkpoint names them
# The buffers PyTorch stores beside the parameters of the zoo's models (batch normalisation's).
BUFFER_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")
MAX_HEADER_BYTES = 16 << 20


class CatalogError(ValueError):
    """A registry or checkpoint file that cannot be read; the message names the file and field."""


# ---- architectures -----------------------------------------------------------------------------


def architectures() -> list[str]:
    """The registered architecture names, sorted, read from the sources of ``zoo/models``."""
    return sorted(architecture_docs())


def architecture_docs() -> dict[str, str]:
    """Each registered architecture's docstring (its entry point's; "" where it has none)."""
    docs = {}
    for path in sorted(MODELS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        docs.update({node.name: ast.get_docstring(node) or "" for node in tree.body
                     if isinstance(node, ast.FunctionDef) and any(_is_register(d) for d in node.decorator_list)})
    return docs


def _is_register(decorator: ast.expr) -> bool:
    """``@register_model`` or ``@<module>.register_model``."""
    return (isinstance(decorator, ast.Name) and decorator.id == "register_model") or \
        (isinstance(decorator, ast.Attribute) and decorator.attr == "register_model")


def match(names: list[str], pattern: str | None) -> list[str]:
    """``names`` matching ``pattern``: a glob (``ds_resnet*``), or, without glob characters, any
    name containing it (``resnet20``)."""
    if not pattern:
        return list(names)
    glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    return [n for n in names if fnmatch.fnmatchcase(n, glob)]


def architecture_facts(path: Path | None = None) -> dict[str, dict]:
    """The facts of ``path`` (default ``FACTS_FILE``) by architecture (see :mod:`zoo.archfacts`):
    read with the zoo's bounded JSON reader; a file of another format or depth, or an entry without
    the fields ``zoo info`` prints, is a CatalogError that names the command rewriting it."""
    path = FACTS_FILE if path is None else path
    regenerate = f"rewrite it with `{FACTS_COMMAND}`"
    try:
        table = parse_json(read_limited(path), str(path))
    except ConfigError as error:
        raise CatalogError(f"{error}; {regenerate}") from None
    if not isinstance(table, dict) or table.get("format") != FACTS_FORMAT or table.get("depth") != FACTS_DEPTH \
            or not isinstance(table.get("architectures"), dict):
        raise CatalogError(f"{path}: not architecture facts of format {FACTS_FORMAT} at depth {FACTS_DEPTH}; {regenerate}")
    for arch, facts in table["architectures"].items():
        if not isinstance(facts, dict) or sorted(facts) != sorted(FACTS_FIELDS):
            raise CatalogError(f"{path}: {arch!r} has not the fields {', '.join(FACTS_FIELDS)}; {regenerate}")
    return table["architectures"]


# ---- published checkpoints ---------------------------------------------------------------------


def published(path: Path | None = None) -> dict[str, PretrainedEntry]:
    """The published checkpoints of ``path`` (default ``PRETRAINED_FILE``) by name, read and checked
    by the registry's own reader (which imports no torch); a bad file is a CatalogError."""
    try:
        return read_registry(PRETRAINED_FILE if path is None else path)
    except (ConfigError, UnsafeNameError, OSError) as error:
        raise CatalogError(str(error)) from None


# ---- checkpoint files --------------------------------------------------------------------------


def mirror_root() -> Path | None:
    """The local Hub mirror: ``$ZOO_HUB_MIRROR``, else ``hub/`` beside the package in a source
    checkout, else None (the rule of :func:`zoo.hub.mirror_root`)."""
    configured = os.environ.get("ZOO_HUB_MIRROR")
    if configured:
        return Path(configured).expanduser()
    checkout = PACKAGE.parent / "hub"
    return checkout if checkout.is_dir() else None


def mirror_folder(entry: PretrainedEntry) -> Path | None:
    """The entry's folder in the local mirror when it holds the files loading reads, else None."""
    root = mirror_root()
    if root is None:
        return None
    folder = confined(root, *entry.hf_hub_id.split("/"))
    return folder if (folder / CONFIG).is_file() and (folder / WEIGHTS).is_file() else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class TensorCounts:
    """Elements stored in a safetensors file: learnable parameters and buffers apart."""

    parameters: int
    buffers: int
    tensors: int


def tensor_counts(path: Path) -> TensorCounts:
    """Parameter and buffer element counts of ``model.safetensors``, read from its header alone.

    A tensor whose name ends in a batch-normalisation buffer name (``BUFFER_SUFFIXES``) is a buffer
    (the zoo's models register no other buffers); every other tensor is a parameter."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise CatalogError(f"{path}: shorter than a safetensors header")
        (size,) = struct.unpack("<Q", head)
        if size > MAX_HEADER_BYTES:
            raise CatalogError(f"{path}: safetensors header of {size} bytes (at most {MAX_HEADER_BYTES})")
        raw = handle.read(size)
    try:
        header = json.loads(raw.decode("utf-8"))
        shapes = {name: info["shape"] for name, info in header.items() if name != "__metadata__"}
        counts = {name: math.prod(shape) for name, shape in shapes.items()}
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, TypeError) as error:
        raise CatalogError(f"{path}: not a safetensors header ({type(error).__name__}: {error})"[:300]) from None
    buffers = sum(n for name, n in counts.items() if name.endswith(BUFFER_SUFFIXES))
    return TensorCounts(parameters=sum(counts.values()) - buffers, buffers=buffers, tensors=len(counts))
