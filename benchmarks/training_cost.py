#!/usr/bin/env python
"""Training cost of the zoo's recipes side by side: time per optimizer step and peak memory, in
one process, on the same batch, with the recipes' own models, optimizers and losses.

    python benchmarks/training_cost.py                     # the equal-budget Fashion-MNIST recipes
    python benchmarks/training_cost.py --threads 2 --repeats 7
    python benchmarks/training_cost.py recipes/a.yaml recipes/b.yaml --reference recipes/a.yaml

It answers the cost question of the noise paper (Jiang & Zhang 2023, methods.md section 4): how
much less does training at T = 1 cost than BPTT at T = 4 for the same network and epochs (the
paper claims 65-75 % less). The ``vs_reference_pct`` column is ``1 - time / reference time`` per
optimizer step, training steps only: the recipes share batch size and data, so it is also the
saving on the training steps of an epoch, while per-epoch evaluation, augmentation and the
one-off conversion sweeps are not counted (the cards' "Training (measured)" sections have the
whole runs' wall time).

Method: each recipe's model (``recipe.model``), optimizer (``recipe.train.optimizer``) and loss
(``recipe.train.loss``) are built as ``zoo train`` builds them and run under its determinism
setting and precision, fed the same fixed batch of ``recipe.train.batch_size`` random images of
the recipe's input size (static-image recipes without accumulation, clipping, channels-last,
compile or fp16; others are refused rather than timed differently from ``zoo train``). Recipe
paths are relative to the working directory: run it from the repository root. The recipes take turns
(round robin, ``--repeats`` rounds of ``--steps`` optimizer steps after ``--warmup`` untimed
steps each), so a change in machine load hits every row alike; the median round is reported.
Peak memory of one step above what existed before it: CPU from torch.profiler memory events
(``neuron_speed.cpu_peak_bytes``), CUDA from ``max_memory_allocated``. Data loading and augmentation are excluded (they are the same for every
recipe). Like ``zoo train``, it runs with glibc told to keep freed memory
(``import zoo`` applies it, ``zoo/allocator.py``); the header records whether it did
(``ZOO_ALLOCATOR=default`` keeps glibc's defaults, to see the difference). Writes
``benchmarks/results/training_cost_<device>.{csv,md}`` atomically.
"""

from __future__ import annotations

import argparse
import csv
import io
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.neuron_speed import cpu_peak_bytes  # noqa: E402
import zoo  # noqa: E402
from zoo.checkpoint import write_atomic  # noqa: E402
from zoo.machine import describe_device  # noqa: E402
from zoo import create_model  # noqa: E402
from zoo.train.evaluate import autocast  # noqa: E402
from zoo.train.loop import PerStepLogits, determinism  # noqa: E402
from zoo.train.losses import loss_fn  # noqa: E402
from zoo.train.optim import build_optimizer  # noqa: E402
from zoo.train.recipe import Recipe, load_recipe  # noqa: E402

EQUAL_BUDGET = [
    "recipes/lif_spiking_convnet_fashion_mnist_t4_c32.yaml",
    "recipes/mlf_spiking_convnet_fashion_mnist_t4_c32.yaml",
    "recipes/inflor_spiking_convnet_fashion_mnist_t4_c32.yaml",
    "recipes/multibit_spiking_convnet_fashion_mnist_t4_c32.yaml",
    "recipes/multibit_converted_convnet_qcfs_fashion_mnist_t1_c32.yaml",
    "recipes/if_converted_convnet_qcfs_fashion_mnist_t4_c32.yaml",
    "recipes/noise_spiking_convnet_fashion_mnist_t1_c32.yaml",
]


class Run:
    """One recipe's training step on a fixed batch."""

    def __init__(self, path: str, device: torch.device, seed: int) -> None:
        self.path, self.device = path, device
        self.recipe: Recipe = load_recipe(path)
        cfg = self.recipe.train
        if self.recipe.data.pipeline != "device" or cfg.accumulation != 1 or cfg.grad_clip is not None \
                or cfg.channels_last or cfg.compile or cfg.precision == "fp16":
            raise SystemExit(f"{path}: only static-image recipes without accumulation, grad_clip, channels_last, "
                             "compile or fp16 are timed here")
        torch.manual_seed(seed)
        self.model = create_model(self.recipe.model.arch, **self.recipe.model.kwargs).to(device)
        self.net = PerStepLogits(self.model).train()
        self.optimizer = build_optimizer(self.model.parameters(), cfg.optimizer)
        batch = torch.Generator().manual_seed(seed)  # the same batch for every recipe of one input size
        c, h, w = self.model.default_input_size
        self.x = torch.rand(cfg.batch_size, c, h, w, generator=batch).to(device)
        self.y = torch.randint(0, self.model.num_classes, (cfg.batch_size,), generator=batch).to(device)
        self.times: list[float] = []

    def step(self) -> None:
        cfg = self.recipe.train
        self.optimizer.zero_grad(set_to_none=True)
        with determinism(self.recipe.deterministic, self.device), autocast(self.device, cfg.precision):
            logits = self.net(self.x)
        loss = loss_fn(cfg.loss, logits, self.y, cfg.label_smoothing)
        loss.backward()
        self.optimizer.step()

    def timed(self, steps: int, device: torch.device) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        begin = time.perf_counter()
        for _ in range(steps):
            self.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - begin) / steps

    def peak_memory_mb(self, device: torch.device) -> float:
        """Peak above the model, its optimizer state and the input (gradients freed first)."""
        self.optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            self.step()
            return (torch.cuda.max_memory_allocated(device) - before) / 2**20
        return cpu_peak_bytes(self.step) / 2**20


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("recipes", nargs="*", default=EQUAL_BUDGET)
    p.add_argument("--reference", default=EQUAL_BUDGET[0], help="the row the others are compared with")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)
    if args.reference not in args.recipes:
        p.error(f"--reference {args.reference} is not among the recipes")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    runs = [Run(path, device, args.seed) for path in args.recipes]
    for run in runs:
        for _ in range(args.warmup):
            run.step()
    for _ in range(args.repeats):
        for run in runs:
            run.times.append(run.timed(args.steps, device))
    reference = statistics.median(next(r for r in runs if r.path == args.reference).times)

    rows = []
    for run in runs:
        step_s = statistics.median(run.times)
        recipe = run.recipe
        rows.append({
            "recipe": Path(run.path).name, "method": recipe.method, "arch": recipe.model.arch,
            "T": run.model.T, "channels": recipe.model.kwargs.get("channels"), "batch": recipe.train.batch_size,
            "step_ms": round(1000 * step_s, 2), "images_per_s": round(recipe.train.batch_size / step_s, 1),
            "vs_reference_pct": round(100 * (1 - step_s / reference), 1),
            "peak_memory_mb": round(run.peak_memory_mb(device), 1),
        })
    where = "cpu" if device.type == "cpu" else "cuda"
    malloc = "freed memory kept (zoo/allocator.py)" if zoo.ALLOCATOR_KEEPS_FREED_MEMORY else "glibc defaults"
    header = (f"device: {describe_device(device)}, torch {torch.__version__}, malloc: {malloc}; median of "
              f"{args.repeats} rounds of {args.steps} steps; reference: {Path(args.reference).name}")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(args.out / f"training_cost_{where}.csv", buf.getvalue())
    cols = list(rows[0])
    command = " ".join(["python benchmarks/training_cost.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    md = [f"# Training cost per optimizer step\n\n{header}\n\nReproduce: `{command}`"
          "\n\n`vs_reference_pct` = 1 - step time / reference step time (positive = cheaper).\n",
          "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    write_atomic(args.out / f"training_cost_{where}.md", "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
