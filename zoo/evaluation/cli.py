"""``zoo eval`` and ``zoo leaderboard``: the command lines of the evaluation harness.

    zoo eval spiking_convnet.mlf_mnist_t4_c32 --dataset mnist --T 1,2,4,8 --batch-size 256
    zoo eval path/to/checkpoint/ --limit 1000 --device cpu
    zoo leaderboard

A user error (an unknown checkpoint, architecture or data set, with the closest names; a missing
checkpoint, data or records folder; a checkpoint or data file that cannot be read; an unsafe name;
a damaged record; a results folder that cannot be written; a --T, --device or other option out of
range) prints one line naming the file or argument and what was expected, and exits with status 2.

``--force`` measures a stored record again; the record file is rewritten only where a result
differs (``zoo.evaluation.records.remeasured``): the same results leave it as it is, with the
timing of the machine that measured it, and this run's timing is printed.

Beside the zoo's SOPs and energy, every record holds NeuroBench's metrics under their names
(Footprint, ConnectionSparsity, ActivationSparsity, SynapticOperations as Effective_MACs,
Effective_ACs and Dense, MembraneUpdates); ``zoo.evaluation.neurobench`` gives the definitions and
where they differ from the zoo's counts.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..cli import at_least, data_dir_hint, one_line_errors
from ..config import MAX_T
from . import DEFAULT_RESULTS, energy


def add_parser(commands) -> None:
    p = commands.add_parser("eval", help="evaluate a checkpoint: accuracy, firing, SOPs, energy, NeuroBench metrics, speed",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="checkpoint: arch.tag (published) or a checkpoint folder")
    p.add_argument("--dataset", default=None, help="zoo.data name (default: the dataset it was trained on)")
    p.add_argument("--split", default="test")
    p.add_argument("--data-dir", default=None, help="data root (default: $ZOO_DATA_DIR)")
    p.add_argument("--T", type=_time_steps, default=None, help="time steps, or a sweep 1,2,4,8 (default: the checkpoint's T)")
    p.add_argument("--batch-size", type=at_least(1), default=128)
    p.add_argument("--limit", type=at_least(1), default=None, help="evaluate the first N samples only")
    p.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available)")
    p.add_argument("--out", default=str(DEFAULT_RESULTS), help="results folder (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="recompute records that already exist")
    p.add_argument("--seed", type=at_least(0), default=0)
    p.add_argument("--workers", type=at_least(0), default=0, help="DataLoader worker processes")
    p.add_argument("--timing-batches", type=at_least(0), default=10, help="batches timed for latency/throughput")
    p.add_argument("--write-checkpoint", action="store_true",
                   help="also store the records in the checkpoint folder's config.json (metrics.evaluations)")
    p.add_argument("--layers", action="store_true", help="print the per-layer firing and operation tables")
    p.set_defaults(run=one_line_errors(run_eval, "zoo eval", data_dir_hint))

    p = commands.add_parser("leaderboard", help="regenerate the results CSVs, leaderboard.md and plots",
                            description="Regenerate the leaderboard from the records `zoo eval` wrote (nothing is "
                                        "measured): RESULTS/<dataset>.csv, OUT/leaderboard.md (the zoo's and "
                                        "NeuroBench's metrics per data set, the papers' numbers from REFERENCES "
                                        "beside them) and OUT/plots/ (accuracy against energy with the Pareto front, "
                                        "accuracy against T, firing rate per layer).")
    p.add_argument("--results", default=str(DEFAULT_RESULTS), help="records folder (default: %(default)s)")
    p.add_argument("--out", default=str(DEFAULT_RESULTS.parent),
                   help="folder for leaderboard.md and plots/ (default: %(default)s)")
    p.add_argument("--references", default=None, help="published results CSV (default: OUT/references.csv)")
    p.set_defaults(run=one_line_errors(run_leaderboard, "zoo leaderboard"))


def _time_steps(text: str) -> list[int]:
    try:
        steps = [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--T takes an integer or a comma-separated list, got {text!r}") from None
    if any(not 1 <= t <= MAX_T for t in steps):
        raise argparse.ArgumentTypeError(f"--T values must be from 1 to {MAX_T}, got {text!r}")
    return steps


def run_eval(args: argparse.Namespace) -> int:
    _check_model_name(args.model)
    _check_device(args.device)
    from . import harness

    results = harness.evaluate_checkpoint(
        args.model, args.dataset, Ts=args.T, split=args.split, data_dir=args.data_dir, batch_size=args.batch_size,
        results=args.out, limit=args.limit, device=args.device, force=args.force, seed=args.seed,
        workers=args.workers, timing_batches=args.timing_batches, write_checkpoint=args.write_checkpoint)
    print(format_results(results, layers=args.layers))
    print(f"records in {Path(args.out) / results[0]['dataset']}/")
    return 0


def _check_model_name(name: str) -> None:
    """An ``arch.tag`` or ``arch`` that is not a folder must be a published checkpoint (or an
    architecture that has one): checked from the registry file before PyTorch is imported, with the
    closest names in the error."""
    from zoo import catalog
    from zoo.names import no_such_folder
    from zoo.suggest import unknown

    if Path(name).exists() or name.startswith("hf-hub:"):
        return
    if "/" in name:
        raise ValueError(no_such_folder(name))
    listing = "`zoo list --pretrained` shows every published checkpoint"
    published = catalog.published()
    arch = name.partition(".")[0]
    if arch not in catalog.architectures():
        raise ValueError(unknown("architecture", arch, catalog.architectures(), listing))
    if "." in name and name not in published:
        raise ValueError(unknown("checkpoint", name, published, listing))
    if "." not in name and not any(entry.arch == name for entry in published.values()):
        raise ValueError(f"architecture {name!r} has no published checkpoint to evaluate; pass arch.tag or a "
                         f"checkpoint folder. {listing}")


def _check_device(name: str | None) -> None:
    """``--device`` names a CPU, or a CUDA device this machine has (this imports PyTorch)."""
    if name is None:
        return
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r}: expected cpu, cuda or cuda:N")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                         f"(torch.cuda.is_available() is {torch.cuda.is_available()}); use --device cpu")


def run_leaderboard(args: argparse.Namespace) -> int:
    if not Path(args.results).is_dir():
        raise ValueError(f"--results {args.results}: no such folder; expected the records folder `zoo eval --out` "
                         f"writes ({DEFAULT_RESULTS} by default)")
    from . import leaderboard

    for path in leaderboard.build(args.results, args.out, args.references):
        print(path)
    return 0


SUMMARY = (("T", "{}"), ("top1", "{:.2f}"), ("top5", "{:.2f}"), ("firing_rate", "{:.4f}"),
           ("sops_per_sample", "{:.4g}"), ("macs_per_sample", "{:.4g}"), ("energy_uj_per_sample", "{:.4g}"),
           ("latency_ms", "{:.1f}"), ("throughput_samples_per_s", "{:.1f}"), ("peak_memory_mb", "{:.0f}"))


NEUROBENCH = (("Footprint", "{:,}"), ("ConnectionSparsity", "{:.4f}"), ("ActivationSparsity", "{:.4f}"),
              ("Effective_MACs", "{:.4g}"), ("Effective_ACs", "{:.4g}"), ("Dense", "{:.4g}"),
              ("MembraneUpdates", "{:.4g}"))
NEUROBENCH_NOTE = ("NeuroBench's metrics (per sample where counts; zoo.evaluation.neurobench): a multi-level spike "
                   "counts as a multiply (Effective_MACs), zero weights are skipped, the first layer counts non-zero "
                   "pixels and runs once for T repeated steps; the zoo's SOPs count one AC per event and synapse.")


def format_results(results: list[dict[str, Any]], layers: bool = False) -> str:
    """Plain-text tables of the records (one row per T): the zoo's figures, NeuroBench's, and
    optionally the layers."""
    first = results[0]
    lines = [(f"{first['model']} on {first['dataset']}/{first['split']} ({first['samples']} samples), "
              f"{first['params']:,} parameters, {first['device']}"),
             _table([key for key, _ in SUMMARY],
                    [[_cell(r[key], fmt) for key, fmt in SUMMARY] for r in results]),
             energy.NOTE]
    measured = [r for r in results if r.get("neurobench")]
    if measured:
        lines += ["", _table(["T", *(key for key, _ in NEUROBENCH)],
                             [[str(r["T"]), *(_cell(_neurobench_value(r, key), fmt) for key, fmt in NEUROBENCH)]
                              for r in measured]), NEUROBENCH_NOTE]
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


def _neurobench_value(record: dict[str, Any], key: str) -> Any:
    metrics = record["neurobench"]
    return metrics.get(key, (metrics.get("SynapticOperations") or {}).get(key))


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)
