"""One worker's round: set the round's weights (and solver history), train tau
steps or fewer (local_steps.py), read the trained weights back."""
from __future__ import annotations

import time

import numpy as np

from .link_protocol import RoundStats
from .local_steps import slowdown, train_steps
from .solvers import Solver


def train_round(solver: Solver, round_no: int, tau: int, flat: np.ndarray, rebuilt: bool,
                stopped=None):
    """Set the round's weights (in flat), train tau steps (or fewer: local_steps.py):
    (the trained weights, written back into flat - None when the driver closed the
    round without them - and the round's RoundStats)."""
    net, spec, index = solver.net, solver.spec, solver.index
    weights_size = _set_round_state(net, flat, spec.solver_state)
    tic = time.perf_counter()
    steps = train_steps(net, tau, spec.round_seconds, stopped, slowdown(index))
    compute_s = time.perf_counter() - tic
    solver.next_round, solver.used = round_no + 1, time.monotonic()
    outputs = {name: float(value) for name, value in steps.outputs.items()}
    stats = RoundStats(index, outputs, compute_s, rebuilt, solver.skipped(), steps.iterations,
                       steps.stopped)
    if steps.stopped:
        return None, stats
    net.sync_shared_weights()  # the trained weights, in flat
    if weights_size < flat.size:  # 'average': the history goes back with the weights
        net.get_history(flat[weights_size:])
    return flat, stats


def _set_round_state(net, flat: np.ndarray, solver_state: str) -> int:
    """Set the round's weights (and history, as solver_state says) from flat; how
    many of its floats were weights (the rest, if any, is history). The weights stay
    in flat, shared with the net: received there, trained there, sent from there."""
    weights_size = sum(b.size for b in net.layout)
    net.share_weights(flat[:weights_size])
    if solver_state == "reset":
        net.set_history(np.zeros(net.history_size(), np.float32))
    elif solver_state == "average":
        net.set_history(flat[weights_size:])
    return weights_size
