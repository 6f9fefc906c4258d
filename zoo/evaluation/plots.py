"""Leaderboard figures (matplotlib, Agg backend), written atomically as PNG, one set per data set:

* ``<dataset>_accuracy_vs_energy.png``: top-1 against the synaptic energy per sample (log scale,
  :mod:`zoo.evaluation.energy`) of every evaluated checkpoint and T: one marker per method, one
  colour per T, the Pareto front (no other point is both more accurate and cheaper) drawn, its
  points numbered on the plot and named in the legend; the trade-off SNN papers are read for.
* ``<dataset>_accuracy_vs_T.png``: top-1 against T, one series per checkpoint, each with its own
  colour and marker (how ANN->SNN conversion and T=1 -> T=N transfer are judged, methods.md
  sections 3-4). At most ``MAX_SERIES`` series share a panel; with more, one panel per method.
  Series at the same T are dodged apart so that none hides another.
* ``<dataset>_<model>_firing_rate.png``: firing rate of each neuron layer (in network order) as
  bars over the categorical layer axis, one colour per evaluated T.

Accuracies carry their binomial standard error ``100 sqrt(p (1 - p) / n)`` over the n test samples
as error bars. Legends stand outside the data and titles wrap inside the figure. Only full
test-split records are plotted; the figures are the same bytes for the same records. File names
are made of the records' data set and model names (checked when records are loaded,
:func:`zoo.evaluation.records.check_record`) and confined to the plots folder.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from zoo.cards import DATASET_TITLES
from zoo.checkpoint import write_atomic
from zoo.names import confined

from . import energy

MAX_SERIES = 6  # colour-and-marker pairs a reader tells apart in one panel
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22")  # matplotlib's tab10, red second so that the first two series differ for colour-blind readers
DPI = 100
T_DARKEST = 32  # T at the dark end of the T colours (and beyond)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def standard_error(top1: float, samples: int) -> float:
    """Binomial standard error of a top-1 percentage measured on ``samples`` samples, in points."""
    p = top1 / 100
    return 100 * math.sqrt(p * (1 - p) / samples)


def write_plots(records: list[dict[str, Any]], folder: str | Path) -> list[Path]:
    """Write the figures of ``records`` (sorted as :func:`zoo.evaluation.records.load_records`
    sorts them) into ``folder``; returns the files written."""
    folder = Path(folder)
    plotted = [r for r in records if r["split"] == "test" and r["limit"] is None]
    by_dataset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in plotted:
        by_dataset[record["dataset"]].append(record)
    written = []
    for dataset, runs in sorted(by_dataset.items()):
        written.append(_save(accuracy_vs_energy(dataset, runs), confined(folder, f"{dataset}_accuracy_vs_energy.png")))
        written.append(_save(accuracy_vs_T(dataset, runs), confined(folder, f"{dataset}_accuracy_vs_T.png")))
        for model, model_runs in sorted(_by_model(runs).items()):
            if any(r["neuron_layers"] for r in model_runs):
                path = confined(folder, f"{dataset}_{model}_firing_rate.png")
                written.append(_save(firing_rates(dataset, model, model_runs), path))
    return written


def _by_model(runs: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    models: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in runs:
        models[record["model"]].append(record)
    return {model: sorted(rs, key=lambda r: r["T"]) for model, rs in models.items()}


def _title(dataset: str) -> str:
    return DATASET_TITLES.get(dataset, dataset)


def _T_colours(Ts: Iterable[int]) -> dict[int, Any]:
    """One colour per T, the same in every figure: light to dark along viridis with log2(T) from
    T = 1 to T = ``T_DARKEST`` (T is an ordered quantity, and the zoo's T double)."""
    cmap = _pyplot().get_cmap("viridis")
    return {T: cmap(0.9 * (1 - min(1.0, math.log2(T) / math.log2(T_DARKEST)))) for T in sorted(set(Ts))}


def _method_markers(runs: Iterable[dict[str, Any]]) -> dict[str, str]:
    return {method: MARKERS[i % len(MARKERS)] for i, method in enumerate(sorted({r["method"] for r in runs}))}


def _short(model: str, runs: Iterable[dict[str, Any]]) -> str:
    """The checkpoint's tag where every plotted model has the same architecture, else its name."""
    return model.partition(".")[2] if len({r["architecture"] for r in runs}) == 1 else model


# ---- accuracy against energy ------------------------------------------------------------------


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points ``(cost, accuracy)`` that no other point beats on both counts (lower
    or equal cost and higher accuracy, or lower cost and equal accuracy), by increasing cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def accuracy_vs_energy(dataset: str, runs: list[dict[str, Any]]):
    """Top-1 against energy per sample for every record of ``dataset``; returns the figure."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 5.0))
    markers, colours = _method_markers(runs), _T_colours(r["T"] for r in runs)
    points = [(r["energy_uj_per_sample"], r["top1"]) for r in runs]
    for record, (x, y) in zip(runs, points):
        ax.errorbar(x, y, yerr=standard_error(record["top1"], record["samples"]), marker=markers[record["method"]],
                    color=colours[record["T"]], markeredgecolor="black", markeredgewidth=0.5, markersize=7,
                    ecolor=colours[record["T"]], elinewidth=1, capsize=2, linestyle="none", zorder=3)
    front = pareto_front(points)
    xs, ys = [points[i][0] for i in front], [points[i][1] for i in front]
    ax.step(xs, ys, where="post", color="0.35", linestyle="--", linewidth=1, zorder=2, label="Pareto front")
    for k, i in enumerate(front, 1):  # numbered here, named in the legend: names on the plot would hide points
        ax.annotate(str(k), points[i], textcoords="offset points", xytext=(-4, 7), ha="right", fontsize="small",
                    fontweight="bold", color="0.15", zorder=4)
    _log_axis_numbers(ax.xaxis)
    ax.set(xlabel=f"synaptic energy per sample (µJ; {energy.E_AC_PJ} pJ/AC + {energy.E_MAC_PJ} pJ/MAC, 45 nm)",
           ylabel="top-1 accuracy (%) ± binomial SE")
    ax.set_title(f"{_title(dataset)}: accuracy against energy ({len(runs)} evaluations)", loc="left")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()  # before the legend, which saving with a tight box adds beside the axes
    _legend_right(ax, [("method (marker)", [(m, dict(marker=mk, color="0.6", markeredgecolor="black"))
                                            for m, mk in markers.items()]),
                       ("T (colour)", [(f"T = {T}", dict(marker="o", color=c, markeredgecolor="black"))
                                       for T, c in colours.items()]),
                       ("Pareto front (dashed)", [(f"{k}: {_short(runs[i]['model'], runs)}, T={runs[i]['T']}",
                                                   dict(color="0.35", linestyle="--" if k == 1 else "none"))
                                                  for k, i in enumerate(front, 1)])])
    return fig


def _log_axis_numbers(axis) -> None:
    """A log-scaled axis labelled in plain numbers at 1, 2 and 5 times each power of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.axes.set_xscale("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _legend_right(ax, groups: list[tuple[str, list[tuple[str, dict]]]]) -> None:
    """One legend to the right of ``ax``, outside the data, in sections: a (title, entries) group is
    its title line (no symbol) followed by its entries (label, Line2D style)."""
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for title, entries in groups:
        if title:
            handles.append(Line2D([], [], linestyle="none"))
            labels.append(title)
        for label, style in entries:
            handles.append(Line2D([], [], **{"linestyle": "none", **style}))
            labels.append(label)
    legend = ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small",
                       frameon=False, borderaxespad=0, handlelength=1.8)
    for text, label in zip(legend.get_texts(), labels):
        if label in {title for title, _ in groups}:
            text.set_fontweight("bold")


# ---- accuracy against T -----------------------------------------------------------------------


def panels(runs: list[dict[str, Any]]) -> list[tuple[str, dict[str, list[dict[str, Any]]]]]:
    """(title, series by model) of each panel: all series in one panel when they are at most
    ``MAX_SERIES``, else one panel per method (split further if a method has more)."""
    models = _by_model(runs)
    if len(models) <= MAX_SERIES:
        return [("", models)]
    by_method: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(dict)
    for model, model_runs in models.items():
        by_method[model_runs[0]["method"]][model] = model_runs
    out = []
    for method, series in sorted(by_method.items()):
        names = sorted(series)
        for start in range(0, len(names), MAX_SERIES):
            out.append((method, {name: series[name] for name in names[start:start + MAX_SERIES]}))
    return out


def accuracy_vs_T(dataset: str, runs: list[dict[str, Any]]):
    """Top-1 against T, one series per checkpoint; returns the figure."""
    plt = _pyplot()
    layout = panels(runs)
    cols = min(len(layout), 4)
    rows = math.ceil(len(layout) / cols)
    single = len(layout) == 1
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 if single else 3.9 * cols, 4.6 if single else 3.9 * rows),
                             sharey=True, squeeze=False)
    Ts = sorted({r["T"] for r in runs})
    for ax, (title, series) in zip(axes.flat, layout):
        _series_vs_T(ax, series, runs, Ts)
        ax.set_title(title, fontsize="medium")
    for ax in list(axes.flat)[len(layout):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("top-1 accuracy (%) ± binomial SE")
    fig.suptitle(f"{_title(dataset)}: accuracy against T" + ("" if single else ", one panel per method"),
                 x=0.01, ha="left")
    if single:  # the legend beside the axes, added after the layout so that it does not shrink them
        fig.tight_layout()
        axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", frameon=False,
                          borderaxespad=0)
        return fig
    for ax in list(axes.flat)[:len(layout)]:  # legends under their panels, before the layout makes room for them
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize="x-small", frameon=False)
    fig.tight_layout()
    return fig


def _series_vs_T(ax, series: dict[str, list[dict[str, Any]]], runs: list[dict[str, Any]], Ts: list[int]) -> None:
    """One line per checkpoint with its own colour and marker, dodged apart at each T."""
    n = len(series)
    for i, (model, model_runs) in enumerate(sorted(series.items())):
        dodge = 2 ** ((i - (n - 1) / 2) * 0.05)  # a few percent of a doubling apart on the log2 axis
        ax.errorbar([r["T"] * dodge for r in model_runs], [r["top1"] for r in model_runs],
                    yerr=[standard_error(r["top1"], r["samples"]) for r in model_runs],
                    color=COLOURS[i % len(COLOURS)], marker=MARKERS[i % len(MARKERS)], markersize=6,
                    markeredgecolor="black", markeredgewidth=0.4, capsize=2, linewidth=1.4,
                    label=f"{_short(model, runs)} (trained T={model_runs[0]['trained_T']})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(Ts, [str(t) for t in Ts])
    ax.minorticks_off()
    ax.set_xlim(min(Ts) / 1.4, max(Ts) * 1.4)
    ax.set_xlabel("time steps T")
    ax.grid(alpha=0.3)


# ---- firing rate per layer --------------------------------------------------------------------


def firing_rates(dataset: str, model: str, runs: list[dict[str, Any]]):
    """Firing rate of each neuron layer, grouped bars with one colour per T; returns the figure."""
    plt = _pyplot()
    names = [layer["name"] for layer in runs[0]["neuron_layers"]]
    colours = _T_colours(r["T"] for r in runs)
    width = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(max(5.6, 0.45 * len(names) * max(1, len(runs) / 2) + 1.5), 4.4))
    for i, run in enumerate(runs):
        offsets = [k + (i - (len(runs) - 1) / 2) * width for k in range(len(names))]
        ax.bar(offsets, [layer["firing_rate"] for layer in run["neuron_layers"]], width=width,
               color=colours[run["T"]], edgecolor="black", linewidth=0.4, label=f"T = {run['T']}")
    # upright names read best where they fit side by side (about 7 px a character, axes ~1.5 in narrower)
    upright = len(names) * (7 * max(map(len, names)) + 12) <= (fig.get_figwidth() - 1.5) * DPI
    ax.set_xticks(range(len(names)), names, rotation=0 if upright else 60, ha="center" if upright else "right",
                  fontsize="small" if upright else "x-small")
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set(ylabel="firing rate (events / neuron / step)", xlabel="neuron layer (network order)")
    ax.grid(alpha=0.3, axis="y")
    title = f"{model} on {_title(dataset)}: firing rate per layer"
    chars = int((fig.get_figwidth() * DPI - 90) / 8.5)  # what fits right of the y label at about 8 px a character
    ax.set_title("\n".join(textwrap.wrap(title, width=chars)), loc="left", fontsize="medium")
    fig.tight_layout()
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False, borderaxespad=0)
    return fig


def _save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches="tight", pad_inches=0.15)
    _pyplot().close(fig)
    write_atomic(path, buffer.getvalue())
    return path
