"""Training recipes: one YAML file per training run, parsed strictly.

A recipe holds every hyperparameter of a run. Nothing has a default in code: a missing field, an
unknown field, a wrong type or a value outside its choices fails with the file and the dotted
field named (``recipes/x.yaml: field 'train.optimizer.lr' must be a number, got str``).
``--set train.epochs=1`` overrides a field by its dotted path (the value is parsed as YAML) and
the result is validated again. The schema is the dataclasses below; ``recipes/`` holds the
files, and ``tests/test_recipes.py`` validates every one of them and builds its model.

Layout (see any file in ``recipes/``)::

    name: spiking_convnet.lif_fashion_mnist_t4   # the checkpoint's arch.tag
    method: baseline-lif                 # free-form label of the method
    source: "..."                        # where the hyperparameters come from
    seed: 0
    deterministic: true
    model: {arch, kwargs}                # zoo.create_model(arch, **kwargs)
    data: {dataset, params, sample_augment, pipeline, workers, eval_batch_size, train_limit, test_limit,
           augment: {crop_padding, hflip, alternate_flip, autoaugment, cutout}}
    train: {epochs, batch_size, accumulation, loss, label_smoothing, optimizer: {...},
            schedule: {...}, ema, grad_clip, precision, channels_last, compile, eval_every}
    convert: null | {kind, ...}          # ANN->SNN or T=1->T=N after training (zoo.convert)
"""

from __future__ import annotations

import copy
import re
import types
import typing
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from ..convert.qcfs import ConversionError, snn_arch
from ..data import EVENT_DATASETS
from ..layers import ANN_ACTIVATIONS
from ..layers.encoding import check_frame_count
from ..neurons.spec import SpecError
from ..neurons.spec import parse as spec_parse


class RecipeError(ValueError):
    """A recipe that does not match the schema; the message names the file and the field."""


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


@dataclass
class Model:
    arch: str  # a registered architecture (zoo.list_models())
    kwargs: dict[str, Any]  # every keyword of the architecture: num_classes, in_chans, T, neuron, ...


@dataclass
class Augment:
    """Batch augmentation, done on the device on the whole batch (zoo.train.data)."""

    crop_padding: int  # random crop back to the input size after zero padding by this; 0 = off
    hflip: bool  # random horizontal flip with probability 1/2 (off for digits)
    alternate_flip: bool  # with hflip: each image flipped in every other epoch instead of at random (airbench)
    autoaugment: Optional[Literal["cifar10", "imagenet", "svhn"]]  # Cubuk et al. CVPR 2019 policy
    cutout: int  # side of one square hole zeroed at a random centre (DeVries & Taylor 2017); 0 = off


@dataclass
class Data:
    dataset: str  # zoo.data name
    params: dict[str, Any]  # passed to zoo.data.create_dataset for both splits (event integration, ...)
    sample_augment: bool  # the data set's own per-sample train augmentation (create_dataset augment=True)
    pipeline: Literal["device", "loader"]  # device: uint8 arrays kept on the device; loader: DataLoader
    workers: int  # DataLoader worker processes (loader pipeline)
    eval_batch_size: int
    train_limit: Optional[int]  # use only the first N training samples (smoke runs); null = all
    test_limit: Optional[int]
    augment: Augment


@dataclass
class SGD:
    name: Literal["sgd"]
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float


@dataclass
class AdamW:
    name: Literal["adamw"]
    lr: float
    betas: list[float]
    eps: float
    weight_decay: float


@dataclass
class Cosine:
    """Linear warm-up, then cosine annealing to min_lr at the last epoch (stepped per epoch, as
    torch's CosineAnnealingLR with T_max = epochs when warmup_epochs = 0)."""

    name: Literal["cosine"]
    warmup_epochs: int
    min_lr: float


@dataclass
class Step:
    """Linear warm-up, then lr * gamma ** (epochs after warm-up // step_size) (torch's StepLR)."""

    name: Literal["step"]
    warmup_epochs: int
    step_size: int
    gamma: float


@dataclass
class EMA:
    """An exponential moving average of the weights (zoo.train.ema), evaluated and exported."""

    decay: float  # the average's decay per optimizer step, reached after a warm-up of (1 + n) / (10 + n)


@dataclass
class Train:
    epochs: int
    batch_size: int  # global: samples per optimizer step over all processes and accumulation steps
    accumulation: int  # micro-batches per process per optimizer step
    loss: Literal["ce", "tet"]  # CE on time-averaged logits, or TET (mean over t of CE(logits[t]))
    label_smoothing: float
    optimizer: Union[SGD, AdamW]
    schedule: Union[Cosine, Step]
    ema: Optional[EMA]  # null = evaluate and export the trained weights themselves
    grad_clip: Optional[float]  # max global gradient L2 norm; null = off
    precision: Literal["fp32", "bf16", "fp16"]  # autocast dtype (fp16 adds a GradScaler)
    channels_last: bool
    compile: bool  # torch.compile the model
    eval_every: int  # evaluate on the test split every N epochs (0: only at the end)


@dataclass
class NoisyToIF:
    """Noise-trained T=1 network run as a T=N IF network (methods.md section 4)."""

    kind: Literal["noisy_t1_to_tn"]
    T: int  # time steps of the saved network
    sweep: list[int]  # T values at which accuracy is reported


@dataclass
class QCFSToIF:
    """ANN twin with clip-floor activations -> IF neurons, soft reset, u0 = V_th/2, V_th = lambda."""

    kind: Literal["qcfs_to_if"]
    T: int
    sweep: list[int]


@dataclass
class QCFSToMultiBit:
    """ANN twin with 2^(m+n)-level clip-floor activations -> multi-bit neurons (methods.md 3)."""

    kind: Literal["qcfs_to_multibit"]
    T: int
    sweep: list[int]
    m: int  # integer bits of a spike
    n: int  # fractional bits of a spike


@dataclass
class Recipe:
    name: str  # the checkpoint's "arch.tag"
    method: str
    source: str
    seed: int
    deterministic: bool
    model: Model
    data: Data
    train: Train
    convert: Optional[Union[NoisyToIF, QCFSToIF, QCFSToMultiBit]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


TAGGED_BY = {"optimizer": "name", "schedule": "name", "convert": "kind"}


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """YAML safe loader that rejects duplicate keys and reads ``1e-4`` as a float (YAML 1.1, which
    PyYAML implements, would read it as a string)."""


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
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
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise RecipeError(f"{source}: not valid YAML ({error})") from None


def read_file(path: str | Path) -> dict[str, Any]:
    """The raw recipe mapping of a ``.yaml`` file."""
    path = Path(path)
    if path.suffix not in (".yaml", ".yml"):
        raise RecipeError(f"{path}: a recipe is a .yaml file")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file") from None
    data = parse_yaml(text, str(path))
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of fields, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """``["train.epochs=1", "data.augment.hflip=false"]`` applied to a copy of ``data``. The path
    must already exist in the recipe (so a typo fails instead of adding a field)."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise RecipeError(f"--set {item!r}: expected KEY=VALUE, e.g. train.epochs=1")
        node = data
        parts = key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                where = ".".join(parts[: depth + 1])
                raise RecipeError(f"{source}: --set {item!r}: the recipe has no field {where!r}")
            if depth < len(parts) - 1:
                node = node[part]
        node[parts[-1]] = parse_yaml(text, f"--set {item!r}")
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
# Validation
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
    values = {name: _convert(hints[name], data[name], f"{path}.{name}" if path else name, source) for name in names}
    return cls(**values)


def _convert(tp: Any, value: Any, path: str, source: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return copy.deepcopy(value)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None:
            if len(options) < len(args):
                return None
            raise _fail(source, path, "must not be null")
        if len(options) > 1 and all(is_dataclass(a) for a in options):
            return _build(_variant(options, value, path, source), value, path, source)
        return _convert(options[0], value, path, source)
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
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(source, path, f"must be an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(source, path, f"must be a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(source, path, f"must be a string, got {type(value).__name__} {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise _fail(source, path, f"must be a list, got {type(value).__name__} {value!r}")
        return [_convert(args[0], v, f"{path}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _fail(source, path, f"must be a mapping with string keys, got {value!r}")
        return {k: _convert(args[1], v, f"{path}.{k}", source) for k, v in value.items()}
    raise TypeError(f"recipe schema: unsupported annotation {tp!r} at {path}")  # a bug in the schema


def _variant(options: list[type], value: Any, path: str, source: str) -> type:
    """The dataclass among ``options`` whose tag field (``name`` or ``kind``) matches ``value``."""
    tag = TAGGED_BY[path.rsplit(".", 1)[-1]]
    choices = {typing.get_args(typing.get_type_hints(cls)[tag])[0]: cls for cls in options}
    if not isinstance(value, dict) or tag not in value:
        raise _fail(source, path, f"must be a mapping with a {tag!r} field, one of {', '.join(map(repr, choices))}")
    if value[tag] not in choices:
        raise _fail(source, f"{path}.{tag}", f"must be one of {', '.join(map(repr, choices))}, got {value[tag]!r}")
    return choices[value[tag]]


def check(recipe: Recipe, source: str) -> None:
    """Constraints between fields and on value ranges."""
    saved = saved_arch(recipe, source)
    arch, _, tag = recipe.name.partition(".")
    if arch != saved or not tag:
        raise _fail(source, "name", f"must be '{saved}.<tag>' (the saved architecture plus a tag), got {recipe.name!r}")
    for key in ("num_classes", "in_chans", "T", "neuron"):
        if key not in recipe.model.kwargs:
            raise _fail(source, "model.kwargs", f"lacks {key!r} (every architecture keyword is written out)")
    positive = {"seed": recipe.seed + 1, "train.epochs": recipe.train.epochs, "train.batch_size": recipe.train.batch_size,
                "train.accumulation": recipe.train.accumulation, "data.eval_batch_size": recipe.data.eval_batch_size,
                "train.optimizer.lr": recipe.train.optimizer.lr}
    for key, value in positive.items():
        if value <= 0:
            raise _fail(source, key, f"must be positive, got {value!r}")
    train, data = recipe.train, recipe.data
    if train.batch_size % train.accumulation:
        raise _fail(source, "train.batch_size", f"({train.batch_size}) must be divisible by train.accumulation ({train.accumulation})")
    if not 0 <= train.schedule.warmup_epochs < train.epochs:
        raise _fail(source, "train.schedule.warmup_epochs", f"must be in [0, train.epochs), got {train.schedule.warmup_epochs}")
    if isinstance(train.optimizer, AdamW) and len(train.optimizer.betas) != 2:
        raise _fail(source, "train.optimizer.betas", f"must be two numbers, got {train.optimizer.betas!r}")
    if not 0 <= train.label_smoothing < 1:
        raise _fail(source, "train.label_smoothing", f"must be in [0, 1), got {train.label_smoothing!r}")
    if train.ema is not None and not 0 <= train.ema.decay < 1:
        raise _fail(source, "train.ema.decay", f"must be in [0, 1), got {train.ema.decay!r}")
    if data.augment.alternate_flip and not data.augment.hflip:
        raise _fail(source, "data.augment.alternate_flip", "needs data.augment.hflip: true")
    if train.eval_every < 0 or data.workers < 0 or data.augment.crop_padding < 0 or data.augment.cutout < 0:
        raise RecipeError(f"{source}: train.eval_every, data.workers, data.augment.crop_padding and "
                          "data.augment.cutout must be >= 0")
    for key in ("train_limit", "test_limit"):
        value = getattr(data, key)
        if value is not None and value <= 0:
            raise _fail(source, f"data.{key}", f"must be positive or null, got {value!r}")
    frames = _event_frames(recipe, source) if data.dataset in EVENT_DATASETS else None
    if data.pipeline == "loader" and data.augment.autoaugment is not None:
        raise _fail(source, "data.augment.autoaugment", "needs the device pipeline (uint8 images)")
    if recipe.convert is not None:
        convert = recipe.convert
        if convert.T <= 0 or not convert.sweep or any(t <= 0 for t in convert.sweep):
            raise _fail(source, "convert", "T and every sweep value must be positive integers, sweep non-empty")
        if isinstance(convert, QCFSToMultiBit) and (convert.m < 1 or convert.n < 0):
            raise _fail(source, "convert", f"needs m >= 1 and n >= 0, got m={convert.m}, n={convert.n}")
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
    except ValueError as error:
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
