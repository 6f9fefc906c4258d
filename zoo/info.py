"""``zoo info NAME``: what a published checkpoint is, or an architecture's defaults and modules.

``zoo info ARCH.TAG`` (or a checkpoint folder) describes the checkpoint from its own files, without
importing PyTorch: the architecture with the checkpoint's arch kwargs and its parameter count (from
the ``model.safetensors`` header), neuron, T, input, data set, a summary of the recipe that trained
it, the checkpoint a chained run started from (and what its weights scored then), its recorded
evaluations, and where it comes from (the local Hub mirror folder, or the Hub id and
revision) with the sha256 pins of ``zoo/pretrained.json`` checked against the files.

``zoo info ARCH`` describes the architecture at its defaults: its docstring, parameter count,
default input and kwargs, published checkpoints, and a module summary down to ``--depth`` levels of
nesting: parameter counts and the output shape of one forward pass at the default input size (T = 1,
batch 1, evaluation mode), given per step and per sample: ``C x H x W`` for feature maps, ``F`` for
vectors. At the default depth it reads these from ``zoo/architectures.json`` (measured by
:mod:`zoo.archfacts`, checked current by the tests) without importing PyTorch; another depth, or an
architecture the file does not hold yet, builds the network (seconds).

An unknown name is one line with the closest known names (:mod:`zoo.suggest`) and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Any

from . import catalog
from .cards import before_training
from .cli import at_least, one_line_errors
from .config import CheckpointConfig
from .suggest import unknown

LISTING = "`zoo list` shows every architecture, `zoo list --pretrained` every checkpoint"


def add_parser(commands) -> None:
    p = commands.add_parser("info", help="what a checkpoint (arch.tag) is, or an architecture's defaults and modules",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="published checkpoint arch.tag, a checkpoint folder, or an architecture")
    p.add_argument("--depth", type=at_least(1), default=catalog.FACTS_DEPTH,
                   help="nesting depth of an architecture's module summary (default %(default)s; "
                        "another depth builds the network)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return one_line_errors(_describe, "zoo info")(args)


def _describe(args: argparse.Namespace) -> int:
    if _is_folder(args.name):
        print(describe_folder(Path(args.name)))
    elif "." in args.name:
        print(describe_published(args.name))
    else:
        print(describe_architecture(args.name, args.depth))
    return 0


def _is_folder(name: str) -> bool:
    """A checkpoint folder: holds a config.json and is not a zoo name (a zoo name always means the
    registry's checkpoint, as in :mod:`zoo.hub`, even where a folder of that name exists)."""
    if not Path(name, catalog.CONFIG).is_file():
        return False
    return name not in catalog.architectures() and name not in catalog.published()


# ---- checkpoints ---------------------------------------------------------------------------------


def describe_published(name: str) -> str:
    """The published checkpoint ``name``: from the mirror's files when it holds them, else from the
    registry entry alone (nothing is downloaded)."""
    table = catalog.published()
    if name not in table:
        arch = name.partition(".")[0]
        if arch not in catalog.architectures():
            raise catalog.CatalogError(unknown("architecture", arch, catalog.architectures(), LISTING))
        raise catalog.CatalogError(unknown("checkpoint", name, table, LISTING))
    entry = table[name]
    folder = catalog.mirror_folder(entry)
    pins = [f"Hub repository {entry.hf_hub_id} at revision {entry.revision}, pinned by zoo/pretrained.json:",
            f"  {catalog.CONFIG:<17} sha256 {entry.config_sha256}",
            f"  {catalog.WEIGHTS:<17} sha256 {entry.sha256}"]
    if folder is None:
        return "\n".join([f"{name}: published checkpoint of {entry.arch}", *pins,
                          ("not in the local Hub mirror: zoo.create_model(NAME, pretrained=True) downloads and "
                           "verifies it (set ZOO_HUB_MIRROR to a mirror folder to read it here)")])
    checks = {catalog.CONFIG: entry.config_sha256, catalog.WEIGHTS: entry.sha256}
    verdicts = {f: "matches" if catalog.sha256_of(folder / f) == pin else "DIFFERS (loading will refuse it)"
                for f, pin in checks.items()}
    pins[1:] = [f"{line}: {verdicts[f]}" for line, f in zip(pins[1:], checks)]
    config = _config(folder / catalog.CONFIG)
    return "\n".join([*_checkpoint_lines(config, folder), f"source: local Hub mirror {folder}", *pins])


def describe_folder(folder: Path) -> str:
    """A checkpoint folder of one's own: verified by the sha256 its config records."""
    config = _config(folder / catalog.CONFIG)
    weights = folder / catalog.WEIGHTS
    verdict = "missing" if not weights.is_file() else \
        "matches" if catalog.sha256_of(weights) == config.weights_sha256 else "DIFFERS (loading will refuse it)"
    return "\n".join([*_checkpoint_lines(config, folder), f"source: checkpoint folder {folder}",
                      f"  {catalog.WEIGHTS} sha256 {config.weights_sha256} (recorded in its config): {verdict}"])


def _config(path: Path) -> CheckpointConfig:
    return CheckpointConfig.loads(path.read_bytes(), str(path))


def _checkpoint_lines(config: CheckpointConfig, folder: Path) -> list[str]:
    weights = folder / catalog.WEIGHTS
    counts = catalog.tensor_counts(weights) if weights.is_file() else None
    params = f"{counts.parameters:,} (+ {counts.buffers:,} batch-norm buffer values)" if counts else "unknown (no weights)"
    kwargs = {k: v for k, v in config.arch_kwargs.items() if k != "neuron"}
    lines = [f"{config.name}: checkpoint of {config.architecture}",
             f"parameters: {params}",
             f"neuron: {format_spec(config.arch_kwargs.get('neuron'))}",
             f"T: {config.T}",
             f"input: {_input(config)}",
             f"dataset: {_dataset(config.dataset)}",
             f"recipe: {_recipe(config.recipe, config.metrics)}",
             *_lineage(config.metrics.get("lineage")),
             "arch kwargs (zoo.create_model(arch, **kwargs) rebuilds this graph):",
             *(f"  {key} = {json.dumps(value)}" for key, value in kwargs.items())]
    evaluations = config.metrics.get("evaluations") or []
    lines.append("evaluations:" if evaluations else "evaluations: none recorded")
    lines += [f"  {_evaluation(r)}" for r in evaluations if isinstance(r, dict)]
    card = folder / catalog.CARD
    if card.is_file():
        lines.append(f"model card: {card}")
    return lines


def format_spec(spec: Any) -> str:
    """A neuron spec as ``name(key=value, ...)``, the form :func:`zoo.neurons.spec.format` gives."""
    if isinstance(spec, str) or not isinstance(spec, dict) or "name" not in spec:
        return str(spec)
    def value(v: Any) -> str:
        if isinstance(v, dict):
            return format_spec(v)
        return repr(v) if isinstance(v, (str, float)) else json.dumps(v)
    params = ", ".join(f"{k}={value(v)}" for k, v in spec.items() if k != "name")
    return f"{spec['name']}({params})" if params else str(spec["name"])


def _input(config: CheckpointConfig) -> str:
    spec = config.input
    size = " x ".join(map(str, spec.size))
    norm = f", normalised with mean {spec.mean} and std {spec.std}" if spec.mean else ", not normalised"
    what = {"direct": "an image repeated at every step (direct encoding)",
            "frames": "one event frame per step",
            "repeated_frame": "one integrated event frame, repeated at every step"}.get(spec.encoding, spec.encoding)
    return f"{size} (C x H x W), {what}{norm}"


def _dataset(dataset: dict[str, Any]) -> str:
    parts = [str(dataset.get("name"))]
    if dataset.get("split"):
        parts.append(f"{dataset['split']} split")
    if isinstance(dataset.get("num_samples"), int):
        parts.append(f"{dataset['num_samples']:,} samples")
    if isinstance(dataset.get("num_classes"), int):
        parts.append(f"{dataset['num_classes']} classes")
    return ", ".join(parts)


def _recipe(recipe: dict[str, Any], metrics: dict[str, Any]) -> str:
    """Method, file, budget, optimiser and schedule of the recipe; conversion; training time."""
    train = recipe.get("train") if isinstance(recipe.get("train"), dict) else {}
    optimizer = train.get("optimizer") if isinstance(train.get("optimizer"), dict) else {}
    schedule = train.get("schedule") if isinstance(train.get("schedule"), dict) else {}
    parts = [f"method {recipe.get('method')}"]
    if recipe.get("file"):
        parts.append(str(recipe["file"]))
    if train:
        parts.append(f"{train.get('epochs')} epochs of batch {train.get('batch_size')}, {train.get('loss')} loss, "
                     f"{optimizer.get('name')} lr {optimizer.get('lr')}, {schedule.get('name')} schedule")
    if isinstance(recipe.get("convert"), dict):
        convert = recipe["convert"]
        parts.append(f"converted ({convert.get('kind')}, T={convert.get('T')})")
    seconds = (metrics.get("train") or {}).get("train_time_s") if isinstance(metrics.get("train"), dict) else None
    if isinstance(seconds, (int, float)):
        parts.append(f"{seconds / 60:.0f} min of training steps")
    return "; ".join(parts)


def _lineage(lineage: Any) -> list[str]:
    """The checkpoint a chained or fine-tuned run started from, and what its weights scored then."""
    if not isinstance(lineage, dict):
        return []
    line = f"started from: {lineage.get('name')} (weights sha256 {lineage.get('weights_sha256')})"
    before = lineage.get("before_training")
    if isinstance(before, dict):
        line += f"; before this run: top-1 {before_training(before)}"
    return [line]


def _evaluation(record: dict[str, Any]) -> str:
    def number(key: str, fmt: str) -> str:
        value = record.get(key)
        return fmt.format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"

    return (f"{record.get('dataset')}/{record.get('split')} T={record.get('T')}: top-1 {number('top1', '{:.2f}')} %, "
            f"top-5 {number('top5', '{:.2f}')} %, firing rate {number('firing_rate', '{:.3f}')}, "
            f"SOPs {number('sops_per_sample', '{:.4g}')} / sample, energy {number('energy_uj_per_sample', '{:.3g}')} µJ "
            f"/ sample ({number('samples', '{:,}')} samples)")


# ---- architectures -------------------------------------------------------------------------------


def describe_architecture(arch: str, depth: int) -> str:
    """``arch`` at its defaults: from ``zoo/architectures.json`` at the depth it holds, else measured
    by building the network (:func:`zoo.archfacts.measure`, which imports PyTorch)."""
    docs = catalog.architecture_docs()
    if arch not in docs:
        raise catalog.CatalogError(unknown("architecture", arch, docs, LISTING))
    facts = catalog.architecture_facts().get(arch) if depth == catalog.FACTS_DEPTH else None
    if facts is None:
        from .archfacts import measure

        facts = measure(arch, depth)
    checkpoints = catalog.match(sorted(catalog.published()), f"{arch}.*")
    lines = [f"{arch}: {facts['class']}",
             *textwrap.wrap(" ".join(docs[arch].replace("``", "").split()), width=100,
                            initial_indent="  ", subsequent_indent="  "),
             f"parameters: {facts['parameters']:,}",
             f"default input: {facts['input_size']} (C, H, W), T = {facts['T']}",
             f"neuron layers: {facts['neuron_layers']}",
             f"checkpoints: {', '.join(checkpoints) if checkpoints else 'none published'} (zoo info ARCH.TAG describes one)",
             "default kwargs (create_model(arch, **kwargs) rebuilds this graph):",
             *(f"  {key} = {json.dumps(value)}" for key, value in facts["kwargs"].items()),
             ""]
    rows = [(name, kind, f"{params:,}", shape) for name, kind, params, shape in facts["modules"]]
    header = ("module", "type", "params", "output / step / sample")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    lines += [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}".rstrip()
              for r in [header, tuple("-" * w for w in widths), *rows]]
    return "\n".join(lines)
