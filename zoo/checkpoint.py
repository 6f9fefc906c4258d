"""Checkpoint folders: ``model.safetensors`` + ``config.json`` + ``README.md`` (the model card).

Saving writes each file atomically (temporary file, then rename), and the same weights always give
the same bytes (``serialize_safetensors``). Loading reads each file once, into memory, and
verifies those very bytes before parsing them:

- ``config.json`` against the registry's ``config_sha256`` when the load goes through the registry
  (``Pins``); parsed strictly by :mod:`zoo.config`;
- ``model.safetensors`` against the config's ``weights_sha256`` (which must be there, and must be
  the registry's ``sha256`` when there is a registry entry); its header is validated field by
  field (``parse_header``: lengths, dtypes, shapes, byte ranges) before the safetensors library
  decodes it;
- the architecture is first built on the ``meta`` device (no memory) and its state dict compared
  with the header: missing or unexpected keys, shapes and dtypes that differ fail, naming the
  keys, before any real tensor is allocated. Weights are never cast to another dtype.

Every failure is one :class:`CheckpointError` or :class:`zoo.config.ConfigError` naming the file
and the field, key or byte offset. Weights are safetensors only; nothing is ever unpickled. The
model card (README.md) and ``train_log.csv`` are never read by loading.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as decode_safetensors
from torch import nn

from . import __version__
from .config import CheckpointConfig, ConfigError, brief, parse_json, read_limited
from .registry import Pins, build_architecture, is_model

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
TRAIN_LOG = "train_log.csv"  # per-epoch log that zoo train leaves in the checkpoint folder
MAX_HEADER_BYTES = 16 << 20  # the largest zoo header (ds_resnet110) is ~60 KB
MAX_DIMS = 64  # torch's limit on tensor dimensions
# safetensors dtype names <-> torch dtypes (the ones snnzoo reads and writes)
DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as it is: bad hash, file layout, keys, shapes or dtypes."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the safetensors header describes it; ``start``/``end`` are file offsets."""

    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass
class CheckpointFiles:
    """A checkpoint folder read and verified (hashes, config schema, weights header); nothing built."""

    folder: Path
    config: CheckpointConfig
    weights: bytes  # the verified bytes of model.safetensors
    header: dict[str, TensorInfo]

    @property
    def config_path(self) -> Path:
        return self.folder / CONFIG

    @property
    def weights_path(self) -> Path:
        return self.folder / WEIGHTS


# ---------------------------------------------------------------------------------------- hashes


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_digest(data: bytes, path: Path, expected: str, source: str) -> None:
    """Refuse ``data`` (the bytes read from ``path``) unless its sha256 is ``expected``."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise CheckpointError(f"{path}: sha256 is {actual}, but {source} records {expected}; the file is corrupt, "
                              f"truncated, changed or not the published checkpoint (delete it to download it again)")


# ------------------------------------------------------------------------------------ safetensors


def serialize_safetensors(state: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The safetensors bytes of ``state``, the same bytes for the same tensors and metadata.

    The safetensors library orders tensors deterministically (by dtype alignment, then name) but
    writes ``__metadata__`` from a Rust HashMap, whose order changes from call to call: with more
    than one metadata key the same weights got different bytes. Here the header is JSON with the
    metadata keys sorted, then each tensor ordered by (element size descending, name) so that every
    tensor starts aligned to its element size, padded with spaces to a multiple of 8 as the
    library does. The result is a standard safetensors file."""
    order = sorted(state, key=lambda key: (-state[key].dtype.itemsize, key))
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))} if metadata else {}
    chunks, offset = [], 0
    for key in order:
        tensor = state[key].detach().to("cpu").contiguous()
        if tensor.dtype not in DTYPE_NAMES:
            raise CheckpointError(f"{key}: dtype {tensor.dtype} cannot be saved (snnzoo writes {', '.join(DTYPES)})")
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
        header[key] = {"dtype": DTYPE_NAMES[tensor.dtype], "shape": list(tensor.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def parse_header(data: bytes, path: Path) -> dict[str, TensorInfo]:
    """The tensors the safetensors ``data`` (read from ``path``) holds, every header field checked:
    the 8-byte header length fits the file, the header is a JSON object (metadata strings only),
    each tensor has a known dtype, non-negative integer shape and a byte range of exactly its size,
    and the ranges tile the data section without gap or overlap."""
    if len(data) < 8:
        raise CheckpointError(f"{path}: {len(data)} bytes; a safetensors file starts with an 8-byte header length")
    size = int.from_bytes(data[:8], "little")
    if size > min(MAX_HEADER_BYTES, len(data) - 8):
        raise CheckpointError(f"{path}: byte offset 0: header length {size:,} exceeds the {len(data) - 8:,} bytes "
                              f"that follow (or the {MAX_HEADER_BYTES:,}-byte limit); truncated or not safetensors")
    try:
        header = parse_json(data[8:8 + size], f"{path}: header (bytes 8..{8 + size})")
    except ConfigError as error:
        raise CheckpointError(str(error)) from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: header (byte offset 8) must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: header field '__metadata__' must map strings to strings")
    base = 8 + size
    tensors = {key: _tensor_info(key, entry, base, path) for key, entry in header.items()}
    _check_tiling(tensors, base, len(data), path)
    return tensors


def _tensor_info(key: str, entry: Any, base: int, path: Path) -> TensorInfo:
    where = f"{path}: header field {brief(key)}"
    if not isinstance(entry, dict) or sorted(entry) != ["data_offsets", "dtype", "shape"]:
        raise CheckpointError(f"{where} must be an object with exactly dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise CheckpointError(f"{where}: dtype {brief(dtype)} is not one snnzoo reads ({', '.join(DTYPES)})")
    if (not isinstance(shape, list) or len(shape) > MAX_DIMS
            or not all(type(d) is int and 0 <= d < 2 ** 63 for d in shape)):
        raise CheckpointError(f"{where}: shape must be a list of at most {MAX_DIMS} non-negative 64-bit integers, "
                              f"got {brief(shape)}")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]):
        raise CheckpointError(f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end, "
                              f"got {brief(offsets)}")
    numel = 1
    for d in shape:
        numel *= d
    nbytes = numel * DTYPES[dtype].itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise CheckpointError(f"{where}: data_offsets {brief(offsets)} span {brief(offsets[1] - offsets[0])} bytes, "
                              f"but {dtype} {shape} needs {nbytes:,}")
    return TensorInfo(DTYPES[dtype], tuple(shape), base + offsets[0], base + offsets[1])


def _check_tiling(tensors: dict[str, TensorInfo], base: int, total: int, path: Path) -> None:
    expected = base
    for key, info in sorted(tensors.items(), key=lambda item: (item[1].start, item[1].end)):
        if info.start != expected:
            raise CheckpointError(f"{path}: byte offset {expected:,}: tensor {brief(key)} starts at "
                                  f"{brief(info.start)}; tensor data must follow the header without gaps or overlaps")
        expected = info.end
    if expected != total:
        raise CheckpointError(f"{path}: byte offset {expected:,}: the tensors end there, but the file has {total:,} "
                              "bytes; truncated, or trailing data")


def decode_tensors(data: bytes, header: dict[str, TensorInfo], path: Path) -> dict[str, torch.Tensor]:
    """The tensors of verified safetensors ``data`` (the safetensors library decodes them; the
    result must be what ``parse_header`` read)."""
    try:
        state = decode_safetensors(data)
    except Exception as error:  # SafetensorError, or anything the library raises on a bad file
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(error).__name__}: {error})") from None
    for key, tensor in state.items():
        info = header.get(key)
        if info is None or tensor.dtype != info.dtype or tuple(tensor.shape) != info.shape:
            raise CheckpointError(f"{path}: tensor {brief(key)} decodes differently from its header")
    return state


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing; a checkpoint folder holds {WEIGHTS}, {CONFIG} and {CARD}") from None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error.strerror or error})") from None


# --------------------------------------------------------------------------------------- saving


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename (with
    the permissions a plain ``open`` would give, not mkstemp's private 0600). The rename replaces a
    symlink at ``path`` rather than writing through it."""
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
    """Write ``model``'s weights and ``config`` (its ``weights_sha256``, ``arch_kwargs`` and
    ``software`` filled in from what is written) into ``folder``; ``card`` becomes README.md.
    The config is validated as loading will validate it before anything is written, and the same
    weights, name and software versions always give the same bytes. Returns the folder."""
    folder = Path(folder)
    state = {key: value.detach().to("cpu").contiguous() for key, value in model.state_dict().items()}
    weights = serialize_safetensors(state, {"format": "pt", "name": str(config.name)})
    config.weights_sha256 = hashlib.sha256(weights).hexdigest()
    config.arch_kwargs = dict(model.arch_kwargs)
    config.software = {"snnzoo": __version__, "torch": torch.__version__.split("+")[0]}
    text = config.dumps()
    CheckpointConfig.loads(text.encode(), f"{folder / CONFIG} (to be written)")  # what saves, loads
    write_atomic(folder / WEIGHTS, weights)
    write_atomic(folder / CONFIG, text)
    if card is not None:
        write_atomic(folder / CARD, card)
    return folder


# -------------------------------------------------------------------------------------- loading


def read_config(folder: Path, pins: Pins | None = None) -> CheckpointConfig:
    """The config of the checkpoint folder, its bytes verified against ``pins.config`` first when
    the registry pins it, and its ``weights_sha256`` checked against ``pins.weights``."""
    path = folder / CONFIG
    data = read_limited(path)
    if pins is not None and pins.config is not None:
        verify_digest(data, path, pins.config, pins.source)
    config = CheckpointConfig.loads(data, str(path))
    if pins is not None and config.weights_sha256 != pins.weights:
        raise CheckpointError(f"{path}: records weights sha256 {config.weights_sha256}, but {pins.source} pins "
                              f"{pins.weights}; the folder holds another checkpoint than the one published")
    return config


def read_checkpoint(path: str | Path, pins: Pins | None = None) -> CheckpointFiles:
    """Read and verify a checkpoint folder (or its ``model.safetensors``/``config.json``): the
    config (pinned by ``pins`` when given), then the weights against the config's sha256 and
    their header. Builds nothing."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    config = read_config(folder, pins)
    weights_path = folder / WEIGHTS
    weights = _read_bytes(weights_path)
    verify_digest(weights, weights_path, config.weights_sha256, str(folder / CONFIG))
    return CheckpointFiles(folder, config, weights, parse_header(weights, weights_path))


def check_fits(expected: dict[str, torch.Tensor], header: dict[str, TensorInfo], path: Path, model: str) -> None:
    """Refuse weights whose keys, shapes or dtypes differ from ``expected`` (a model's state dict,
    real or on the meta device). No dtype is ever cast: float64 weights in a float32 model are a
    different checkpoint, not the same one rounded."""
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    common = [key for key in expected if key in header]
    shapes = [f"{key}: checkpoint {header[key].shape}, model {tuple(expected[key].shape)}"
              for key in common if header[key].shape != tuple(expected[key].shape)]
    dtypes = [f"{key}: checkpoint {header[key].dtype}, model {expected[key].dtype}"
              for key in common if header[key].dtype != expected[key].dtype]
    problems = [f"{what} {_short(items)}" for what, items in (
        ("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", shapes),
        ("dtype mismatch (snnzoo never casts weights)", dtypes)) if items]
    if problems:
        raise CheckpointError(f"{path} does not fit {model}: " + "; ".join(problems))


def build_model(config: CheckpointConfig, source: Path, overrides: dict[str, Any], meta: bool = False) -> nn.Module:
    """The architecture ``config`` describes, ``overrides`` changing its kwargs (``meta``: on the
    meta device, shapes and dtypes without memory); an argument the entry point rejects is a
    ConfigError naming ``arch_kwargs``."""
    if not is_model(config.architecture):  # also imports every family, outside any meta context
        raise ConfigError(f"{source}: field 'architecture' names no registered model: {config.architecture!r}")
    try:
        with torch.device("meta") if meta else contextlib.nullcontext():
            return build_architecture(config.architecture, **{**config.arch_kwargs, **overrides})
    except Exception as error:  # an entry point rejects arguments with whatever its layers raise
        given = f" with the overrides {overrides}" if overrides else ""
        raise ConfigError(f"{source}: field 'arch_kwargs'{given} does not build {config.architecture!r} "
                          f"({type(error).__name__}: {error})") from None


def check_architecture(files: CheckpointFiles, overrides: dict[str, Any]) -> None:
    """Build the described architecture on the meta device and refuse weights that do not fit it,
    before any real tensor is allocated (a hostile config cannot make the loader allocate more than
    the verified weights hold)."""
    skeleton = build_model(files.config, files.config_path, overrides, meta=True)
    check_fits(skeleton.state_dict(), files.header, files.weights_path, type(skeleton).__name__)


def load_weights(model: nn.Module, path: str | Path, sha256: str, source: str = "the config") -> None:
    """Load the safetensors file ``path`` into ``model`` strictly, after verifying its ``sha256``
    (required: there is no unverified load) and its header against the model's state dict."""
    path = Path(path)
    data = _read_bytes(path)
    verify_digest(data, path, sha256, source)
    _load_into(model, data, parse_header(data, path), path)


def _load_into(model: nn.Module, data: bytes, header: dict[str, TensorInfo], path: Path) -> None:
    check_fits(model.state_dict(), header, path, type(model).__name__)
    model.load_state_dict(decode_tensors(data, header, path), strict=True)


def load_checkpoint(path: str | Path, sha256: str | Pins | None = None, **overrides: Any) -> nn.Module:
    """Build the architecture a checkpoint folder (or its ``model.safetensors``) describes and load
    its weights. ``sha256`` is what the registry pins: the ``Pins`` that ``zoo.hub.resolve_checkpoint``
    returns (config and weights), or the weights' sha256 alone; None for an explicit folder, whose
    config must then record the weights' sha256 itself. ``overrides`` change architecture kwargs
    (``T`` for a sweep, ``backend``); ones that change shapes fail with the keys named. The model's
    ``checkpoint_config`` is the parsed config."""
    pins = sha256
    if isinstance(sha256, str):
        pins = Pins(weights=sha256, config=None, source="the given sha256") if sha256 else None
    files = read_checkpoint(path, pins)
    check_architecture(files, overrides)
    model = build_model(files.config, files.config_path, overrides)
    _load_into(model, files.weights, files.header, files.weights_path)
    model.checkpoint_config = files.config
    model.checkpoint_tensors_sha256 = tensors_sha256(model.state_dict())  # to tell later whether they changed
    return model


def tensors_sha256(state: dict[str, torch.Tensor]) -> str:
    """A digest of a state dict's tensors (names, dtypes, shapes, values), independent of any file
    layout: equal for the same weights however they were serialised."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().to("cpu").contiguous()
        digest.update(f"{key}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _short(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
