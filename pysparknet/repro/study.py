"""`sparknet repro tau-k`: the whole tau/K study in one run, and what it writes.

Order: for each Spark K, its cluster (its C and S, then its runs); C and S
for the other K; then the in-process grid; all in one process, so the costs and the
Spark runs see the machine under the same load. Results go to OUT/tau_k.json
as each phase ends; tables and figures are redrawn from it.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
from dataclasses import asdict
from pathlib import Path

from ..data import fashion_mnist
from . import figures, tables, tau_k_spark
from .speedup_report import check_markdown
from .tau_k import Settings, cells_as_json, cells_from_json, run_grid


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    return f"{model}, {tau_k_spark.cores()} cores, {platform.system()} {platform.release()}"


def _save(results: dict, out: Path) -> None:
    (out / "tau_k.json").write_text(json.dumps(results, indent=1))


def run_study(out: Path, settings: Settings, spark_workers: tuple, spark_taus: tuple,
              target: float, progress=print) -> dict:
    settings.check()
    out.mkdir(parents=True, exist_ok=True)
    results = {"settings": asdict(settings), "target": target, "machine": machine(),
               "started": datetime.datetime.now().isoformat(timespec="seconds"),
               "load_before": os.getloadavg(), "spark_runs": [], "cells": []}
    progress("Spark runs (each K on its own local-cluster), C and S around each")
    computes, syncs, results["spark_runs"] = tau_k_spark.spark_runs(
        settings, spark_workers, spark_taus, progress=progress)
    progress("C and S for the other K")
    others = tuple(k for k in settings.workers if k not in computes)
    more_computes, more_syncs = tau_k_spark.measure_costs(settings, others, progress)
    computes.update(more_computes)
    syncs.update(more_syncs)
    results["compute_ms"] = computes
    results["sync_s"] = syncs
    _save(results, out)
    progress(f"in-process grid: K {settings.workers} x tau {settings.taus}, "
             f"{settings.budget_images:,} images each")
    train, test = fashion_mnist("train"), fashion_mnist("test")
    results["cells"] = cells_as_json(run_grid(settings, train, test, progress))
    results["load_after"] = os.getloadavg()
    _save(results, out)
    return results


def modeled_s(results: dict, cell, point) -> float:
    """The in-process point's wall-clock as K workers here would take it: rounds x
    (tau x C_K + S_K); K=1 is one net, no sync."""
    compute = results["compute_ms"][str(cell.workers)] / 1e3
    if cell.workers == 1:
        return point["iterations"] * compute
    return point["round"] * (cell.tau * compute + results["sync_s"][str(cell.workers)])


def write_outputs(results: dict, out: Path, target: float) -> str:
    """Tables (Markdown, CSV) and PNGs from the results; returns the Markdown."""
    results = json.loads(json.dumps(results))  # K keys as strings, as read back
    cells, runs = cells_from_json(results["cells"]), results["spark_runs"]
    budget = results["settings"]["budget_images"]
    (out / "tau_k_accuracy.csv").write_text(tables.accuracy_csv(cells))
    check, within, reached = check_markdown(results, target)
    text = "\n".join([
        f"machine: {results['machine']}; started {results['started']}; load average "
        f"before {results['load_before'][0]:.1f}, after {results.get('load_after', ['?'])[0]}",
        "", tables.accuracy_markdown(cells, budget),
        "Costs measured in the same run:\n",
        tables.costs_markdown({int(k): v for k, v in results["compute_ms"].items()},
                              {int(k): v for k, v in results["sync_s"].items()},
                              tau_k_spark.cores()),
        "Real Spark runs vs. the in-process grid (same test points):\n",
        tables.agreement_markdown(cells, runs),
        f"Speedup model vs. the Spark runs, time to {target:.1%} (rounds from the grid; C "
        f"and S measured on the run's cluster just before and after it): {within} of "
        f"{reached} that reached it within 25%\n", check])
    (out / "tau_k.md").write_text(text)

    def x_time(obj, point):
        return point["train_s"] if isinstance(obj, dict) else modeled_s(results, obj, point)
    for name, x_of, label in [
            ("accuracy_vs_time.png", x_time, "wall-clock s (grid: modeled; Spark: measured)"),
            ("accuracy_vs_iterations.png", lambda o, p: p["iterations"], "iterations per worker"),
            ("accuracy_vs_rounds.png", lambda o, p: p["round"], "rounds")]:
        figures.accuracy_curves(cells, runs, x_of, label, out / name,
                                f"LeNet on Fashion-MNIST, {budget:,} images per cell")
    figures.heat_map(cells, out / "accuracy_heat_map.png",
                     f"test accuracy after {budget:,} images")
    return text
