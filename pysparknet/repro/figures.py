"""The tau/K study's and the speedup model's figures, as PNG."""
from __future__ import annotations

from pathlib import Path
from typing import Optional


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path, title: Optional[str] = None) -> Path:
    """Title the figure, write it as PNG (making its folder) and free it."""
    if title is not None:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)
    return Path(path)


def accuracy_curves(cells, spark_runs, x_of, xlabel: str, path: Path, title: str) -> Path:
    """One panel per K, one line per tau; x_of(cell, point) -> x. Spark runs
    (x from their own 'train_s' when xlabel is time) as open markers."""
    plt = _pyplot()
    workers = sorted({c.workers for c in cells})
    fig, axes = plt.subplots(1, len(workers), figsize=(4.2 * len(workers), 3.8), sharey=True)
    axes = axes if len(workers) > 1 else [axes]
    for ax, k in zip(axes, workers):
        for cell in (c for c in cells if c.workers == k):
            if cell.diverged or (k == 1 and cell.tau != cells[0].tau):
                continue  # K=1 is one run for every tau
            label = "one net" if k == 1 else f"tau={cell.tau}"
            ax.plot([x_of(cell, p) for p in cell.points],
                    [100 * p["accuracy"] for p in cell.points], marker=".", label=label)
        for run in (r for r in spark_runs if r["workers"] == k):
            ax.plot([x_of(run, p) for p in run["points"]],
                    [100 * p["accuracy"] for p in run["points"]], "o", mfc="none",
                    label=f"Spark, tau={run['tau']}")
        ax.set(title=f"K={k}", xlabel=xlabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("test accuracy (%)")
    return _save(fig, path, title)


def heat_map(cells, path: Path, title: str) -> Path:
    """Accuracy at the fixed budget, tau (rows) x K (columns)."""
    import numpy as np
    plt = _pyplot()
    workers = sorted({c.workers for c in cells})
    taus = sorted({c.tau for c in cells})
    grid = np.full((len(taus), len(workers)), np.nan)
    for cell in cells:
        accuracy = cell.final_accuracy()
        if accuracy is not None:
            grid[taus.index(cell.tau), workers.index(cell.workers)] = 100 * accuracy
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    middle = np.nanmean(grid)
    for (i, j), value in np.ndenumerate(grid):
        ax.text(j, i, "diverged" if np.isnan(value) else f"{value:.1f}", ha="center",
                va="center", color="k" if value > middle else "w", fontsize=8)
    ax.set_xticks(range(len(workers)), [str(k) for k in workers])
    ax.set_yticks(range(len(taus)), [str(t) for t in taus])
    ax.set(xlabel="K (workers)", ylabel="tau (steps per round)", title=title)
    fig.colorbar(image, label="test accuracy (%)")
    return _save(fig, path)


def speedup_curves(curves: dict, path: Path, title: str) -> Path:
    """curves: S label -> {K: [(tau, speedup), ...]}; one panel per S."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.6), sharey=True)
    axes = axes if len(curves) > 1 else [axes]
    for ax, (label, by_k) in zip(axes, curves.items()):
        for k, points in sorted(by_k.items()):
            points = [(t, s) for t, s in points if s is not None]
            if points:
                ax.plot(*zip(*points), marker="o", label=f"K={k}")
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set(xscale="log", xlabel="tau", title=label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("predicted speedup over one net")
    return _save(fig, path, title)


def top_k_curves(history: list, scores, path: Path, name: str) -> Path:
    """Top-1 and top-5 test accuracy against wall-clock time and iterations."""
    plt = _pyplot()
    rows = [r for r in history if f"val_{scores.top1}" in r]
    fig, (by_time, by_iter) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for key, label in ((scores.top1, "top-1"), (scores.top5, "top-5")):
        accuracy = [100 * r[f"val_{key}"] for r in rows]
        by_time.plot([r["elapsed_s"] for r in rows], accuracy, marker="o", label=label)
        by_iter.plot([r["iterations"] for r in rows], accuracy, marker="o", label=label)
    by_time.set(xlabel="wall-clock s", ylabel="test accuracy (%)")
    by_iter.set(xlabel="iterations per worker")
    for ax in (by_time, by_iter):
        ax.grid(True, alpha=0.3)
        ax.legend()
    return _save(fig, path, f"SparkNet {name}")
