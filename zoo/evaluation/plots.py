"""Leaderboard figures (matplotlib, Agg backend), written atomically as PNG:

* ``<dataset>_accuracy_vs_T.png``: top-1 against T, one line per model (how ANN->SNN conversion
  and T=1 -> T=N transfer are judged, methods.md sections 3-4);
* ``<dataset>_<model>_firing_rate.png``: firing rate of each neuron layer (in network order), one
  line per evaluated T.

Only full test-split records are plotted; the figures are the same for the same records. File
names are made of the records' data set and model names (checked when records are loaded,
:func:`zoo.evaluation.records.check_record`) and confined to the plots folder.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any

from zoo.checkpoint import write_atomic
from zoo.names import confined


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(records: list[dict[str, Any]], folder: str | Path) -> list[Path]:
    """Write the figures of ``records`` (sorted as :func:`zoo.evaluation.records.load_records`
    sorts them) into ``folder``; returns the files written."""
    folder = Path(folder)
    plotted = [r for r in records if r["split"] == "test" and r["limit"] is None]
    by_dataset: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for record in plotted:
        by_dataset[record["dataset"]][record["model"]].append(record)
    written = []
    for dataset, models in sorted(by_dataset.items()):
        written.append(_accuracy_vs_T(dataset, models, confined(folder, f"{dataset}_accuracy_vs_T.png")))
        for model, runs in sorted(models.items()):
            if any(r["neuron_layers"] for r in runs):
                written.append(_firing_rates(dataset, model, runs, confined(folder, f"{dataset}_{model}_firing_rate.png")))
    return written


def _accuracy_vs_T(dataset: str, models: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ticks = set()
    for model, runs in sorted(models.items()):
        runs = sorted(runs, key=lambda r: r["T"])
        ax.plot([r["T"] for r in runs], [r["top1"] for r in runs], marker="o", label=model)
        ticks.update(r["T"] for r in runs)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(ticks), [str(t) for t in sorted(ticks)])
    ax.set(xlabel="time steps T", ylabel="top-1 accuracy (%)", title=f"{dataset}: accuracy against T")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def _firing_rates(dataset: str, model: str, runs: list[dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    names = [layer["name"] for layer in runs[0]["neuron_layers"]]
    fig, ax = plt.subplots(figsize=(max(6.4, 0.35 * len(names)), 4.2))
    for run in sorted(runs, key=lambda r: r["T"]):
        ax.plot(range(len(names)), [layer["firing_rate"] for layer in run["neuron_layers"]], marker="o",
                label=f"T={run['T']}")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize="x-small")
    ax.set(ylabel="firing rate (events / neuron / step)", title=f"{model} on {dataset}: firing rate per layer")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    _pyplot().close(fig)
    write_atomic(path, buffer.getvalue())
    return path
