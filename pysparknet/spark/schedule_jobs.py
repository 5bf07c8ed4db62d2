"""Rounds as jobs: each round one ordinary (non-barrier) Spark job of K tasks.

Dearer than segments by a job's scheduling a round, but the cluster's slots
are free between rounds: dynamic allocation may grow and shrink the
executors (barrier stages refuse it), and an `until` callback may run Spark
jobs of its own. The round itself runs exactly as in a segment: the same
links, typed worker errors, stragglers' rules and reruns.
"""
from __future__ import annotations

from typing import Optional

from .stage import StagedRounds


class JobSchedule(StagedRounds):
    barrier = False
    kind = "one job"

    def last_round(self, r: int, rounds: int, checkpoint_every: Optional[int]) -> int:
        return r + 1
