"""SparkNet's speedup model (Moritz et al., ICLR 2016, Section 3), fitted from measurements.

A round costs tau steps of compute C plus a sync S; K workers need R(K, tau)
rounds to reach a target accuracy, one net N_1 serial steps. Then

    time(K, tau) = R(K, tau) x (tau x C_K + S_K)
    speedup(K, tau) = N_1 x C_1 / time(K, tau)

R comes from the tau/K study's test points (interpolated between its K and tau,
log-log, where asked for others), C and S from the costs measured with it
(repro/costs.py) or given (e.g. the GPU figures recorded in BENCHMARKS.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

# Net.train, LeNet at batch 64, one NVIDIA H100 (BENCHMARKS.md "On one GPU",
# bench/bench_zoo_forward_backward.py, 2026-11-27): a recorded figure, not measured here.
RECORDED_GPU_LENET_MS = 0.65


class NoRoundsError(ValueError):
    """No rounds to the target for a (K, tau): not reached, or outside the study."""


@dataclass
class Costs:
    compute_ms: dict  # K -> C_K, ms per training step of each worker
    sync_s: dict  # K -> S_K, seconds a round outside the training
    label: str  # where they come from

    def round_s(self, workers: int, tau: int) -> float:
        return tau * self.compute_ms[workers] / 1e3 + self.sync_s.get(workers, 0.0)


def iterations_to_target(cells, target: float) -> dict:
    """(K, tau) -> iterations per worker at the first test at or above target."""
    found = {}
    for cell in cells:
        point = cell.first_reaching(target)
        if point is not None and not cell.diverged:
            found[(cell.workers, cell.tau)] = point["iterations"]
    return found


def _bracket(values: list, x: float):
    """(lo, hi) of sorted `values` around x (lo == hi on a grid value)."""
    if x in values:
        return x, x
    lower, upper = [v for v in values if v < x], [v for v in values if v > x]
    if not lower or not upper:
        raise NoRoundsError(f"{x} is outside what reached the target in the study "
                            f"({values[0]}..{values[-1]})")
    return lower[-1], upper[0]


def _weight(lo: float, hi: float, x: float) -> float:
    return 0.0 if lo == hi else math.log(x / lo) / math.log(hi / lo)


def interpolated_iterations(table: dict, workers: int, tau: int) -> float:
    """Iterations per worker to the target at (K, tau): measured, or bilinear in
    (log K, log tau) of log iterations between the four measured neighbours."""
    if (workers, tau) in table:
        return table[(workers, tau)]
    k_lo, k_hi = _bracket(sorted({k for k, _ in table}), workers)
    t_lo, t_hi = _bracket(sorted({t for _, t in table}), tau)
    corners = [(k, t) for k in (k_lo, k_hi) for t in (t_lo, t_hi)]
    missing = [c for c in corners if c not in table]
    if missing:
        raise NoRoundsError(f"K={workers}, tau={tau}: the study's neighbours {missing} did "
                            "not reach the target")
    wk, wt = _weight(k_lo, k_hi, workers), _weight(t_lo, t_hi, tau)
    logs = {c: math.log(table[c]) for c in corners}
    low = (1 - wt) * logs[(k_lo, t_lo)] + wt * logs[(k_lo, t_hi)]
    high = (1 - wt) * logs[(k_hi, t_lo)] + wt * logs[(k_hi, t_hi)]
    return math.exp((1 - wk) * low + wk * high)


def rounds_to_target(table: dict, workers: int, tau: int) -> int:
    return math.ceil(interpolated_iterations(table, workers, tau) / tau - 1e-9)


def predicted_s(table: dict, costs: Costs, workers: int, tau: int) -> float:
    return rounds_to_target(table, workers, tau) * costs.round_s(workers, tau)


def serial_s(table: dict, costs: Costs) -> float:
    """One net's time to the target: N_1 steps of C_1, no sync."""
    steps = min(v for (k, _), v in table.items() if k == 1) if any(
        k == 1 for k, _ in table) else None
    if steps is None:
        raise NoRoundsError("K=1 did not reach the target: no serial baseline")
    return steps * costs.compute_ms[1] / 1e3


def speedup(table: dict, costs: Costs, workers: int, tau: int) -> Optional[float]:
    try:
        return serial_s(table, costs) / predicted_s(table, costs, workers, tau)
    except NoRoundsError:
        return None
