"""The driver's side threads of a round on the weight exchange.

Gathering: sums the workers' results as they arrive, against the round's
deadline; on any failure it aborts the exchange and cancels the round's jobs,
so the tasks waiting on it end instead of hanging.
Reruns: a task whose worker has no solver asks for its partition's data; the
partition reruns with it at once, in a job of its own in the round's job group.
"""
from __future__ import annotations

import threading
from typing import Optional

from pyspark import InheritableThread  # carries the job group's properties

from .failures import worker_failure


class Gathering:
    def __init__(self, sc, exchange, partitions: int, size: int, deadline_s: float):
        self.sc, self.exchange = sc, exchange
        self.partitions, self.size, self.deadline_s = partitions, size, deadline_s
        self.group = sc.getLocalProperty("spark.jobGroup.id")
        self.total = None
        self.error: Optional[Exception] = None
        self._thread = threading.Thread(target=self._run, name="sparknet-gather", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            self.total = self.exchange.gather(self.partitions, self.size, self.deadline_s)
        except Exception as error:  # noqa: BLE001 - reported by the round
            self.error = error
            self.exchange.abort()  # fail the waiting workers' tasks, not hang the job
            self.sc.cancelJobGroup(self.group)

    def join(self) -> None:
        self._thread.join()  # gather() itself stops at the round's deadline


class Reruns:
    def __init__(self, sc, round_no: int, with_data, exchange):
        self.sc, self.round_no, self.with_data, self.exchange = sc, round_no, with_data, exchange
        self.group = sc.getLocalProperty("spark.jobGroup.id")
        self._started: list = []  # (thread, its result dict)

    def start(self, part: int) -> None:
        """Called by the exchange (on its thread) when partition `part` asks for data."""
        result: dict = {}

        def run():
            self.sc.setJobGroup(self.group, f"SparkNet round {self.round_no + 1}: partition "
                                            f"{part} with its data (its worker had no solver)")
            try:
                result["stats"] = self.sc.runJob(self.with_data, lambda it: it, [part])
            except Exception as error:  # noqa: BLE001 - reported after the round
                result["error"] = error
                self.exchange.abort()
        thread = InheritableThread(target=run)
        thread.start()
        self._started.append((thread, result))

    def join(self, raise_errors: bool = True) -> list:
        """Wait for every rerun (all started before the round's job ended: their
        tasks waited for it); their stats, or the first one's error raised."""
        stats, first_error = [], None
        while self._started:
            thread, result = self._started.pop(0)
            thread.join()
            if "error" in result and first_error is None:
                first_error = result["error"]
            stats += result.get("stats", [])
        if first_error is not None and raise_errors:
            raise worker_failure(first_error) from first_error
        return stats
