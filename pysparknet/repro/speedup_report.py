"""The speedup model's printed table, its curves and its check against measured runs."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from . import figures
from .speedup_model import (Costs, NoRoundsError, iterations_to_target, predicted_s,
                            rounds_to_target, serial_s, speedup)
from .tau_k import cells_from_json

TOLERANCE = 0.25  # the acceptance bar: within 25% of the measured time


def measured_costs(results: dict) -> Costs:
    """C_K and S_K as the tau/K run measured them (JSON keys are strings)."""
    return Costs({int(k): v for k, v in results["compute_ms"].items()},
                 {int(k): v for k, v in results["sync_s"].items()},
                 f"measured here ({results['machine']})")


def given_costs(workers, compute_ms: Optional[float], sync_s: Optional[list],
                measured: Costs) -> list[Costs]:
    """One Costs per S asked for: C given for every K (one device per worker), or the
    measured C_K; S given for every K, or the measured S_K."""
    if compute_ms is not None:
        compute = {k: compute_ms for k in {1, *workers}}
        label = f"C={compute_ms} ms for every K (given)"
    else:
        compute, label = measured.compute_ms, "C_K measured here"
    if not sync_s:
        return [Costs(compute, measured.sync_s, f"{label}, S_K measured here")]
    return [Costs(compute, {k: s for k in workers}, f"{label}, S={s * 1e3:g} ms")
            for s in sync_s]


def _check_costs(costs: Costs, workers) -> None:
    missing = [k for k in {1, *workers} if k not in costs.compute_ms]
    missing += [k for k in workers if k != 1 and k not in costs.sync_s]
    if missing:
        raise SystemExit(f"no C or S for K={sorted(set(missing))}: the tau/K run measured "
                         f"C for K={sorted(costs.compute_ms)} and S for "
                         f"K={sorted(costs.sync_s)}; give --compute-ms / --sync-s")


def prediction_markdown(table: dict, costs: Costs, workers, taus) -> str:
    _check_costs(costs, workers)
    lines = [f"{costs.label}; one net to the target: {serial_s(table, costs):.1f} s\n",
             "| K | tau | rounds to target | predicted s | speedup |", "|---:|---:|---:|---:|---:|"]
    for k in workers:
        for tau in taus:
            try:
                rounds = rounds_to_target(table, k, tau)
                text = (f"{rounds} | {predicted_s(table, costs, k, tau):.1f} | "
                        f"{speedup(table, costs, k, tau):.2f}")
            except NoRoundsError as error:
                text = f"- | - | - ({error})"
            lines.append(f"| {k} | {tau} | {text} |")
    return "\n".join(lines) + "\n"


def curves_png(table: dict, costs_list: list, workers, taus, path: Path, target: float):
    curves = {}
    for costs in costs_list:
        _check_costs(costs, workers)
        curves[costs.label.split(", ")[-1]] = {
            k: [(tau, speedup(table, costs, k, tau)) for tau in taus] for k in workers}
    return figures.speedup_curves(curves, path, f"predicted speedup to {target:.1%} test "
                                                "accuracy (LeNet, Fashion-MNIST)")


def _measured_to_target(run: dict, target: float):
    return next((p for p in run["points"] if p["accuracy"] >= target), None)


def check_markdown(results: dict, target: float) -> tuple[str, int, int]:
    """(table, runs within the bar, runs that reached the target) for the Spark runs."""
    cells = cells_from_json(results["cells"])
    table = iterations_to_target(cells, target)
    lines = ["| K | tau | Spark rounds to target | grid rounds to target | measured s | "
             "predicted s | predicted / measured | within 25% | the same with the run's own C "
             "(not independent) |", "|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    within = reached = 0
    for run in results["spark_runs"]:
        k, tau = run["workers"], run["tau"]
        point = _measured_to_target(run, target)
        if point is None or (k, tau) not in table:
            lines.append(f"| {k} | {tau} | {'-' if point is None else point['round']} | "
                         f"{table.get((k, tau), '-')} | - | - | - | target not reached | - |")
            continue
        around = Costs({k: run["compute_ms"]}, {k: run["sync_s"]}, "measured around the run")
        predicted = predicted_s(table, around, k, tau)
        ratio = predicted / point["train_s"]
        ok = abs(ratio - 1) <= TOLERANCE
        reached, within = reached + 1, within + ok
        own = Costs({k: run["compute_ms_per_step"]}, around.sync_s, "the run's own C")
        own_ratio = predicted_s(table, own, k, tau) / point["train_s"]
        note = " (oversubscribed)" if run["oversubscribed"] else ""
        lines.append(f"| {k}{note} | {tau} | {point['round']} | "
                     f"{rounds_to_target(table, k, tau)} | {point['train_s']:.1f} | "
                     f"{predicted:.1f} | {ratio:.2f} | {'yes' if ok else 'no'} | "
                     f"{own_ratio:.2f} |")
    return "\n".join(lines) + "\n", within, reached
