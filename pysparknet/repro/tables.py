"""The tau/K study's tables as Markdown (and the accuracy grid as CSV)."""
from __future__ import annotations

import csv
import io


def _grid(cells):
    workers = sorted({c.workers for c in cells})
    taus = sorted({c.tau for c in cells})
    return workers, taus, {(c.workers, c.tau): c for c in cells}


def accuracy_markdown(cells, budget_images: int) -> str:
    workers, taus, by = _grid(cells)
    lines = [f"| tau \\ K | {' | '.join(str(k) for k in workers)} |",
             "|---:|" + "---:|" * len(workers)]
    for tau in taus:
        row = []
        for k in workers:
            accuracy = by[(k, tau)].final_accuracy() if (k, tau) in by else None
            row.append("diverged" if accuracy is None else f"{100 * accuracy:.2f}")
        lines.append(f"| {tau} | {' | '.join(row)} |")
    return (f"Test accuracy (%) on the 10,000 test images after {budget_images:,} training "
            "images in all:\n\n" + "\n".join(lines) + "\n")


def accuracy_csv(cells) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["workers", "tau", "rounds", "iterations_per_worker", "images",
                     "test_accuracy", "diverged"])
    for cell in sorted(cells, key=lambda c: (c.workers, c.tau)):
        last = cell.points[-1] if cell.points else {}
        writer.writerow([cell.workers, cell.tau, last.get("round"), last.get("iterations"),
                         last.get("images"), last.get("accuracy"), cell.diverged])
    return out.getvalue()


def costs_markdown(compute_ms: dict, sync_s: dict, cores: int) -> str:
    lines = ["| K | C_K ms per step (slowest worker; K=1: one net) | S_K ms per round |",
             "|---:|---:|---:|"]
    for k in sorted(compute_ms):
        note = f" ({k} on {cores} cores)" if k > cores else ""
        sync = f"{1e3 * sync_s[k]:.1f}" if k in sync_s else "- (no sync: one net)"
        lines.append(f"| {k} | {compute_ms[k]:.2f}{note} | {sync} |")
    return "\n".join(lines) + "\n"


def agreement_markdown(cells, spark_runs) -> str:
    """Spark's test accuracy next to the in-process grid's, at the same test points."""
    by = {(c.workers, c.tau): c for c in cells}
    lines = ["| K | tau | test points | Spark final % | in-process final % | "
             "max abs difference (points) | Spark training s |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for run in spark_runs:
        cell = by.get((run["workers"], run["tau"]))
        if cell is None or cell.diverged:
            continue
        grid = {p["round"]: p["accuracy"] for p in cell.points}
        diffs = [abs(p["accuracy"] - grid[p["round"]]) for p in run["points"]
                 if p["round"] in grid]
        last = run["points"][-1]
        note = " (oversubscribed)" if run["oversubscribed"] else ""
        lines.append(f"| {run['workers']}{note} | {run['tau']} | {len(diffs)} | "
                     f"{100 * last['accuracy']:.2f} | {100 * cell.final_accuracy():.2f} | "
                     f"{100 * max(diffs):.2f} | {last['train_s']:.1f} |")
    return "\n".join(lines) + "\n"
