"""The leaderboard's pictures are readable: checked on the figures themselves, before they are saved.

- accuracy against energy: one marker per method, one colour per T, binomial error bars, the Pareto
  front through exactly the non-dominated points, the legend outside the data;
- accuracy against T: every series in a panel has its own colour and marker, at most MAX_SERIES
  series per panel (one panel per method beyond that), error bars, points at the same T dodged apart,
  legends outside the data;
- firing rate per layer: bars on a categorical axis, one per layer and T, the title inside the figure.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import pytest
from matplotlib.container import BarContainer, ErrorbarContainer

from zoo.evaluation import plots


def record(model: str, T: int, top1: float, method: str, energy: float, layers=(0.1, 0.2), samples: int = 100):
    arch, _, tag = model.partition(".")
    return {"model": model, "architecture": arch, "method": method, "T": T, "trained_T": 4, "top1": top1,
            "samples": samples, "energy_uj_per_sample": energy, "dataset": "nmnist", "split": "test", "limit": None,
            "neuron_layers": [{"name": f"features.{i}.act", "firing_rate": rate} for i, rate in enumerate(layers)]}


def runs(n_models: int, Ts=(1, 2, 4, 8)) -> list[dict]:
    methods = ["lif", "mlf", "inflor", "noise"]
    return [record(f"net.m{i}", T, 50 + i + T, methods[i % len(methods)], energy=(i + 1) * T) for i in range(n_models)
            for T in Ts]


def outside(fig, legend, axes) -> bool:
    """The legend's box does not overlap the axes' data area."""
    fig.canvas.draw()
    box, area = legend.get_window_extent(), axes.get_window_extent()
    return box.x0 >= area.x1 or box.x1 <= area.x0 or box.y0 >= area.y1 or box.y1 <= area.y0


def test_pareto_front():
    points = [(1.0, 50.0), (2.0, 70.0), (2.0, 60.0), (3.0, 65.0), (4.0, 90.0), (0.5, 40.0), (5.0, 90.0)]
    assert plots.pareto_front(points) == [5, 0, 1, 4]


def test_accuracy_vs_energy():
    data = runs(4)
    fig = plots.accuracy_vs_energy("nmnist", data)
    [ax] = fig.axes
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == len(data) and all(c.has_yerr for c in bars)
    lines = [c.lines[0] for c in bars]
    marker_of = {r["method"]: set() for r in data}
    colour_of = {r["T"]: set() for r in data}
    for r, line in zip(data, lines):
        marker_of[r["method"]].add(line.get_marker())
        colour_of[r["T"]].add(matplotlib.colors.to_hex(line.get_color()))
    assert all(len(m) == 1 for m in marker_of.values()) and len(set.union(*marker_of.values())) == 4
    assert all(len(c) == 1 for c in colour_of.values()) and len(set.union(*colour_of.values())) == 4
    front = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    expected = plots.pareto_front([(r["energy_uj_per_sample"], r["top1"]) for r in data])
    assert front and sorted(set(front[0].get_xdata())) == sorted({data[i]["energy_uj_per_sample"] for i in expected})
    assert outside(fig, ax.get_legend(), ax)
    # the error bar is the binomial standard error
    top, bottom = bars[0].lines[2][0].get_segments()[0][:, 1].max(), bars[0].lines[2][0].get_segments()[0][:, 1].min()
    assert (top - bottom) / 2 == pytest.approx(plots.standard_error(data[0]["top1"], 100))


@pytest.mark.parametrize("n_models", [3, 9])
def test_accuracy_vs_T(n_models):
    data = runs(n_models)
    fig = plots.accuracy_vs_T("nmnist", data)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == (1 if n_models <= plots.MAX_SERIES else 4)  # one panel per method beyond MAX_SERIES
    seen = 0
    for ax in axes:
        series = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert 1 <= len(series) <= plots.MAX_SERIES and all(c.has_yerr for c in series)
        styles = {(matplotlib.colors.to_hex(c.lines[0].get_color()), c.lines[0].get_marker()) for c in series}
        assert len({colour for colour, _ in styles}) == len(series) and len({m for _, m in styles}) == len(series)
        if len(series) > 1:  # dodged: no two series put a point at the same x
            xs = [x for c in series for x in c.lines[0].get_xdata()]
            assert len(set(xs)) == len(xs)
        assert outside(fig, ax.get_legend(), ax)
        seen += len(series)
    assert seen == n_models


def test_firing_rate_bars():
    data = [record("net.m0", T, 60, "lif", 1, layers=(0.1, 0.2, 0.3)) for T in (1, 4)]
    fig = plots.firing_rates("nmnist", "net.m0_with_a_rather_long_name_" + "x" * 60, data)
    [ax] = fig.axes
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 2 and all(len(b) == 3 for b in bars)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["features.0.act", "features.1.act", "features.2.act"]
    assert [round(p.get_height(), 3) for p in bars[1]] == [0.1, 0.2, 0.3]
    assert not any(line.get_linestyle() not in ("None", "none", "") and len(line.get_xdata()) > 1
                   for line in ax.get_lines())  # no lines joining categorical layers
    fig.canvas.draw()
    title, frame = ax._left_title, fig.bbox
    box = title.get_window_extent()
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and "\n" in title.get_text()  # wrapped, not cut
    assert outside(fig, ax.get_legend(), ax)


def test_files_and_same_bytes(tmp_path):
    data = runs(2)
    written = plots.write_plots(data, tmp_path)
    assert sorted(p.name for p in written) == ["nmnist_accuracy_vs_T.png", "nmnist_accuracy_vs_energy.png",
                                               "nmnist_net.m0_firing_rate.png", "nmnist_net.m1_firing_rate.png"]
    before = {p: p.read_bytes() for p in written}
    plots.write_plots(data, tmp_path)
    assert {p: p.read_bytes() for p in written} == before
    assert math.isclose(plots.standard_error(90.0, 10_000), 0.3)
