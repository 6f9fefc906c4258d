"""The end of a run: the checkpoint folder ``OUT/checkpoint`` (``zoo.checkpoint.save_checkpoint``).

It holds ``model.safetensors``, ``config.json`` (a :class:`zoo.config.CheckpointConfig`: the
recipe's ``arch.tag`` name, the data set's ``describe()``, the complete recipe with the file it
came from and the ``--set`` overrides, and ``metrics.train``: final train statistics, the run's
own test top-1, wall time, images/s, peak memory, and for converted networks accuracy against T;
``metrics.lineage`` for a fine-tuned model: the parent checkpoint and its sha256, what was copied,
started fresh and frozen, :mod:`zoo.train.init`; the parent's weights' top-1 before this run)
and ``train_log.csv`` (the per-epoch log). Evaluations proper are added later by the evaluation
harness; the model card is written when the checkpoint is published. The folder's files are
written atomically, under the lock of its ``config.json`` that ``zoo eval --write-checkpoint``
takes too (:mod:`zoo.train.files`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from ..config import CheckpointConfig, InputSpec
from ..checkpoint import TRAIN_LOG, save_checkpoint, write_atomic
from ..machine import describe_device
from .distributed import Context
from .files import CONFIG_LOCK, file_lock
from .recipe import Recipe

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def input_spec(described: dict[str, Any]) -> InputSpec:
    """Direct encoding for static images (``input_size`` [C, H, W]); for event data (``input_size``
    [F, C, H, W]) one frame per step, or one frame repeated over T when the events were integrated
    into a single frame (F = 1)."""
    size = [int(s) for s in described["input_size"]]
    if len(size) == 4:
        return InputSpec(encoding="repeated_frame" if size[0] == 1 else "frames", size=size[1:])
    return InputSpec(encoding="direct", size=size, mean=list(described.get("mean") or []), std=list(described.get("std") or []))


def recipe_path(recipe_file: str | None) -> str | None:
    """The recipe file relative to the project root when it lies inside it (so that
    ``zoo train <file>`` repeats the run from a checkout), else as given."""
    if recipe_file is None:
        return None
    path = Path(recipe_file).resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else recipe_file


def train_metrics(rows: list[dict[str, str]], final_eval: dict[str, float], ctx: Context, recipe: Recipe) -> dict[str, Any]:
    train_time = sum(float(r["epoch_time_s"]) for r in rows)
    images = sum(float(r["images_per_s"]) * float(r["epoch_time_s"]) for r in rows)
    last = rows[-1]
    return {
        "epochs": len(rows),
        "train_loss": float(last["train_loss"]),
        "train_top1": float(last["train_top1"]),
        "test_loss": final_eval["loss"],
        "test_top1": final_eval["top1"],
        "test_samples": final_eval["samples"],
        "train_time_s": train_time,
        "wall_time_s": train_time + sum(float(r["eval_time_s"]) for r in rows),
        "images_per_s": images / train_time,
        "peak_memory_mb": max(float(r["peak_memory_mb"]) for r in rows),
        "processes": ctx.world,
        "device": describe_device(ctx.device),
        "precision": recipe.train.precision,
    }


def export_checkpoint(model: nn.Module, recipe: Recipe, out: Path, train_set: Dataset, ctx: Context,
                      rows: list[dict[str, str]], final_eval: dict[str, float], conversion: dict[str, Any] | None,
                      lineage: dict[str, Any] | None, *, recipe_file: str | None, overrides: list[str]) -> Path:
    described = train_set.describe()
    metrics = train_metrics(rows, final_eval, ctx, recipe)
    if conversion is not None:
        metrics["conversion"] = conversion
    lineage_metrics = {"lineage": lineage} if lineage is not None else {}
    config = CheckpointConfig(
        name=recipe.name,
        architecture=recipe.name.partition(".")[0],
        arch_kwargs=dict(model.arch_kwargs),
        input=input_spec(described),
        dataset=described,
        recipe={**recipe.to_dict(), "file": recipe_path(recipe_file), "overrides": list(overrides)},
        metrics={"train": metrics, **lineage_metrics},
    )
    folder = out / "checkpoint"
    with file_lock(folder / CONFIG_LOCK):
        save_checkpoint(model, folder, config)
        write_atomic(folder / TRAIN_LOG, (out / "log.csv").read_bytes())
    return folder
