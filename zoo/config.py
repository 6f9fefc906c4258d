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

Parsing is strict: an unknown field, a missing field, a wrong type or another format version
fails with the file and the field named.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
ENCODINGS = ("direct", "frames", "repeated_frame")


class ConfigError(ValueError):
    """A checkpoint config that does not match the schema; the message names file and field."""


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> "CheckpointConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ConfigError(f"{source}: field 'format_version' is {version!r}; this snnzoo reads version "
                              f"{FORMAT_VERSION} (upgrade snnzoo for newer checkpoints)")
        values = _check_fields(cls, data, source)
        values["input"] = InputSpec(**_check_fields(InputSpec, data["input"], f"{source}: field 'input'"))
        config = cls(**values)
        config._validate(source)
        return config

    @classmethod
    def load(cls, path: str | Path) -> "CheckpointConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file; a checkpoint folder holds config.json") from None
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}: not valid JSON ({error})") from None
        return cls.from_dict(data, source=str(path))

    def _validate(self, source: str) -> None:
        arch, _, tag = self.name.partition(".")
        if arch != self.architecture or not tag:
            raise ConfigError(f"{source}: field 'name' must be '{self.architecture}.<tag>', got {self.name!r}")
        for key in ("T", "neuron"):
            if key not in self.arch_kwargs:
                raise ConfigError(f"{source}: field 'arch_kwargs' lacks {key!r}")
        if self.input.encoding not in ENCODINGS:
            raise ConfigError(f"{source}: field 'input.encoding' must be one of {ENCODINGS}, got {self.input.encoding!r}")
        if len(self.input.size) != 3 or not all(isinstance(s, int) and s > 0 for s in self.input.size):
            raise ConfigError(f"{source}: field 'input.size' must be [C, H, W] positive integers, got {self.input.size!r}")
        for key in ("mean", "std"):
            values = getattr(self.input, key)
            if values and len(values) != self.input.size[0]:
                raise ConfigError(f"{source}: field 'input.{key}' has {len(values)} values for "
                                  f"{self.input.size[0]} channels")
        for key in ("name", "split"):
            if key not in self.dataset:
                raise ConfigError(f"{source}: field 'dataset' lacks {key!r}")


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
