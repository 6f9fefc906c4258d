"""Training recipes: one YAML file per training run, parsed strictly.

A recipe holds every hyperparameter of a run. Nothing has a default in code: a missing field, an
unknown field, a wrong type or a value outside its range fails with the file and the dotted
field named (``recipes/x.yaml: field 'train.optimizer.lr' must be a number, got str``).
``--set train.epochs=1`` overrides a field by its dotted path (the value is parsed as YAML) and
the result is validated again. The schema is the dataclasses below; ``recipes/`` holds the
files, and ``tests/test_recipes.py`` validates every one of them and builds its model.

What is checked, and why (a recipe may come from anywhere, and a run may take days, so bad input
fails here, once, with the file and the field or byte offset named, before anything is written):

- the text: at most ``MAX_RECIPE_BYTES`` of UTF-8 (a bad byte is named by its offset), YAML with
  no duplicate keys, no aliases (an alias bomb expands a few lines into gigabytes), no explicit
  tags (``!!binary``, ``!!python/...``: a recipe is plain data) and at most ``MAX_DEPTH`` levels
  of nesting (the YAML composer recurses);
- names that become paths (``name``, ``model.arch``, ``data.dataset``): :mod:`zoo.names`;
- numbers: never a boolean or a string, always finite, and within the range each field declares
  with :func:`within` (learning rate in (0, 1000], momentum in [0, 1), ...). Upper bounds keep
  every value far inside float32 (a finite 1e300 learning rate would overflow in the optimizer);
- the free-form fields (``model.kwargs``, ``data.params``): JSON values only (they are recorded
  in the checkpoint config), numbers finite and within float32's range, the keywords every
  architecture shares typed and ranged like the fields above, the neuron spec built once, the
  data set's keywords known to it.

Layout (see any file in ``recipes/``)::

    name: spiking_convnet.lif_fashion_mnist_t4   # the checkpoint's arch.tag
    method: baseline-lif                 # free-form label of the method
    source: "..."                        # where the hyperparameters come from
    seed: 0
    deterministic: true
    model: {arch, kwargs, init}          # zoo.create_model(arch, **kwargs); init: null | {checkpoint, freeze}
    data: {dataset, params, sample_augment, pipeline, workers, eval_batch_size, train_limit, test_limit,
           augment: {crop_padding, hflip, alternate_flip, autoaugment, cutout}}
    train: {epochs, batch_size, accumulation, loss, label_smoothing, optimizer: {...},
            schedule: {...}, ema, grad_clip, precision, channels_last, compile, eval_every}
    convert: null | {kind, ...}          # ANN->SNN or T=1->T=N after training (zoo.convert)
"""

from __future__ import annotations

import copy
import inspect
import math
import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Union

import yaml
from torch import nn

from ..convert.qcfs import ConversionError, snn_arch
from ..data import EVENT_DATASETS, list_datasets
from ..data.static import static_dataset
from ..layers import ANN_ACTIVATIONS, create_act
from ..layers.encoding import check_frame_count
from ..names import UnsafeNameError, check_checkpoint_name, check_segment
from ..neurons.spec import SpecError
from ..neurons.spec import parse as spec_parse
from ..registry import build_architecture, is_model

MAX_RECIPE_BYTES = 1 << 20  # the recipes in recipes/ are 2-3 kB
MAX_DEPTH = 32  # levels of nesting in a recipe (they use 4)
FLOAT32_MAX = 3.4028234663852886e38  # free-form numbers go into float32 tensors


class RecipeError(ValueError):
    """A recipe that does not match the schema; the message names the file and the field."""


class RecipeNameError(RecipeError, UnsafeNameError):
    """A recipe name that cannot safely become part of a path (both error types catch it)."""


# --------------------------------------------------------------------------------------------
# Number ranges
# --------------------------------------------------------------------------------------------

_INTERVAL = re.compile(r"([\[(])\s*([-+\w.]+)\s*,\s*([-+\w.]+)\s*([\])])")


class Interval:
    """A range of numbers written as in mathematics: ``"[0, 1)"``, ``"(0, inf)"``, ``"[1, 10_000]"``."""

    def __init__(self, text: str) -> None:
        match = _INTERVAL.fullmatch(text)
        if match is None:
            raise ValueError(f"not an interval: {text!r}")
        self.text = text
        self.low_open, self.high_open = match[1] == "(", match[4] == ")"
        self.low, self.high = (int(b) if re.fullmatch(r"-?[\d_]+", b) else float(b) for b in (match[2], match[3]))

    def __contains__(self, value: int | float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{'>' if self.low_open else '>='} {self.low}"
        return f"in {self.text}"


def within(interval: str) -> Any:
    """A numeric schema field whose value (or each value of its list) must lie in ``interval``."""
    return field(metadata={"range": Interval(interval)})


COUNT = "[1, 2_147_483_647]"  # sample counts and limits
RATE = "(0, 1000]"  # learning rates


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


@dataclass
class Init:
    """Fine-tuning: start from a checkpoint's weights instead of the architecture's initialisation
    (:mod:`zoo.train.init`): every weight whose name, shape and dtype match is copied; a new
    classifier and the neurons' own parameters may start fresh, nothing else may."""

    checkpoint: str  # a published arch.tag, a checkpoint folder, or hf-hub:owner/repo[@revision]
    new_classifier: bool  # true: the classifier starts fresh (a new task); false: copied where its shape fits
    freeze: list[str]  # glob patterns of parameter names kept fixed, e.g. "features.0.*"; [] trains all


@dataclass
class Model:
    arch: str  # a registered architecture (zoo.list_models())
    kwargs: dict[str, Any]  # every keyword of the architecture: num_classes, in_chans, T, neuron, ...
    init: Optional[Init]  # null: the architecture's own initialisation


@dataclass
class Augment:
    """Batch augmentation, done on the device on the whole batch (zoo.train.data)."""

    crop_padding: int = within("[0, 1024]")  # random crop back to the input size after zero padding by this; 0 = off
    hflip: bool  # random horizontal flip with probability 1/2 (off for digits)
    alternate_flip: bool  # with hflip: each image flipped in every other epoch instead of at random (airbench)
    autoaugment: Optional[Literal["cifar10", "imagenet", "svhn"]]  # Cubuk et al. CVPR 2019 policy
    cutout: int = within("[0, 1024]")  # side of one square hole zeroed at a random centre (DeVries & Taylor 2017); 0 = off


@dataclass
class Data:
    dataset: str  # zoo.data name
    params: dict[str, Any]  # passed to zoo.data.create_dataset for both splits (event integration, ...)
    sample_augment: bool  # the data set's own per-sample train augmentation (create_dataset augment=True)
    pipeline: Literal["device", "loader"]  # device: uint8 arrays kept on the device; loader: DataLoader
    workers: int = within("[0, 256]")  # DataLoader worker processes (loader pipeline)
    eval_batch_size: int = within("[1, 1_048_576]")
    train_limit: Optional[int] = within(COUNT)  # use only the first N training samples (smoke runs); null = all
    test_limit: Optional[int] = within(COUNT)
    augment: Augment


@dataclass
class SGD:
    name: Literal["sgd"]
    lr: float = within(RATE)
    momentum: float = within("[0, 1)")
    nesterov: bool
    weight_decay: float = within("[0, 1000]")


@dataclass
class AdamW:
    name: Literal["adamw"]
    lr: float = within(RATE)
    betas: list[float] = within("[0, 1)")
    eps: float = within("(0, 1]")
    weight_decay: float = within("[0, 1000]")


@dataclass
class Cosine:
    """Linear warm-up, then cosine annealing to min_lr at the last epoch (stepped per epoch, as
    torch's CosineAnnealingLR with T_max = epochs when warmup_epochs = 0)."""

    name: Literal["cosine"]
    warmup_epochs: int = within("[0, 1_000_000]")
    min_lr: float = within("[0, 1000]")


@dataclass
class Step:
    """Linear warm-up, then lr * gamma ** (epochs after warm-up // step_size) (torch's StepLR)."""

    name: Literal["step"]
    warmup_epochs: int = within("[0, 1_000_000]")
    step_size: int = within("[1, 1_000_000]")
    gamma: float = within("(0, 1]")


@dataclass
class EMA:
    """An exponential moving average of the weights (zoo.train.ema), evaluated and exported."""

    decay: float = within("(0, 1)")  # the average's decay per optimizer step, reached after a warm-up of (1 + n) / (10 + n)


@dataclass
class Train:
    epochs: int = within("[1, 1_000_000]")
    batch_size: int = within("[1, 1_048_576]")  # global: samples per optimizer step over all processes and accumulation steps
    accumulation: int = within("[1, 65_536]")  # micro-batches per process per optimizer step
    loss: Literal["ce", "tet"]  # CE on time-averaged logits, or TET (mean over t of CE(logits[t]))
    label_smoothing: float = within("[0, 1)")
    optimizer: Union[SGD, AdamW]
    schedule: Union[Cosine, Step]
    ema: Optional[EMA]  # null = evaluate and export the trained weights themselves
    grad_clip: Optional[float] = within("(0, 1e9]")  # max global gradient L2 norm; null = off
    precision: Literal["fp32", "bf16", "fp16"]  # autocast dtype (fp16 adds a GradScaler)
    channels_last: bool
    compile: bool  # torch.compile the model
    eval_every: int = within("[0, 1_000_000]")  # evaluate on the test split every N epochs (0: only at the end)


STEPS = "[1, 10_000]"  # time steps T


@dataclass
class NoisyToIF:
    """Noise-trained T=1 network run as a T=N IF network (methods.md section 4)."""

    kind: Literal["noisy_t1_to_tn"]
    T: int = within(STEPS)  # time steps of the saved network
    sweep: list[int] = within(STEPS)  # T values at which accuracy is reported
    # training images (a seeded random subset, not augmented) on which every BatchNorm's running
    # statistics are re-estimated with the network running T steps (zoo.convert.batchnorm); 0 = keep
    # the statistics gathered in training
    bn_recalibration_images: int = within("[0, 10_000_000]")


@dataclass
class QCFSToIF:
    """ANN twin with clip-floor activations -> IF neurons, soft reset, u0 = V_th/2, V_th = lambda."""

    kind: Literal["qcfs_to_if"]
    T: int = within(STEPS)
    sweep: list[int] = within(STEPS)


@dataclass
class QCFSToMultiBit:
    """ANN twin with 2^(m+n)-level clip-floor activations -> multi-bit neurons (methods.md 3)."""

    kind: Literal["qcfs_to_multibit"]
    T: int = within(STEPS)
    sweep: list[int] = within(STEPS)
    m: int = within("[1, 16]")  # integer bits of a spike
    n: int = within("[0, 16]")  # fractional bits of a spike


@dataclass
class Recipe:
    name: str  # the checkpoint's "arch.tag"
    method: str
    source: str
    seed: int = within("[0, 4_294_967_295]")
    deterministic: bool
    model: Model
    data: Data
    train: Train
    convert: Optional[Union[NoisyToIF, QCFSToIF, QCFSToMultiBit]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


TAGGED_BY = {"optimizer": "name", "schedule": "name", "convert": "kind"}

# Keywords that several architectures take, typed and ranged as the schema's fields are; an
# architecture checks its other keywords itself when it is built (build_model).
MODEL_KWARGS: dict[str, tuple[Any, Interval | None]] = {
    "num_classes": (int, Interval("[1, 1_000_000]")),
    "in_chans": (int, Interval("[1, 1024]")),
    "T": (int, Interval(STEPS)),
    "img_size": (Union[int, list[int]], Interval("[1, 65_536]")),
    "channels": (int, Interval("[1, 65_536]")),
    "head_hidden": (int, Interval("[0, 65_536]")),
    "depths": (list[int], Interval("[1, 1024]")),
    "widths": (list[int], Interval("[1, 65_536]")),
    "input_bn": (bool, None),
    "restim": (bool, None),
    "avg_down": (bool, None),
    "zero_init_residual": (bool, None),
    "stem": (str, None),
    "cfg": (str, None),
}
# create_dataset keywords that the zoo sets itself, or that name machine paths: never in a recipe
SET_BY_THE_ZOO = {"augment", "transform", "cache_dir", "progress"}


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """YAML safe loader that rejects duplicate keys, aliases and nesting deeper than ``MAX_DEPTH``,
    and reads ``1e-4`` as a float (YAML 1.1, which PyYAML implements, would read it as a string)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, f"found the alias *{event.anchor}: aliases are not "
                                              "allowed in a recipe (write the value out)", event.start_mark)
        if getattr(event, "tag", None) is not None:
            raise yaml.composer.ComposerError(None, None, f"found the tag {event.tag}: tags are not allowed in a "
                                              "recipe (plain values only)", event.start_mark)
        if self.depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, typing.Hashable):
            raise yaml.constructor.ConstructorError(None, None, f"a key must be a scalar, got {type(key).__name__}",
                                                    key_node.start_mark)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)
_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$")
_StrictLoader.yaml_implicit_resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:float"]
                                         for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
# the float pattern also matches integers, so the int resolver must be tried first
for _ch, _resolvers in _StrictLoader.yaml_implicit_resolvers.items():
    _resolvers.sort(key=lambda r: r[0] != "tag:yaml.org,2002:int")


def parse_yaml(text: str, source: str) -> Any:
    """``text`` as YAML with the strict loader; any failure is one RecipeError on one line
    (PyYAML names the line and column; its constructors raise plain exceptions too, e.g.
    ValueError for the timestamp ``2001-13-45``)."""
    if len(text) > MAX_RECIPE_BYTES:
        raise RecipeError(f"{source}: longer than {MAX_RECIPE_BYTES} characters; a recipe is a few kilobytes")
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, ValueError, TypeError, LookupError, ArithmeticError, AttributeError) as error:
        message = " ".join(str(error).replace('in "<unicode string>", ', "").split())
        raise RecipeError(f"{source}: not valid YAML ({message})") from None


def read_text(path: Path) -> str:
    """The text of the file ``path``: at most ``MAX_RECIPE_BYTES`` bytes of UTF-8."""
    if path.exists() and not path.is_file():
        raise RecipeError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_RECIPE_BYTES + 1)
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file") from None
    except OSError as error:
        raise RecipeError(f"{path}: cannot be read ({error.strerror or error})") from None
    if len(data) > MAX_RECIPE_BYTES:
        raise RecipeError(f"{path}: larger than {MAX_RECIPE_BYTES} bytes; a recipe is a few kilobytes of YAML")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecipeError(f"{path}: not UTF-8 text: byte {data[error.start]:#04x} at byte offset {error.start} "
                          f"({error.reason})") from None


def read_file(path: str | Path) -> dict[str, Any]:
    """The raw recipe mapping of a ``.yaml`` file."""
    path = Path(path)
    if path.suffix not in (".yaml", ".yml"):
        raise RecipeError(f"{path}: a recipe is a .yaml file")
    data = parse_yaml(read_text(path), str(path))
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise RecipeError(f"{path}: a recipe is a mapping of fields, got {got}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """``["train.epochs=1", "data.augment.hflip=false"]`` applied to a copy of ``data``. The path
    must already exist in the recipe (so a typo fails instead of adding a field)."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=") if isinstance(item, str) else ("", "", "")
        if not sep or not key:
            raise RecipeError(f"{source}: --set {item!r}: expected KEY=VALUE, e.g. train.epochs=1")
        node = data
        parts = key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                where = ".".join(parts[: depth + 1])
                raise RecipeError(f"{source}: --set {item!r}: the recipe has no field {where!r}")
            if depth < len(parts) - 1:
                node = node[part]
        node[parts[-1]] = parse_yaml(text, f"{source}: --set {item!r}")
    return data


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read, override and validate a recipe file."""
    raw = apply_overrides(read_file(path), overrides or [], str(path))
    return from_dict(raw, str(path))


def from_dict(data: dict[str, Any], source: str = "recipe") -> Recipe:
    recipe = _build(Recipe, data, "", source)
    check(recipe, source)
    return recipe


# --------------------------------------------------------------------------------------------
# Validation of types and ranges
# --------------------------------------------------------------------------------------------


def _fail(source: str, path: str, message: str) -> RecipeError:
    return RecipeError(f"{source}: field {path!r} {message}")


def _build(cls: type, data: Any, path: str, source: str) -> Any:
    where = path or "(top level)"
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: field {where!r} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    unknown = [key for key in data if key not in names]
    if unknown:
        full = ", ".join(repr(f"{path}.{k}" if path else str(k)) for k in unknown)
        raise RecipeError(f"{source}: unknown field(s) {full}; {where} has only: {', '.join(names)}")
    missing = [name for name in names if name not in data]
    if missing:
        full = ", ".join(repr(f"{path}.{k}" if path else k) for k in missing)
        raise RecipeError(f"{source}: missing field(s) {full} (every hyperparameter is written in the recipe)")
    values = {f.name: _convert(hints[f.name], data[f.name], f"{path}.{f.name}" if path else f.name, source,
                               f.metadata.get("range")) for f in fields(cls)}
    return cls(**values)


def _convert(tp: Any, value: Any, path: str, source: str, limits: Interval | None = None) -> Any:
    """``value`` checked against the annotation ``tp`` (and the number range ``limits``)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        check_json(value, path, source)
        return copy.deepcopy(value)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None:
            if len(options) < len(args):
                return None
            raise _fail(source, path, "must not be null")
        if len(options) > 1 and all(is_dataclass(a) for a in options):
            return _build(_variant(options, value, path, source), value, path, source)
        lists = [a for a in options if typing.get_origin(a) is list]
        chosen = lists[0] if isinstance(value, list) and lists else next(a for a in options if a not in lists)
        return _convert(chosen, value, path, source, limits)
    if origin is Literal:
        if value not in args:
            raise _fail(source, path, f"must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if is_dataclass(tp):
        return _build(tp, value, path, source)
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(source, path, f"must be true or false, got {value!r}")
        return value
    if tp in (int, float):
        return _number(tp, value, path, source, limits)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(source, path, f"must be a string, got {type(value).__name__} {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise _fail(source, path, f"must be a list, got {type(value).__name__} {value!r}")
        return [_convert(args[0], v, f"{path}[{i}]", source, limits) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _fail(source, path, f"must be a mapping with string keys, got {value!r}")
        return {k: _convert(args[1], v, f"{path}.{k}", source) for k, v in value.items()}
    raise TypeError(f"recipe schema: unsupported annotation {tp!r} at {path}")  # a bug in the schema


def _number(tp: type, value: Any, path: str, source: str, limits: Interval | None) -> int | float:
    """An integer (``tp`` int) or a number (float): never a boolean or a string, finite, in range."""
    kinds = (int, float) if tp is float else (int,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        what = "a number" if tp is float else "an integer"
        raise _fail(source, path, f"must be {what}, got {type(value).__name__} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(source, path, f"must be a finite number, got {value!r}")
    if limits is not None and value not in limits:
        raise _fail(source, path, f"must be {limits}, got {value!r}")
    return float(value) if tp is float else value


def _variant(options: list[type], value: Any, path: str, source: str) -> type:
    """The dataclass among ``options`` whose tag field (``name`` or ``kind``) matches ``value``."""
    tag = TAGGED_BY[path.rsplit(".", 1)[-1]]
    choices = {typing.get_args(typing.get_type_hints(cls)[tag])[0]: cls for cls in options}
    if not isinstance(value, dict) or tag not in value:
        raise _fail(source, path, f"must be a mapping with a {tag!r} field, one of {', '.join(map(repr, choices))}")
    if not isinstance(value[tag], str) or value[tag] not in choices:
        raise _fail(source, f"{path}.{tag}", f"must be one of {', '.join(map(repr, choices))}, got {value[tag]!r}")
    return choices[value[tag]]


def check_json(value: Any, path: str, source: str, depth: int = 0) -> None:
    """A free-form value (``model.kwargs``, ``data.params``) is recorded as JSON in the checkpoint
    config and passed as keywords: only JSON types, string keys, finite numbers, bounded nesting."""
    if depth > MAX_DEPTH:
        raise _fail(source, path, f"is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise _fail(source, path, f"must have string keys, got {type(key).__name__} {key!r}")
            check_json(item, f"{path}.{key}", source, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_json(item, f"{path}[{i}]", source, depth + 1)
    elif isinstance(value, float) and not (math.isfinite(value) and abs(value) <= FLOAT32_MAX):
        raise _fail(source, path, f"must be a finite number within float32's range, got {value!r}")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63:
        raise _fail(source, path, f"must be an integer within 64 bits, got {value!r}")
    elif not (value is None or isinstance(value, (str, int, float, bool))):
        raise _fail(source, path, "must be a string, number, true/false, null, list or mapping, "
                                  f"got {type(value).__name__} {value!r}")


# --------------------------------------------------------------------------------------------
# Validation of names and of constraints between fields
# --------------------------------------------------------------------------------------------


def _check_name(check: Callable[..., str], value: str, path: str, source: str) -> None:
    """``value`` through one of zoo.names' checks, failing as a RecipeError that names the field."""
    try:
        check(value, what=f"field {path!r}", source=source)
    except UnsafeNameError as error:
        raise RecipeNameError(str(error)) from None


def check(recipe: Recipe, source: str) -> None:
    """Names, the free-form fields, and constraints between fields."""
    _check_names(recipe, source)
    _check_model_kwargs(recipe, source)
    _check_data(recipe, source)
    saved = saved_arch(recipe, source)
    arch, _, tag = recipe.name.partition(".")
    if arch != saved or not tag:
        raise _fail(source, "name", f"must be '{saved}.<tag>' (the saved architecture plus a tag), got {recipe.name!r}")
    train, data = recipe.train, recipe.data
    if train.batch_size % train.accumulation:
        raise _fail(source, "train.batch_size", f"({train.batch_size}) must be divisible by train.accumulation ({train.accumulation})")
    if train.schedule.warmup_epochs >= train.epochs:
        raise _fail(source, "train.schedule.warmup_epochs", f"must be in [0, train.epochs), got {train.schedule.warmup_epochs}")
    if isinstance(train.optimizer, AdamW) and len(train.optimizer.betas) != 2:
        raise _fail(source, "train.optimizer.betas", f"must be two numbers, got {train.optimizer.betas!r}")
    if data.augment.alternate_flip and not data.augment.hflip:
        raise _fail(source, "data.augment.alternate_flip", "needs data.augment.hflip: true")
    frames = _event_frames(recipe, source) if data.dataset in EVENT_DATASETS else None
    if data.pipeline == "loader" and data.augment.autoaugment is not None:
        raise _fail(source, "data.augment.autoaugment", "needs the device pipeline (uint8 images)")
    if recipe.convert is not None:
        _check_convert(recipe, frames, source)


def _check_names(recipe: Recipe, source: str) -> None:
    """The names that become paths or look-ups: the checkpoint's ``arch.tag`` (the default run
    folder and the checkpoint's name), a registered architecture, a known data set."""
    _check_name(check_checkpoint_name, recipe.name, "name", source)
    _check_name(check_segment, recipe.model.arch, "model.arch", source)
    if not is_model(recipe.model.arch):
        raise _fail(source, "model.arch", f"must be a registered architecture (zoo.list_models()), got {recipe.model.arch!r}")
    _check_name(check_segment, recipe.data.dataset, "data.dataset", source)
    if recipe.data.dataset not in list_datasets():
        raise _fail(source, "data.dataset", f"must be one of {', '.join(list_datasets())}, got {recipe.data.dataset!r}")


def _check_model_kwargs(recipe: Recipe, source: str) -> None:
    """The architecture keywords: the four every recipe writes out, the shared ones typed and
    ranged (``MODEL_KWARGS``), and the neuron spec, built once."""
    kwargs = recipe.model.kwargs
    for key in ("num_classes", "in_chans", "T", "neuron"):
        if key not in kwargs:
            raise _fail(source, "model.kwargs", f"lacks {key!r} (every architecture keyword is written out)")
    for key, value in kwargs.items():
        if not key.isidentifier():
            raise _fail(source, f"model.kwargs.{key}", "must be a Python identifier (it is a keyword argument)")
        if key in MODEL_KWARGS:
            tp, limits = MODEL_KWARGS[key]
            _convert(tp, value, f"model.kwargs.{key}", source, limits)
    if isinstance(kwargs.get("img_size"), list) and len(kwargs["img_size"]) != 2:
        raise _fail(source, "model.kwargs.img_size", f"must be one integer or [height, width], got {kwargs['img_size']!r}")
    try:
        create_act(kwargs["neuron"], backend="torch")
    except (SpecError, TypeError, ValueError) as error:
        raise _fail(source, "model.kwargs.neuron", str(error)) from None


def dataset_keywords(name: str) -> set[str]:
    """The ``create_dataset`` keywords a recipe's ``data.params`` may hold for data set ``name``:
    the factory's keyword-only parameters, less those the zoo sets itself (``SET_BY_THE_ZOO``)."""
    if name in EVENT_DATASETS:
        factories = [c.__init__ for c in EVENT_DATASETS[name].__mro__ if "__init__" in vars(c)]
    else:
        factories = [static_dataset]
    return {p.name for f in factories for p in inspect.signature(f).parameters.values()
            if p.kind is p.KEYWORD_ONLY} - SET_BY_THE_ZOO


def _check_data(recipe: Recipe, source: str) -> None:
    data = recipe.data
    allowed = dataset_keywords(data.dataset)
    unknown = sorted(set(data.params) - allowed)
    if unknown:
        raise _fail(source, "data.params", f"has unknown key(s) {', '.join(map(repr, unknown))}; "
                                           f"{data.dataset} takes: {', '.join(sorted(allowed))}")
    if data.pipeline == "device" and data.dataset in EVENT_DATASETS:
        raise _fail(source, "data.pipeline", f"must be 'loader' for the event data set {data.dataset!r} "
                                             "(the device pipeline keeps static uint8 images)")


def _check_convert(recipe: Recipe, frames: int | None, source: str) -> None:
    convert = recipe.convert
    if not convert.sweep:
        raise _fail(source, "convert.sweep", "must list at least one T")
    _check_convert_neuron(recipe, source)
    if frames not in (None, 1) and (convert.sweep != [convert.T] or frames != convert.T):
        raise _fail(source, "convert.sweep", "must be [convert.T] with convert.T = data.params.frames when events "
                                             "are integrated into one frame per step (the frames are the time "
                                             "steps); with data.params.frames = 1 the frame is repeated over T "
                                             "and any sweep works")


def _event_frames(recipe: Recipe, source: str) -> int:
    """The frame count the event data set will integrate (its preset, then ``data.params``), checked
    against the network's T (:func:`zoo.layers.encoding.check_frame_count`)."""
    stateless = _neuron_spec(recipe, source)["name"] in ANN_ACTIVATIONS
    try:
        frames = EVENT_DATASETS[recipe.data.dataset].resolve_params(recipe.data.params)[0].frames
        check_frame_count(frames, recipe.model.kwargs["T"], stateless, f"model {recipe.model.arch}")
    except (TypeError, ValueError) as error:
        raise _fail(source, "data.params", str(error)) from None
    return frames


def _neuron_spec(recipe: Recipe, source: str) -> dict[str, Any]:
    try:
        return spec_parse(recipe.model.kwargs["neuron"])
    except SpecError as error:
        raise _fail(source, "model.kwargs.neuron", str(error)) from None


def _check_convert_neuron(recipe: Recipe, source: str) -> None:
    """The trained network must be the kind the conversion starts from (checked before training)."""
    neuron = _neuron_spec(recipe, source)
    convert = recipe.convert
    needed = "noisy_if" if isinstance(convert, NoisyToIF) else "qcfs"
    if neuron["name"] != needed:
        raise _fail(source, "model.kwargs.neuron", f"must be a {needed!r} spec for convert.kind {convert.kind!r}, got {neuron['name']!r}")
    if isinstance(convert, QCFSToMultiBit):
        levels = 2 ** (convert.m + convert.n) - 1
        if neuron.get("levels") != levels:
            raise _fail(source, "model.kwargs.neuron", f"must be qcfs with levels = 2^(m+n) - 1 = {levels} "
                                                       f"to map onto {convert.m}.{convert.n}-bit spikes, got {neuron}")


def saved_arch(recipe: Recipe, source: str) -> str:
    """The architecture of the checkpoint a recipe produces: the trained one, or for an ANN twin
    converted by QCFS the registered SNN (``vgg16_qcfs`` -> ``spiking_vgg16``)."""
    if not isinstance(recipe.convert, (QCFSToIF, QCFSToMultiBit)):
        return recipe.model.arch
    try:
        return snn_arch(recipe.model.arch)
    except ConversionError as error:
        raise _fail(source, "model.arch", f"must be an ANN twin for convert.kind {recipe.convert.kind!r} ({error})") from None


def build_model(recipe: Recipe, source: str, **options: Any) -> nn.Module:
    """The recipe's model (``options``: ``backend``, ...). The architecture checks the keywords
    the recipe cannot know; a keyword it refuses is the recipe's error, named as such."""
    try:
        return build_architecture(recipe.model.arch, **options, **recipe.model.kwargs)
    except (TypeError, ValueError) as error:
        raise _fail(source, "model.kwargs", f"does not build {recipe.model.arch!r}: {error}") from None
