#!/usr/bin/env python
"""The training step of each spiking route against the same graph as a ReLU ANN, at CIFAR shape.

    python benchmarks/training_routes.py                         # both graphs, B = 128, 3x32x32
    python benchmarks/training_routes.py --graphs resnet20_16 --repeats 3 --quick
    python benchmarks/training_routes.py --set methods       # MLF, InfLoR, multi-bit at 32-64-128

One graph, every activation slot filled in turn (``zoo.create_model(arch, neuron=...)``): ReLU
(the ANN anchor), the QCFS twin (T = 1, the ANN side of conversion), the noisy IF of noise-based
T = 1 training, and LIF trained by BPTT at T = 2 and 4 (fused CPU kernel). Each row is one SGD
step (momentum 0.9, cross-entropy, channels-last input) on the same fixed batch; the rows take
turns (round robin, ``--repeats`` rounds of ``--steps`` steps after ``--warmup`` untimed steps), so
machine load hits every row alike, and the median round is reported with its ratio to the ReLU
row. Two clocks: wall time, and the process's CPU time (user + system, all threads), which other
processes sharing the cores do not inflate (with ``--threads 1`` it is the step's own time). The
targets (issue "CIFAR-10 SNNs of the zoo's flagship families"): T = 1 routes at most 1.15x ReLU,
BPTT at T steps below T times ReLU. ``--note`` adds a line on the conditions (cores, load) to the
results.

Allocator. A step frees hundreds of MB of activations that the next step allocates again. With
glibc's defaults every block above the mmap threshold is a fresh mapping whose pages fault in and
are zeroed on first touch; ``zoo/allocator.py`` keeps them instead. Both figures are reported: the
script runs the same measurement in two child processes, ``plain`` (the environment a user's own
Python process has) and ``zoo`` (``import zoo`` applies the allocator settings in-process, as
``zoo train`` does), and the table has one column of each.

Graphs: ``resnet20_16``: ``spiking_resnet20`` at widths 16-32-64 (the ResNet-20 of He et al.;
tdBN in the blocks); ``vgg7``: ``spiking_vgg7`` (64-256-256, plain BN); for ``--set methods``,
``ds_resnet20`` (MLF) and ``spiking_resnet20`` (InfLoR, multi-bit with and without
re-stimulation) at 32-64-128, each against the same graph with ReLU. Writes
``benchmarks/results/training_{set}_cpu.{csv,md}`` atomically; ``--quick`` writes ``..._quick``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GRAPHS = {
    "resnet20_16": ("spiking_resnet20", {"widths": [16, 32, 64]}),
    "vgg7": ("spiking_vgg7", {}),
    "resnet20_w32": ("spiking_resnet20", {"widths": [32, 64, 128]}),
    "ds_resnet20_w32": ("ds_resnet20", {"widths": [32, 64, 128]}),
}
RELU = ("ReLU ANN (anchor)", "relu", 1)
ROUTES = [  # (label, neuron spec, T[, restim])
    RELU,
    ("QCFS twin, T=1", "qcfs(levels=7)", 1),
    ("noisy IF, T=1", "noisy_if", 1),
    ("LIF BPTT, T=2", "lif", 2),
    ("LIF BPTT, T=4", "lif", 4),
]
MLF = "mlf(levels=3, v_th=0.6, tau=0.25, width=1.0)"  # recipes/mlf_ds_resnet20_cifar10_t4.yaml
INFLOR, MULTIBIT = "srif(mpr=true)", "multibit(m=2, n=0)"
SETS = {  # route set -> {graph: routes}
    "routes": {"resnet20_16": ROUTES, "vgg7": ROUTES},
    # the directly trained methods (issue "CIFAR-10 checkpoints of the directly trained methods"),
    # each on the graph its recipes use, at the CPU width 32-64-128, against that graph with ReLU
    "methods": {  # each chain's two stages (recipes/*_cifar10_t1.yaml, then BPTT from its weights)
        "ds_resnet20_w32": [RELU, ("MLF (K=3), T=1", MLF, 1), ("MLF (K=3), T=4", MLF, 4)],
        "resnet20_w32": [RELU,
                         ("InfLoR SRIF+MPR, T=1", INFLOR, 1), ("InfLoR SRIF+MPR, T=2", INFLOR, 2),
                         ("2-bit spikes, re-stimulation, T=1", MULTIBIT, 1, True),
                         ("2-bit spikes, re-stimulation, T=2", MULTIBIT, 2, True),
                         ("2-bit spikes, no re-stimulation, T=1", MULTIBIT, 1),
                         ("2-bit spikes, no re-stimulation, T=2", MULTIBIT, 2)],
    },
}


def measure(args: argparse.Namespace) -> list[dict]:
    """The child: time every route of every graph in this process; rows as JSON-able dicts."""
    import torch

    from benchmarks.neuron_speed import cpu_peak_bytes
    from zoo import create_model

    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 3, 32, 32, generator=gen).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,), generator=gen)

    class Row:
        def __init__(self, graph: str, label: str, neuron: str, T: int, restim: bool = False) -> None:
            arch, kwargs = GRAPHS[graph]
            kwargs = {**kwargs, "restim": True} if restim else kwargs
            torch.manual_seed(0)
            self.key = dict(graph=graph, route=label, neuron=neuron, T=T)
            self.model = create_model(arch, neuron=neuron, T=T, **kwargs).to(memory_format=torch.channels_last).train()
            self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
            self.wall: list[float] = []
            self.cpu: list[float] = []

        def step(self) -> None:
            self.opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(self.model(x), y).backward()
            self.opt.step()

        def timed(self, steps: int) -> None:
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                self.step()
            self.wall.append((time.perf_counter() - wall) / steps)
            self.cpu.append((time.process_time() - cpu) / steps)

    rows = [Row(g, *route) for g in args.graphs for route in SETS[args.set][g]]
    for row in rows:
        for _ in range(args.warmup):
            row.step()
    for _ in range(args.repeats):
        for row in rows:
            row.timed(args.steps)
    out = []
    for row in rows:
        row.opt.zero_grad(set_to_none=True)
        out.append({**row.key, "step_ms": 1000 * statistics.median(row.wall),
                    "cpu_ms": 1000 * statistics.median(row.cpu), "peak_mb": cpu_peak_bytes(row.step) / 2**20})
    return out


def child(args: argparse.Namespace, allocator: str) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["ZOO_ALLOCATOR"] = "default" if allocator == "plain" else "keep"
    command = [sys.executable, __file__, "--child", *sys.argv[1:]]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the {allocator} child failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", default="routes", choices=list(SETS),
                   help="routes: every route on resnet20_16 and vgg7; methods: the directly trained methods")
    p.add_argument("--graphs", nargs="+", default=None, choices=list(GRAPHS), help="(default: the set's graphs)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="a smoke run: B = 8, one round")
    p.add_argument("--note", default="", help="the conditions of the run (cores, other load), written to the results")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.batch, args.repeats, args.steps, args.warmup = 8, 1, 1, 1
    args.graphs = args.graphs or list(SETS[args.set])
    if unknown := [g for g in args.graphs if g not in SETS[args.set]]:
        p.error(f"--graphs {' '.join(unknown)}: not in the set {args.set!r} ({', '.join(SETS[args.set])})")
    sys.path.insert(0, str(ROOT))
    if args.child:
        import zoo  # noqa: F401  (applies or skips the allocator settings, by ZOO_ALLOCATOR)

        print(json.dumps(measure(args)))
        return 0

    from zoo.checkpoint import write_atomic
    from zoo.machine import describe_device

    import torch

    results = {mode: child(args, mode) for mode in ("plain", "zoo")}
    rows = []
    for i, plain in enumerate(results["plain"]):
        kept = results["zoo"][i]
        anchor = {m: next(r for r in results[m] if r["graph"] == plain["graph"] and r["neuron"] == "relu")
                  for m in results}
        row = {"graph": plain["graph"], "route": plain["route"], "T": plain["T"]}
        for mode, result in (("zoo", kept), ("plain", plain)):
            row[f"step_ms_{mode}"] = round(result["step_ms"], 1)
            row[f"vs_relu_{mode}"] = round(result["step_ms"] / anchor[mode]["step_ms"], 3)
            row[f"cpu_vs_relu_{mode}"] = round(result["cpu_ms"] / anchor[mode]["cpu_ms"], 3)
        rows.append({**row, "peak_mb": round(kept["peak_mb"], 1)})
    name = f"training_{args.set}_cpu" + ("_quick" if args.quick else "")
    out = ROOT / "benchmarks" / "results"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(out / f"{name}.csv", buf.getvalue())
    command = " ".join(["python benchmarks/training_routes.py", *map(shlex.quote, sys.argv[1:])])
    threads = args.threads or torch.get_num_threads()
    title = {"routes": "route", "methods": "directly trained method"}[args.set]
    md = [f"# Training step per {title}, same graph, against its ReLU ANN\n\n"
          f"device: {describe_device(torch.device('cpu'))}, {threads} threads, torch {torch.__version__}; "
          f"batch {args.batch} x 3x32x32, SGD, median of {args.repeats} rounds of {args.steps} steps."
          + (f" {args.note}" if args.note else "") + "\n\n"
          f"Reproduce: `{command}`\n\n"
          "`zoo`: a process that imported zoo (allocator settings applied in-process); `plain`: glibc's "
          "defaults. `step_ms`: wall time of a step; `vs_relu`: step time / the ReLU row's step time in the "
          "same process; `cpu_vs_relu`: the same ratio of process CPU time (user + system), which other "
          "processes on the cores do not inflate. `peak_mb`: peak memory of one step above the model and "
          "its input (zoo process).\n",
          "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    md += ["| " + " | ".join(str(v) for v in r.values()) + " |" for r in rows]
    write_atomic(out / f"{name}.md", "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
