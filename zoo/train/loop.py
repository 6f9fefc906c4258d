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
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..convert import convert_trained
from ..registry import create_model
from . import distributed
from .data import alternating_flips, build_splits, epoch_plan
from .ema import WeightEMA
from .evaluate import autocast, evaluate
from .export import export_checkpoint
from .log import MetricsLog, peak_memory_mb, reset_peak_memory
from .losses import loss_fn
from .optim import build_optimizer, lr_at, set_lr
from .recipe import Recipe
from .state import StateError, capture_rng, load_state, restore_rng, save_state, seed_everything


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
    early by ``stop_after`` (a number of completed epochs; the state is saved, ``resume`` goes on).

    ``convert_from``: instead of training, take the finished run in that folder, trained by this
    recipe but for its ``name``, ``method``, ``source`` and ``convert`` fields, and convert and export
    its weights as this recipe says (one trained ANN twin published as IF and as multi-bit spikes;
    the checkpoint's training log and cost are the source run's).

    ``recipe_file`` and ``overrides`` are recorded in the checkpoint config so that the run can be
    repeated with ``zoo train FILE --set ...``.
    """
    if convert_from is not None and resume:
        raise StateError("--convert-from takes a finished run; --resume continues this one: give one of them")
    ctx = distributed.setup(device)
    try:
        with determinism(recipe.deterministic, ctx.device):
            return _run(recipe, Path(out), ctx, recipe_file=recipe_file, overrides=list(overrides or []), resume=resume,
                        stop_after=stop_after, backend=backend, data_root=data_root, progress=progress,
                        convert_from=None if convert_from is None else Path(convert_from))
    finally:
        distributed.teardown(ctx)


def _run(recipe: Recipe, out: Path, ctx: distributed.Context, *, recipe_file: str | None, overrides: list[str],
         resume: bool, stop_after: int | None, backend: str, data_root: str | None, progress: bool,
         convert_from: Path | None) -> Path | None:
    train_cfg = recipe.train
    seed_everything(recipe.seed)
    model = create_model(recipe.model.arch, backend=backend, **recipe.model.kwargs).to(ctx.device)
    if train_cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    seed_everything(recipe.seed + ctx.rank)
    train_split, test_split, train_set = build_splits(recipe.data, ctx, data_root)
    optimizer = build_optimizer(model.parameters(), train_cfg.optimizer)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=train_cfg.precision == "fp16")
    generator = torch.Generator().manual_seed(recipe.seed)
    ema = WeightEMA(model, train_cfg.ema.decay) if train_cfg.ema is not None else None

    start = 0
    if (out / "train_state.safetensors").exists() and not resume:
        raise StateError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if resume:
        start = _restore(load_state(out), recipe, ctx, model, optimizer, scaler, generator, ema, out)
    elif convert_from is not None:
        start = _restore(load_state(convert_from), recipe, ctx, model, optimizer, scaler, generator, ema, convert_from,
                         may_differ=CONVERSION_FIELDS)
        if start != train_cfg.epochs:
            raise StateError(f"{convert_from / 'train_state.safetensors'}: the run has finished {start} of its "
                             f"{train_cfg.epochs} epochs; convert it once it has finished")
        if ctx.main:
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(convert_from / "log.csv", out / "log.csv")  # the training that the checkpoint reports

    net: nn.Module = PerStepLogits(model)
    if ctx.distributed:
        net = DistributedDataParallel(net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    if train_cfg.compile:
        net = torch.compile(net)
    log = MetricsLog(out, tensorboard=True) if ctx.main else None
    if log is not None:
        log.start(start)

    def test(network: nn.Module) -> dict[str, float]:
        return evaluate(network, test_split.eval_batches(recipe.data.eval_batch_size, ctx), ctx, train_cfg.precision)

    end = train_cfg.epochs if stop_after is None else min(stop_after, train_cfg.epochs)
    final_eval: dict[str, float] | None = None
    for epoch in range(start, end):
        lr = lr_at(train_cfg.schedule, train_cfg.optimizer.lr, epoch, train_cfg.epochs)
        set_lr(optimizer, lr)
        stats = _train_epoch(net, model, optimizer, scaler, ema, train_split, recipe, ctx, generator, epoch, progress)
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
        _save(out, recipe, ctx, epoch + 1, model, optimizer, scaler, generator, ema)
    if end < train_cfg.epochs:
        if log is not None:
            log.close()
        return None
    distributed.check_replicas(ctx, model)
    model = trained(model, ema)
    if final_eval is None:  # resumed after the last epoch
        final_eval = test(model)
    conversion = None
    if recipe.convert is not None:
        model, conversion = convert_trained(model, recipe.model.arch, recipe.convert, lambda network: test(network)["top1"],
                                            source_top1=final_eval["top1"])
    result = None
    if log is not None:
        result = export_checkpoint(model, recipe, out, train_set, ctx, log.rows(), final_eval, conversion,
                                   recipe_file=recipe_file, overrides=overrides)
        log.close()
    distributed.barrier(ctx)
    return result


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
    totals = torch.zeros(3, dtype=torch.float64, device=ctx.device)
    bar = tqdm(total=plan.steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step", leave=False,
               disable=not (progress and ctx.main))
    begin = time.perf_counter()
    for micro in split.train_batches(plan, recipe.data.augment, generator):
        optimizer.zero_grad(set_to_none=True)
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
                correct = (logits.float().mean(0).argmax(1) == y).sum()
                totals += torch.stack([loss.detach().double() * y.numel(), correct.double(),
                                       torch.tensor(float(y.numel()), dtype=torch.float64, device=ctx.device)])
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
    loss_sum, correct, count = distributed.all_sum(ctx, totals.tolist())
    return {"loss": loss_sum / count, "top1": 100.0 * correct / count, "time_s": elapsed,
            "images_per_s": count / elapsed, "peak_memory_mb": max(distributed.gather(ctx, peak_memory_mb(ctx.device)))}


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


# Recipe fields in which a run converted from another (--convert-from) may differ from it.
CONVERSION_FIELDS = ("name", "method", "source", "convert")


def _restore(state: dict[str, Any], recipe: Recipe, ctx: distributed.Context, model: nn.Module,
             optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, generator: torch.Generator,
             ema: WeightEMA | None, out: Path, may_differ: tuple[str, ...] = ()) -> int:
    where = out / "train_state.safetensors"
    differ = [d for d in _differences(state["recipe"], recipe.to_dict()) if d.split(".")[0] not in may_differ]
    if differ:
        raise StateError(f"{where}: the run was started with another recipe; differing field(s): {', '.join(differ)}")
    if state["world"] != ctx.world:
        raise StateError(f"{where}: the run used {state['world']} process(es), this one has {ctx.world}; "
                         "resume with the same number so that the data order stays the same")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    generator.set_state(state["data_generator"])
    if ema is not None:
        ema.load_state_dict(state["ema"])
    restore_rng(state["rng"][ctx.rank], ctx.device)
    return int(state["epoch"])


def _differences(saved: Any, current: Any, path: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        keys = list(dict.fromkeys([*saved, *current]))
        return [d for k in keys for d in _differences(saved.get(k), current.get(k), f"{path}.{k}" if path else k)]
    return [] if saved == current else [path]
