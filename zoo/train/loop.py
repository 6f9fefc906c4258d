"""The training loop: backpropagation through time with surrogate gradients.

Each step feeds a batch through the model's T time steps (``model.forward_timesteps``: the
neurons unroll their membrane over T inside one autograd graph, and their surrogate gradients
carry the error back through time, BPTT as in STBP, Wu et al. 2018), computes the loss of
``zoo.train.losses`` on the per-step logits, and takes one optimizer step per global batch
(gradients of ``accumulation`` micro-batches, averaged over processes by DDP).

Determinism and resuming. With ``deterministic: true`` the run uses deterministic kernels; the
model is initialised from ``seed``, each process's global generators from ``seed + rank``, and the
data order and augmentation from the data generator (``zoo.train.data``). After every epoch the
whole state (``zoo.train.state``) is written atomically, so ``--resume`` continues bit for bit:
a run stopped after k epochs and resumed ends with the same weights as one run straight through.

Safety. A run holds its folder's lock (``.zoo-train.lock``) while it runs, so a second ``zoo train``
on the same folder fails at once instead of interleaving its writes; under the lock the temporary
files of a killed earlier run are removed. A step whose loss is not finite (nan or inf), or
weights that are not finite after an epoch, stop the run with :class:`TrainingDiverged` naming the
epoch and the step: the epoch is not saved (the run folder keeps the state of the last good
epoch, from which ``--resume`` goes on, e.g. with ``--set train.optimizer.lr=...`` refused as
another recipe) and no checkpoint is exported.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..checkpoint import write_atomic
from ..convert import convert_trained
from ..registry import build_architecture
from . import distributed
from .data import DeviceSplit, LoaderSplit, alternating_flips, build_splits, epoch_plan
from .ema import WeightEMA
from .evaluate import autocast, evaluate
from .export import export_checkpoint
from .files import LockedError, file_lock, remove_stale_tmp
from .init import CLASSIFIER, initialise
from .log import MetricsLog, peak_memory_mb, reset_peak_memory
from .losses import loss_fn
from .optim import build_optimizer, lr_at, set_lr
from .recipe import Recipe, build_model
from .state import STATE_FILE, StateError, capture_rng, load_run_state, restore_rng, save_state, seed_everything

LOCK_FILE = ".zoo-train.lock"
BEFORE_FILE = "before_training.json"  # a chained run's starting point (_before_training)


class TrainingDiverged(RuntimeError):
    """The loss or the weights became non-finite; the message names the epoch and the step."""


class PerStepLogits(nn.Module):
    """Calls ``model.forward_timesteps`` through ``forward``, so DDP's hooks see the call."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_timesteps(x)


@contextlib.contextmanager
def determinism(enabled: bool, device: torch.device):
    """Deterministic kernels for the duration of a run (the previous settings are restored)."""
    previous = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    if enabled and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.benchmark = not enabled
    torch.backends.cudnn.deterministic = enabled
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = previous[1:]


def train(recipe: Recipe, out: str | Path, *, recipe_file: str | None = None, overrides: list[str] | None = None,
          resume: bool = False, stop_after: int | None = None, device: str = "auto", backend: str = "auto",
          data_root: str | None = None, progress: bool = True, convert_from: str | Path | None = None) -> Path | None:
    """Run ``recipe`` in the folder ``out``; return the checkpoint folder, or None when stopped
    early by ``stop_after`` (a number of completed epochs; the state is saved, ``resume`` goes on,
    bit for bit; the recipe may then differ from the run's only in the fields that act after
    training, :data:`CONVERSION_FIELDS`, and in model keywords added since with their defaults).

    ``convert_from``: instead of training, take the finished run in that folder, trained by this
    recipe but for its ``name``, ``method``, ``source`` and ``convert`` fields, and convert and export
    its weights as this recipe says (one trained ANN twin published as IF and as multi-bit spikes;
    the checkpoint's training log and cost are the source run's).

    ``recipe_file`` and ``overrides`` are recorded in the checkpoint config so that the run can be
    repeated with ``zoo train FILE --set ...``.
    """
    if convert_from is not None and resume:
        raise StateError("--convert-from takes a finished run; --resume continues this one: give one of them")
    out = Path(out)
    ctx = distributed.setup(device)
    try:
        with determinism(recipe.deterministic, ctx.device), run_folder(out, ctx):
            return _run(recipe, out, ctx, recipe_file=recipe_file, overrides=list(overrides or []), resume=resume,
                        stop_after=stop_after, backend=backend, data_root=data_root, progress=progress,
                        convert_from=None if convert_from is None else Path(convert_from))
    finally:
        distributed.teardown(ctx)


@contextlib.contextmanager
def run_folder(out: Path, ctx: distributed.Context) -> Iterator[None]:
    """Hold ``out`` for this run (the main process takes its lock without waiting: another run in
    the same folder is an error, not a queue), after removing what killed writers left there."""
    if not ctx.main:
        yield
        return
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(file_lock(out / LOCK_FILE, wait=False))
        except LockedError:
            raise StateError(f"{out}: another zoo train is running in this folder (it holds {out / LOCK_FILE}); "
                             "wait for it to finish or choose another --out") from None
        for folder in (out, out / "checkpoint"):
            remove_stale_tmp(folder)
        yield


def _run(recipe: Recipe, out: Path, ctx: distributed.Context, *, recipe_file: str | None, overrides: list[str],
         resume: bool, stop_after: int | None, backend: str, data_root: str | None, progress: bool,
         convert_from: Path | None) -> Path | None:
    train_cfg = recipe.train
    seed_everything(recipe.seed)
    model = build_model(recipe, recipe_file or "recipe", backend=backend).to(ctx.device)
    lineage = None  # fine-tuning: the parent's weights and the frozen parameters (restored runs too)
    if recipe.model.init is not None and convert_from is None:
        lineage = initialise(model, recipe.model.init, recipe_file or "recipe")
    if train_cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    seed_everything(recipe.seed + ctx.rank)
    train_split, test_split, train_set = build_splits(recipe.data, ctx, data_root)
    optimizer = build_optimizer(model.parameters(), train_cfg.optimizer)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=train_cfg.precision == "fp16")
    generator = torch.Generator().manual_seed(recipe.seed)
    ema = WeightEMA(model, train_cfg.ema.decay) if train_cfg.ema is not None else None

    start = 0
    if (out / STATE_FILE).exists() and not resume:
        raise StateError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if resume:
        start = _restore(load_run_state(out), recipe, ctx, model, optimizer, scaler, generator, ema, out,
                         may_differ=CONVERSION_FIELDS)
    elif convert_from is not None:
        start = _restore(load_run_state(convert_from), recipe, ctx, model, optimizer, scaler, generator, ema, convert_from,
                         may_differ=CONVERSION_FIELDS)
        if start != train_cfg.epochs:
            raise StateError(f"{convert_from / STATE_FILE}: the run has finished {start} of its "
                             f"{train_cfg.epochs} epochs; convert it once it has finished")
        if ctx.main:  # the training that the checkpoint reports
            write_atomic(out / "log.csv", _read_log(convert_from / "log.csv"))

    net: nn.Module = PerStepLogits(model)
    if ctx.distributed:
        net = DistributedDataParallel(net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    if train_cfg.compile:
        net = torch.compile(net)
    log = MetricsLog(out, tensorboard=True) if ctx.main else None
    with contextlib.ExitStack() as stack:
        if log is not None:
            stack.callback(log.close)
            log.start(start)

        def test(network: nn.Module) -> dict[str, float]:
            return evaluate(network, test_split.eval_batches(recipe.data.eval_batch_size, ctx), ctx, train_cfg.precision)

        if lineage is not None and not any(key.startswith(CLASSIFIER) for key in lineage["fresh"]):
            before = _before_training(out, model, recipe, ctx, test, start == 0,
                                      lambda n: training_subset(train_split, n, recipe))
            if before is not None:
                lineage["before_training"] = before
        end = train_cfg.epochs if stop_after is None else min(stop_after, train_cfg.epochs)
        final_eval: dict[str, float] | None = None
        for epoch in range(start, end):
            lr = lr_at(train_cfg.schedule, train_cfg.optimizer.lr, epoch, train_cfg.epochs)
            set_lr(optimizer, lr)
            stats = _train_epoch(net, model, optimizer, scaler, ema, train_split, recipe, ctx, generator, epoch, progress)
            final_eval = _epoch_end(epoch, lr, stats, model, ema, train_cfg, test, log, progress)
            _save(out, recipe, ctx, epoch + 1, model, optimizer, scaler, generator, ema)
        if end < train_cfg.epochs:
            return None
        distributed.check_replicas(ctx, model)
        model = trained(model, ema)
        if final_eval is None:  # resumed after the last epoch
            final_eval = test(model)
        conversion = None
        if recipe.convert is not None:
            model, conversion = convert_trained(model, recipe.model.arch, recipe.convert, lambda network: test(network)["top1"],
                                                source_top1=final_eval["top1"],
                                                training_images=lambda n: training_subset(train_split, n, recipe))
        result = None
        if log is not None:
            result = export_checkpoint(model, recipe, out, train_set, ctx, log.rows(), final_eval, conversion,
                                       lineage, recipe_file=recipe_file, overrides=overrides)
    distributed.barrier(ctx)
    return result


def _before_training(out: Path, model: nn.Module, recipe: Recipe, ctx: distributed.Context,
                     test: Callable[[nn.Module], dict[str, float]], fresh: bool,
                     training_images: Callable[[int], Any]) -> dict[str, Any] | None:
    """A chained run's starting point: the parent's weights as this recipe runs them, test top-1 at
    the recipe's T and, where the recipe converts, converted at the ``convert`` T; the figure a
    card sets beside the run's own, so that it says what this stage added. Measured when the run
    starts (``fresh``) and kept in the run folder (``BEFORE_FILE``) for its resumptions; None for a
    run resumed from before this was recorded."""
    path = out / BEFORE_FILE
    if not fresh:
        return json.loads(path.read_text()) if path.is_file() else None
    before: dict[str, Any] = {"T": model.T, "top1": test(model)["top1"]}
    if recipe.convert is not None:
        spec = dataclasses.replace(recipe.convert, sweep=[recipe.convert.T])
        _, report = convert_trained(copy.deepcopy(model), recipe.model.arch, spec, lambda net: test(net)["top1"],
                                    source_top1=before["top1"], training_images=training_images)
        before.update(converted_T=spec.T, converted_top1=report["accuracy_vs_T"][str(spec.T)])
    if ctx.main:
        write_atomic(path, json.dumps(before) + "\n")
    return before


def training_subset(split: DeviceSplit | LoaderSplit, n: int, recipe: Recipe) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` training images drawn without replacement by the recipe's seed, not augmented, in
    evaluation batches; every process sees the same ones (so replicas stay equal)."""
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(recipe.seed))
    return split.batches(order[:n].tolist(), recipe.data.eval_batch_size)


def _epoch_end(epoch: int, lr: float, stats: dict[str, float], model: nn.Module, ema: WeightEMA | None, train_cfg: Any,
               test: Callable[[nn.Module], dict[str, float]], log: MetricsLog | None, progress: bool) -> dict[str, float] | None:
    """After an epoch's steps: the test evaluation when due, and the log row (main process)."""
    final_eval, eval_time = None, 0.0
    if epoch == train_cfg.epochs - 1 or (train_cfg.eval_every and (epoch + 1) % train_cfg.eval_every == 0):
        begin = time.perf_counter()
        final_eval = test(trained(model, ema))
        eval_time = time.perf_counter() - begin
    if log is not None:
        log.append({"epoch": epoch + 1, "lr": lr, "train_loss": stats["loss"], "train_top1": stats["top1"],
                    "test_loss": final_eval["loss"] if final_eval else "", "test_top1": final_eval["top1"] if final_eval else "",
                    "epoch_time_s": stats["time_s"], "eval_time_s": eval_time, "images_per_s": stats["images_per_s"],
                    "peak_memory_mb": stats["peak_memory_mb"]})
        if progress:
            shown = f", test top-1 {final_eval['top1']:.2f}%" if final_eval else ""
            tqdm.write(f"epoch {epoch + 1}/{train_cfg.epochs}: loss {stats['loss']:.4f}, train top-1 {stats['top1']:.2f}%"
                       f"{shown}, {stats['images_per_s']:.0f} images/s")
    return final_eval


def _read_log(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise StateError(f"{path}: missing; a finished run folder holds its training log") from None


def trained(model: nn.Module, ema: WeightEMA | None) -> nn.Module:
    """The network a run evaluates and exports: the weights' moving average when the recipe keeps one."""
    return model if ema is None else ema.module


def _train_epoch(net: nn.Module, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                 ema: WeightEMA | None, split: Any, recipe: Recipe, ctx: distributed.Context, generator: torch.Generator,
                 epoch: int, progress: bool) -> dict[str, float]:
    cfg = recipe.train
    plan = epoch_plan(len(split), cfg.batch_size, cfg.accumulation, ctx, generator)
    if recipe.data.augment.alternate_flip:
        plan.flips = alternating_flips(plan.order, len(split), epoch, recipe.seed)
    net.train()
    reset_peak_memory(ctx.device)
    totals = torch.zeros(4, dtype=torch.float64, device=ctx.device)  # loss sum, correct, samples, non-finite losses
    finite_steps = []  # per optimizer step: were all its losses finite (device tensors, read once at the end)
    bar = tqdm(total=plan.steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step", leave=False,
               disable=not (progress and ctx.main))
    begin = time.perf_counter()
    for micro in split.train_batches(plan, recipe.data.augment, generator):
        optimizer.zero_grad(set_to_none=True)
        step_finite = torch.ones((), dtype=torch.bool, device=ctx.device)
        for j, (x, y) in enumerate(micro):
            if cfg.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            defer_sync = ctx.distributed and j < len(micro) - 1
            with net.no_sync() if defer_sync else contextlib.nullcontext():
                with autocast(ctx.device, cfg.precision):
                    logits = net(x)
                loss = loss_fn(cfg.loss, logits, y, cfg.label_smoothing)
                scaler.scale(loss / len(micro)).backward()
            with torch.no_grad():
                finite = torch.isfinite(loss.detach())
                step_finite &= finite
                correct = (logits.float().mean(0).argmax(1) == y).sum()
                totals += torch.stack([loss.detach().double() * y.numel(), correct.double(),
                                       torch.tensor(float(y.numel()), dtype=torch.float64, device=ctx.device),
                                       (~finite).double()])
        finite_steps.append(step_finite)
        if cfg.grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        if ema is not None:
            ema.update(model)
        bar.update(1)
    if ctx.device.type == "cuda":
        torch.cuda.synchronize(ctx.device)
    elapsed = time.perf_counter() - begin
    bar.close()
    loss_sum, correct, count, nonfinite = distributed.all_sum(ctx, totals.tolist())
    _check_finite(ctx, epoch, nonfinite, finite_steps, model)
    return {"loss": loss_sum / count, "top1": 100.0 * correct / count, "time_s": elapsed,
            "images_per_s": count / elapsed, "peak_memory_mb": max(distributed.gather(ctx, peak_memory_mb(ctx.device)))}


def _check_finite(ctx: distributed.Context, epoch: int, nonfinite: float, finite_steps: list[torch.Tensor],
                  model: nn.Module) -> None:
    """Stop the run (``TrainingDiverged``) when a step's loss on any process (``nonfinite``: their
    count over all processes), or the weights after the epoch, are not finite: saving the epoch
    would overwrite the last good state, and its weights are worthless."""
    kept = f"the state after epoch {epoch} is kept" if epoch else "no epoch had finished"
    advice = "lower train.optimizer.lr or set train.grad_clip"
    if nonfinite:
        local = torch.stack(finite_steps).logical_not().nonzero().flatten().tolist()
        step = min(distributed.gather(ctx, local[0] if local else len(finite_steps)))
        raise TrainingDiverged(f"epoch {epoch + 1}, step {step + 1} of {len(finite_steps)}: the training loss is not "
                               f"finite (nan or inf); stopped without saving this epoch or exporting a checkpoint "
                               f"({kept}); {advice}")
    floats = [t for t in model.state_dict().values() if t.is_floating_point()]
    if floats and not bool(torch.stack([torch.isfinite(t).all() for t in floats]).all()):
        raise TrainingDiverged(f"epoch {epoch + 1}, step {len(finite_steps)} of {len(finite_steps)}: the weights are "
                               f"not finite after the step; stopped without saving this epoch or exporting a "
                               f"checkpoint ({kept}); {advice}")


def _save(out: Path, recipe: Recipe, ctx: distributed.Context, epochs_done: int, model: nn.Module,
          optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, generator: torch.Generator,
          ema: WeightEMA | None) -> None:
    rngs = distributed.gather(ctx, capture_rng(ctx.device))
    if ctx.main:
        save_state(out, {"epoch": epochs_done, "world": ctx.world, "recipe": recipe.to_dict(),
                         "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                         "ema": None if ema is None else ema.state_dict(),
                         "data_generator": generator.get_state(), "rng": rngs})
    distributed.barrier(ctx)


# Recipe fields that act only after training: a resumed run, or one converted from another
# (--convert-from), may differ from the run in them.
CONVERSION_FIELDS = ("name", "method", "source", "convert")


def _restore(state: dict[str, Any], recipe: Recipe, ctx: distributed.Context, model: nn.Module,
             optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, generator: torch.Generator,
             ema: WeightEMA | None, out: Path, may_differ: tuple[str, ...] = ()) -> int:
    """Load a run's state (fields checked by ``load_run_state``) into this run's objects; a value
    that does not fit them is a StateError naming the file and the field."""
    where = out / STATE_FILE
    later = _keywords_added_since(state["recipe"], recipe, model)
    differ = [d for d in _differences(state["recipe"], recipe.to_dict())
              if d.split(".")[0] not in may_differ and d not in later]
    if differ:
        raise StateError(f"{where}: the run was started with another recipe; differing field(s): {', '.join(differ)}")
    if state["world"] != ctx.world:
        raise StateError(f"{where}: the run used {state['world']} process(es), this one has {ctx.world}; "
                         "resume with the same number so that the data order stays the same")
    if state["epoch"] > recipe.train.epochs:
        raise StateError(f"{where}: field 'epoch' is {state['epoch']}, beyond the recipe's {recipe.train.epochs} epochs")
    if (ema is None) != (state["ema"] is None):
        raise StateError(f"{where}: field 'ema' must be {'null' if ema is None else 'a weight average'} for this recipe")
    loaders: dict[str, Callable[[Any], Any]] = {
        "model": model.load_state_dict, "optimizer": optimizer.load_state_dict, "scaler": scaler.load_state_dict,
        "data_generator": generator.set_state, "ema": ema.load_state_dict if ema is not None else lambda _: None,
        "rng": lambda rngs: restore_rng(rngs[ctx.rank], ctx.device)}
    for name, load in loaders.items():
        try:
            load(state[name])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as error:
            message = " ".join(str(error).split())[:500]
            raise StateError(f"{where}: field {name!r} does not fit this run ({type(error).__name__}: {message})") from None
    return state["epoch"]


def _keywords_added_since(saved: dict[str, Any], recipe: Recipe, model: nn.Module) -> set[str]:
    """The ``model.kwargs`` fields this recipe writes and the saved run's did not, whose values
    are what the saved run's architecture took by default: keywords an architecture gained after
    the run started. They leave the graph as it was, so the run still resumes."""
    kwargs = saved.get("model", {}).get("kwargs")
    added = [key for key in recipe.model.kwargs if isinstance(kwargs, dict) and key not in kwargs]
    if not added:
        return set()
    try:
        then = build_architecture(recipe.model.arch, **kwargs).arch_kwargs
    except (TypeError, ValueError):
        return set()
    return {f"model.kwargs.{key}" for key in added if key in then and then[key] == model.arch_kwargs.get(key)}


def _differences(saved: Any, current: Any, path: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        keys = list(dict.fromkeys([*saved, *current]))
        return [d for k in keys for d in _differences(saved.get(k), current.get(k), f"{path}.{k}" if path else k)]
    return [] if saved == current else [path]
