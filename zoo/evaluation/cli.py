"""``zoo eval`` and ``zoo leaderboard``: the command lines of the evaluation harness.

    zoo eval spiking_convnet.mlf_mnist_t4_c32 --dataset mnist --T 1,2,4,8 --batch-size 256
    zoo eval path/to/checkpoint/ --limit 1000 --device cpu
    zoo leaderboard

A user error (a bad argument, a checkpoint or data set that cannot be read, an unsafe name, a
damaged record, a results folder that cannot be written) prints one line naming the file or
argument and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from . import energy, harness, leaderboard


def add_parser(commands) -> None:
    p = commands.add_parser("eval", help="evaluate a checkpoint: accuracy, firing, SOPs, energy, speed",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="checkpoint: arch.tag (published) or a checkpoint folder")
    p.add_argument("--dataset", default=None, help="zoo.data name (default: the dataset it was trained on)")
    p.add_argument("--split", default="test")
    p.add_argument("--data-dir", default=None, help="data root (default: $ZOO_DATA_DIR)")
    p.add_argument("--T", type=_time_steps, default=None, help="time steps, or a sweep 1,2,4,8 (default: the checkpoint's T)")
    p.add_argument("--batch-size", type=_at_least(1), default=128)
    p.add_argument("--limit", type=_at_least(1), default=None, help="evaluate the first N samples only")
    p.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available)")
    p.add_argument("--out", default=str(harness.DEFAULT_RESULTS), help="results folder (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="recompute records that already exist")
    p.add_argument("--seed", type=_at_least(0), default=0)
    p.add_argument("--workers", type=_at_least(0), default=0, help="DataLoader worker processes")
    p.add_argument("--timing-batches", type=_at_least(0), default=10, help="batches timed for latency/throughput")
    p.add_argument("--write-checkpoint", action="store_true",
                   help="also store the records in the checkpoint folder's config.json (metrics.evaluations)")
    p.add_argument("--layers", action="store_true", help="print the per-layer firing and operation tables")
    p.set_defaults(run=_one_line_errors(run_eval, "zoo eval"))

    p = commands.add_parser("leaderboard", help="regenerate the results CSVs, leaderboard.md and plots")
    p.add_argument("--results", default=str(harness.DEFAULT_RESULTS), help="records folder (default: %(default)s)")
    p.add_argument("--out", default=str(harness.DEFAULT_RESULTS.parent),
                   help="folder for leaderboard.md and plots/ (default: %(default)s)")
    p.add_argument("--references", default=None, help="published results CSV (default: OUT/references.csv)")
    p.set_defaults(run=_one_line_errors(run_leaderboard, "zoo leaderboard"))


def _one_line_errors(command: Callable[[argparse.Namespace], int], prog: str) -> Callable[[argparse.Namespace], int]:
    """``command`` with its user errors printed as one line and exit status 2. The zoo's errors
    about input (checkpoint, config, record, name, data format) are all ValueErrors; missing data
    is a FileNotFoundError of its own, and a folder that cannot be written an OSError."""
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (ValueError, OSError) as error:
            print(f"{prog}: {' '.join(str(error).split())}", file=sys.stderr)
            return 2
    return run


def _at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value
    return parse


def _time_steps(text: str) -> list[int]:
    try:
        steps = [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--T takes an integer or a comma-separated list, got {text!r}") from None
    if any(t < 1 for t in steps):
        raise argparse.ArgumentTypeError(f"--T values must be positive, got {text!r}")
    return steps


def run_eval(args: argparse.Namespace) -> int:
    results = harness.evaluate_checkpoint(
        args.model, args.dataset, Ts=args.T, split=args.split, data_dir=args.data_dir, batch_size=args.batch_size,
        results=args.out, limit=args.limit, device=args.device, force=args.force, seed=args.seed,
        workers=args.workers, timing_batches=args.timing_batches, write_checkpoint=args.write_checkpoint)
    print(format_results(results, layers=args.layers))
    print(f"records in {Path(args.out) / results[0]['dataset']}/")
    return 0


def run_leaderboard(args: argparse.Namespace) -> int:
    for path in leaderboard.build(args.results, args.out, args.references):
        print(path)
    return 0


SUMMARY = (("T", "{}"), ("top1", "{:.2f}"), ("top5", "{:.2f}"), ("firing_rate", "{:.4f}"),
           ("sops_per_sample", "{:.4g}"), ("macs_per_sample", "{:.4g}"), ("energy_uj_per_sample", "{:.4g}"),
           ("latency_ms", "{:.1f}"), ("throughput_samples_per_s", "{:.1f}"), ("peak_memory_mb", "{:.0f}"))


def format_results(results: list[dict[str, Any]], layers: bool = False) -> str:
    """A plain-text table of the records (one row per T), and optionally of their layers."""
    first = results[0]
    lines = [f"{first['model']} on {first['dataset']}/{first['split']} ({first['samples']} samples), "
             f"{first['params']:,} parameters, {first['device']}",
             _table([key for key, _ in SUMMARY],
                    [[_cell(r[key], fmt) for key, fmt in SUMMARY] for r in results]),
             energy.NOTE]
    if layers:
        for r in results:
            lines.append(f"\nT={r['T']} neuron layers")
            lines.append(_table(["layer", "neurons", "rate", "value/event", "bits/spike"],
                                [[n["name"], str(n["neurons"]), f"{n['firing_rate']:.4f}",
                                  f"{n['mean_event_value']:.3f}", str(n["bits_per_spike"])]
                                 for n in r["neuron_layers"]]))
            lines.append(f"T={r['T']} synaptic layers")
            lines.append(_table(["layer", "input", "ACs/sample", "MACs/sample", "input event rate"],
                                [[s["name"], s["input"], f"{s['acs_per_sample']:.4g}", f"{s['macs_per_sample']:.4g}",
                                  f"{s['input_event_rate']:.4f}"] for s in r["synaptic_layers"]]))
    return "\n".join(lines)


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)
