"""PNG plots for reports (matplotlib, Agg canvas).

Figures are built with ``matplotlib.figure.Figure`` and an explicit Agg canvas instead of pyplot: no global figure
registry to leak memory across a long report, no GUI backend picked up from the environment, safe in threads.
Every function takes plain data (labels, numbers) and writes one PNG; the report decides what goes in.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
VERDICT_COLORS = {"correct": "#2a9d4b", "incorrect": "#d1495b", "truncated": "#8d99ae"}
# Runs keep one color across every plot of a report: the i-th run gets the i-th color.
RUN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def run_color(i: int) -> str:
    return RUN_COLORS[i % len(RUN_COLORS)]


def _save(fig: Figure, path: Path, tight: bool = False) -> Path:
    FigureCanvasAgg(fig)
    # bbox "tight" costs a second draw: only for figures whose legend sits outside the axes.
    fig.savefig(path, dpi=DPI, format="png", metadata={"Software": None}, bbox_inches="tight" if tight else None)
    return path


def _legend_below(ax, n: int, offset: float = -0.16) -> None:
    """Legend under the axes: bars reach any value, so no corner of the axes is guaranteed free."""
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, offset), ncol=min(2, max(1, n)), frameon=False)


def _k_axis(ax, kmax: int) -> None:
    if kmax >= 8:
        ax.set_xscale("log", base=2)
        ticks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024) if k <= kmax]
        if ticks[-1] != kmax:
            ticks.append(kmax)
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks])
    else:
        ax.set_xticks(range(1, kmax + 1))
    ax.set_xlim(0.9 if kmax >= 8 else 0.5, kmax * 1.1 if kmax >= 8 else kmax + 0.5)


def _mark_zeros(ax, pos: Sequence[float], vals: Sequence[float], vertical: bool) -> None:
    """A bar of height 0 is invisible; label it so 0% reads differently from an empty bucket."""
    for p, v in zip(pos, vals):
        if v == 0:
            if vertical:
                ax.annotate("0", (p, 0), textcoords="offset points", xytext=(0, 2), ha="center", fontsize=7)
            else:
                ax.annotate("0", (0, p), textcoords="offset points", xytext=(2, 0), va="center", fontsize=7)


def plot_curves(path: Path, title: str, ylabel: str,
                series: Sequence[tuple[str, int, Sequence[int], Sequence[float]]],
                paper: Sequence[tuple[str, int, float]] = (),
                intervals: Sequence[tuple[int, int, float, float]] = ()) -> Path:
    """Score vs k: series are (label, run index, ks, values); ``paper`` adds (label, k, value) reference markers;
    ``intervals`` draws (run index, k, lo, hi) confidence intervals as error bars."""
    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot()
    kmax = 1
    for label, i, ks, ys in series:
        if not ks:
            continue
        ax.plot(ks, [100 * y for y in ys], marker="o" if len(ks) <= 16 else None, ms=3, lw=1.6,
                color=run_color(i), label=label)
        kmax = max(kmax, max(ks))
    for j, (i, k, lo, hi) in enumerate(intervals):
        # Side by side around k, so intervals of several runs do not hide each other.
        ax.errorbar([k * (1 + 0.04 * (j - (len(intervals) - 1) / 2))], [100 * (lo + hi) / 2], yerr=[[100 * (hi - lo) / 2]], fmt="none", ecolor=run_color(i),
                    capsize=4, lw=1.2)
    for label, k, y in paper:
        ax.scatter([k], [100 * y], marker="*", s=110, color="black", zorder=5, label=label)
        ax.annotate(f"{100 * y:.1f}", (k, 100 * y), textcoords="offset points", xytext=(6, 4), fontsize=8)
        kmax = max(kmax, k)
    _k_axis(ax, kmax)
    ax.set_ylim(0, 100)
    ax.set_xlabel("k (samples per problem)")
    ax.set_ylabel(ylabel + " (%)")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def plot_lengths(path: Path, title: str, unit: str, runs: Sequence[tuple[str, dict[str, Sequence[float]]]],
                 bins: int = 30) -> Path:
    """Response length histograms split by verdict group, one panel per run (shared bin edges)."""
    values = [v for _, groups in runs for vs in groups.values() for v in vs]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)]
    fig = Figure(figsize=(6.4, 1.0 + 2.2 * max(1, len(runs))))
    axes = fig.subplots(max(1, len(runs)), 1, squeeze=False)[:, 0]
    for ax, (label, groups) in zip(axes, runs):
        # Stacked step areas (one patch per verdict group) draw far faster than ax.hist's one rectangle per bin.
        bottom = np.zeros(bins)
        for g, color in VERDICT_COLORS.items():
            vs = groups.get(g) or []
            counts, _ = np.histogram(vs, bins=edges)
            ax.stairs(bottom + counts, edges, baseline=bottom, fill=True, color=color, label=f"{g} ({len(vs)})")
            bottom = bottom + counts
        ax.set_title(label, fontsize=9)
        ax.set_ylabel("samples")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(f"response length ({unit})")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def plot_length_accuracy(path: Path, title: str, bucket_labels: Sequence[str],
                         runs: Sequence[tuple[str, int, Sequence[float | None]]]) -> Path:
    """pass@1 per response-length bucket: runs are (label, run index, value per bucket); None leaves a gap."""
    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot()
    nb, nr = len(bucket_labels), max(1, len(runs))
    width = 0.8 / nr
    for j, (label, i, accs) in enumerate(runs):
        xs = [b + (j - (nr - 1) / 2) * width for b in range(nb) if accs[b] is not None]
        ys = [100 * a for a in accs if a is not None]
        ax.bar(xs, ys, width=width, color=run_color(i), label=label)
        _mark_zeros(ax, xs, ys, vertical=True)
    ax.set_xticks(range(nb))
    ax.set_xticklabels(bucket_labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("pass@1 (%)")
    ax.set_xlabel("response length bucket")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    _legend_below(ax, len(runs), offset=-0.32)
    return _save(fig, path, tight=True)


def plot_breakdown(path: Path, title: str, groups: Sequence[str],
                   runs: Sequence[tuple[str, int, Sequence[float | None]]]) -> Path:
    """Horizontal grouped bars of pass@1 per group (subject, level, domain...): runs are (label, run index, values)."""
    ng, nr = len(groups), max(1, len(runs))
    fig = Figure(figsize=(6.4, min(40.0, 1.2 + 0.28 * ng * nr + 0.1 * ng)))
    ax = fig.add_subplot()
    height = 0.8 / nr
    for j, (label, i, vals) in enumerate(runs):
        ys = [g + (j - (nr - 1) / 2) * height for g in range(ng) if vals[g] is not None]
        xs = [100 * v for v in vals if v is not None]
        ax.barh(ys, xs, height=height, color=run_color(i), label=label)
        _mark_zeros(ax, ys, xs, vertical=False)
    ax.set_yticks(range(ng))
    ax.set_yticklabels(groups, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("pass@1 (%)")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    _legend_below(ax, len(runs))
    return _save(fig, path, tight=True)
