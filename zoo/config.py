"""The checkpoint configuration: ``config.json`` beside ``model.safetensors``.

One JSON document says everything needed to rebuild, feed and judge a checkpoint::

    {
      "format_version": 1,
      "name": "convnet.lif_fashion_mnist_t4",        # arch.tag
      "architecture": "convnet",                       # registered name
      "arch_kwargs": {"T": 4, "neuron": {...}, ...},   # rebuilds the graph exactly
      "input": {"encoding": "direct", "size": [1, 28, 28], "mean": [...], "std": [...]},
      "dataset": {"name": "fashion_mnist", "split": "train", ...},   # zoo.data describe()
      "recipe": {...},                                 # the complete recipe that trained it
      "metrics": {...},                                # measured by the evaluation harness
      "weights_sha256": "…",                           # of model.safetensors
      "software": {"snnzoo": "0.1.0", "torch": "2.14.1"}
    }

Parsing is strict, and every failure is one :class:`ConfigError` that names the file and the field
(or the byte offset) and what was expected:

- the file is read with a size bound (``MAX_CONFIG_BYTES``), must be UTF-8 and plain JSON: no
  duplicate keys, no NaN or Infinity (nor numbers that overflow to them), nesting at most
  ``MAX_DEPTH`` deep;
- an unknown, missing or mistyped field fails, and so does another format version;
- names that become paths (``name``, ``architecture``, ``dataset.name`` and ``dataset.split``) pass
  :mod:`zoo.names` (an unsafe one raises :class:`zoo.names.UnsafeNameError`, naming file and
  field);
- values the loader and the data pipeline compute with are checked where they are parsed:
  ``arch_kwargs.T`` an integer in 1..``MAX_T``, ``input.size`` three integers in 1..``MAX_SIDE``,
  ``input.mean`` finite and >= 0 (the zoo's inputs are images in [0, 1] or event counts) and
  ``input.std`` finite and > 0 (it divides), one value per channel;
- ``weights_sha256`` must be the sha256 of ``model.safetensors`` (64 lowercase hex digits): a
  config without it describes weights nobody can verify, and is refused.

The same reader (``read_limited`` + ``parse_json``) reads the registry ``zoo/pretrained.json``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .names import check_checkpoint_name, check_segment

FORMAT_VERSION = 1
ENCODINGS = ("direct", "frames", "repeated_frame")
MAX_CONFIG_BYTES = 4 << 20  # the published configs are ~20 KB; a bound keeps a hostile file from filling memory
MAX_DEPTH = 32  # the published configs nest 7 deep
MAX_T = 4096
MAX_SIDE = 1 << 16
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ConfigError(ValueError):
    """A configuration file (a checkpoint's ``config.json``, the registry ``zoo/pretrained.json``)
    that does not match its schema; the message names the file and the field or byte offset."""


def read_limited(path: str | Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of ``path``, refused when it is missing, unreadable or larger than ``limit``."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror or error})") from None
    if len(data) > limit:
        raise ConfigError(f"{path}: larger than {limit:,} bytes; refusing to parse it")
    return data


def parse_json(data: bytes, source: str) -> Any:
    """``data`` as strict JSON: UTF-8, no duplicate keys, finite numbers, bounded nesting."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{source}: not UTF-8 text (byte offset {error.start}: {error.reason})") from None
    try:
        value = json.loads(text, object_pairs_hook=_object_without_duplicates)
    except RecursionError:
        raise ConfigError(f"{source}: JSON nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError as error:  # JSONDecodeError, a duplicate key, an integer of more than 4300 digits
        raise ConfigError(f"{source}: not valid JSON ({error})") from None
    check_json_tree(value, source)
    return value


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"duplicate key {brief(duplicate)}")
    return value


def check_json_tree(value: Any, source: str) -> None:
    """Refuse anything in ``value`` that JSON cannot faithfully carry or the zoo should not accept:
    nesting deeper than ``MAX_DEPTH``, non-finite numbers, strings that are not valid Unicode (lone
    surrogates), non-string keys, non-JSON types. Iterative, so depth cannot exhaust the stack."""
    stack = [(value, "", 0)]
    while stack:
        item, where, depth = stack.pop()
        named = f"field {brief(where)}" if where else "the document"
        if depth > MAX_DEPTH:
            raise ConfigError(f"{source}: {named} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise ConfigError(f"{source}: {named} has a key {brief(key)} that is not a string")
                stack.append((child, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
        elif isinstance(item, float) and not math.isfinite(item):
            raise ConfigError(f"{source}: {named} is {item}; numbers must be finite (no NaN or Infinity)")
        elif isinstance(item, str):
            _check_unicode(item, f"{source}: {named}")
        elif item is not None and not isinstance(item, (bool, int, float)):
            raise ConfigError(f"{source}: {named} is a {type(item).__name__}, not a JSON value")


def _check_unicode(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ConfigError(f"{where} holds an invalid character at index {error.start} ({error.reason})") from None


def brief(value: Any, limit: int = 120) -> str:
    """``repr(value)`` cut to ``limit`` characters: messages quote hostile values, never megabytes."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


def check_sha256(value: Any, what: str, source: str) -> str:
    """``value`` as a sha256 digest: 64 lowercase hexadecimal digits."""
    if not isinstance(value, str) or not SHA256_HEX.fullmatch(value):
        raise ConfigError(f"{source}: {what} must be a sha256 digest (64 lowercase hex digits), got {brief(value)}")
    return value


@dataclass
class InputSpec:
    """How inputs reach the network: ``direct`` (a static image repeated T times), ``frames``
    (events integrated into T frames ``[T, C, H, W]``, one per step) or ``repeated_frame`` (events
    integrated into one frame, repeated T times); the per-sample size ``[C, H, W]`` and the
    normalisation applied first."""

    encoding: str
    size: list[int]
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)


@dataclass
class CheckpointConfig:
    name: str
    architecture: str
    arch_kwargs: dict[str, Any]
    input: InputSpec
    dataset: dict[str, Any]
    recipe: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""
    software: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def T(self) -> int:
        return int(self.arch_kwargs["T"])

    @property
    def chain_train_time_s(self) -> float | None:
        """Seconds of training steps behind these weights: this run's (``metrics.train``) plus every
        earlier stage of its chain (``metrics.lineage.earlier_train_time_s``, recorded when the run
        started from another checkpoint); None when a stage's time is not recorded."""
        own = (self.metrics.get("train") or {}).get("train_time_s")
        lineage = self.metrics.get("lineage")
        earlier = lineage.get("earlier_train_time_s") if isinstance(lineage, dict) else 0.0
        return None if own is None or earlier is None else own + earlier

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def dumps(self) -> str:
        """The config as JSON text; the same config always gives the same text (fields in
        declaration order, every nested object in the order it was built). A value JSON cannot
        carry (NaN, a non-JSON type) is refused here, before anything is written."""
        data = self.to_dict()
        check_json_tree(data, f"config {self.name!r}")
        return json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> "CheckpointConfig":
        """A validated config from parsed JSON; see the module docstring for every check."""
        check_json_tree(data, source)
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        version = data.get("format_version")
        if type(version) is not int or version != FORMAT_VERSION:
            raise ConfigError(f"{source}: field 'format_version' is {brief(version)}; this snnzoo reads version "
                              f"{FORMAT_VERSION} (upgrade snnzoo for newer checkpoints)")
        values = _check_fields(cls, data, source)
        values["input"] = InputSpec(**_check_fields(InputSpec, data["input"], f"{source}: field 'input'"))
        config = cls(**values)
        config._validate(source)
        return config

    @classmethod
    def loads(cls, data: bytes, source: str) -> "CheckpointConfig":
        """A validated config from the bytes of a ``config.json`` (``source`` names it in errors)."""
        return cls.from_dict(parse_json(data, source), source=source)

    @classmethod
    def load(cls, path: str | Path) -> "CheckpointConfig":
        """Read and validate ``path``. This checks the config's own content only; loading a
        checkpoint (``zoo.checkpoint``) also verifies it against the registry's sha256."""
        return cls.loads(read_limited(path), source=str(path))

    def _validate(self, source: str) -> None:
        self._validate_names(source)
        self._validate_arch_kwargs(source)
        self._validate_input(source)
        self._validate_metrics(source)
        check_sha256(self.weights_sha256, "field 'weights_sha256' (of model.safetensors; a checkpoint config "
                     "must record it so that its weights can be verified)", source)

    def _validate_names(self, source: str) -> None:
        """Every field that becomes part of a path (record files, mirror folders, cards)."""
        check_checkpoint_name(self.name, source, what="field 'name'")
        check_segment(self.architecture, "field 'architecture'", source)
        if self.name.partition(".")[0] != self.architecture:
            raise ConfigError(f"{source}: field 'name' must be '{self.architecture}.<tag>', got {self.name!r}")
        for key in ("name", "split"):
            if key not in self.dataset:
                raise ConfigError(f"{source}: field 'dataset' lacks {key!r}")
            check_segment(self.dataset[key], f"field 'dataset.{key}'", source)

    def _validate_arch_kwargs(self, source: str) -> None:
        for key in ("T", "neuron"):
            if key not in self.arch_kwargs:
                raise ConfigError(f"{source}: field 'arch_kwargs' lacks {key!r}")
        T = self.arch_kwargs["T"]
        if type(T) is not int or not 1 <= T <= MAX_T:
            raise ConfigError(f"{source}: field 'arch_kwargs.T' must be an integer in 1..{MAX_T}, got {brief(T)}")
        neuron = self.arch_kwargs["neuron"]
        if not (isinstance(neuron, str) or isinstance(neuron, dict) and isinstance(neuron.get("name"), str)):
            raise ConfigError(f"{source}: field 'arch_kwargs.neuron' must be a neuron spec: a string or an object "
                              f"with a string 'name', got {brief(neuron)}")

    def _validate_input(self, source: str) -> None:
        spec = self.input
        if spec.encoding not in ENCODINGS:
            raise ConfigError(f"{source}: field 'input.encoding' must be one of {ENCODINGS}, "
                              f"got {brief(spec.encoding)}")
        if len(spec.size) != 3 or not all(type(s) is int and 1 <= s <= MAX_SIDE for s in spec.size):
            raise ConfigError(f"{source}: field 'input.size' must be [C, H, W] positive integers "
                              f"(at most {MAX_SIDE}), got {brief(spec.size)}")
        for key, lowest, bound in (("mean", 0.0, ">= 0"), ("std", None, "> 0")):
            values = getattr(spec, key)
            if values and len(values) != spec.size[0]:
                raise ConfigError(f"{source}: field 'input.{key}' has {len(values)} values for "
                                  f"{spec.size[0]} channels")
            for i, value in enumerate(values):
                number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                if not number or (value < lowest if lowest is not None else value <= 0):
                    raise ConfigError(f"{source}: field 'input.{key}[{i}]' must be a finite number {bound}, "
                                      f"got {brief(value)}")
        if bool(spec.mean) != bool(spec.std):
            raise ConfigError(f"{source}: fields 'input.mean' and 'input.std' must be given together")

    def _validate_metrics(self, source: str) -> None:
        """The shape of what the model card reads: ``metrics.evaluations`` a list of objects,
        ``metrics.train`` an object."""
        evaluations = self.metrics.get("evaluations", [])
        if not isinstance(evaluations, list) or not all(isinstance(r, dict) for r in evaluations):
            raise ConfigError(f"{source}: field 'metrics.evaluations' must be a list of evaluation records (objects)")
        if not isinstance(self.metrics.get("train", {}), dict):
            raise ConfigError(f"{source}: field 'metrics.train' must be an object")


def _check_fields(cls: type, data: Any, source: str) -> dict[str, Any]:
    """The known fields of ``cls`` from ``data``; unknown, missing or mistyped fields fail."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {', '.join(map(repr, unknown))}; "
                          f"expected only {', '.join(known)}")
    required = [name for name, f in known.items() if f.default is MISSING and f.default_factory is MISSING]
    missing = [name for name in required if name not in data]
    if missing:
        raise ConfigError(f"{source}: missing field(s) {', '.join(map(repr, missing))}")
    types = {"str": str, "int": int, "list": list, "dict": dict}
    for name, value in data.items():
        expected = types.get(str(known[name].type).split("[")[0])
        if expected is not None and not (isinstance(value, expected) and not isinstance(value, bool)):
            raise ConfigError(f"{source}: field {name!r} must be {expected.__name__}, got {type(value).__name__}")
    return dict(data)
