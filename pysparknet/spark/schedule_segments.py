"""Rounds in segments (the default): many rounds in one barrier-mode Spark stage.

A per-round Spark job costs its scheduling (72-98 ms on local-cluster,
bench/bench_spark_job_latency.py) every round. A segment pays it once: K
barrier tasks (gang-scheduled, one per partition) train the rounds the driver
sends over their links until the next checkpoint (or the fit's end). The
Spark UI shows one job per segment, named with its round range.
"""
from __future__ import annotations

from typing import Optional

from .stage import StagedRounds


class SegmentSchedule(StagedRounds):
    barrier = True
    kind = "one barrier stage"

    def last_round(self, r: int, rounds: int, checkpoint_every: Optional[int]) -> int:
        if checkpoint_every is None:
            return rounds
        return min(rounds, (r // checkpoint_every + 1) * checkpoint_every)
