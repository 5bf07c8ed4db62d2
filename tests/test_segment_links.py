"""Segment links over real loopback TLS: the driver's Links and the workers' ends
(work_segment) as the trainer uses them, workers in threads, no Spark."""
from __future__ import annotations

import secrets
import threading
import time

import numpy as np
import pytest

from pysparknet.errors import DataError, RoundTimeoutError
from pysparknet.spark.links import Links
from pysparknet.spark.segment_link import LinkBroken, work_segment
from pysparknet.spark.transport import Deadline, WeightExchange


class FakeSolver:
    """Trains by adding `step` per iteration; `pace` seconds an iteration."""

    def __init__(self, step: float, pace: float = 0.0, fail_in_round=None):
        self.step, self.pace, self.fail_in_round = step, pace, fail_in_round
        self.buffer = None

    def train(self, solver, round_no, tau, flat, stopped):
        if round_no == self.fail_in_round:
            raise DataError("record 7 is bad")
        done = 0
        while done < tau:
            time.sleep(self.pace)
            done += 1
            if stopped():
                return None, {"iterations": done, "dropped": True}
        flat += np.float32(self.step * done)
        return flat, {"iterations": done, "dropped": False}


def start_workers(exchange, links, solvers, deadline_s=30.0):
    ticket = exchange.ticket(links.serial, deadline_s)
    ends = {}

    def work(part, solver):
        ends[part] = work_segment(ticket, part, lambda: solver, solver.train,
                                  lambda _, nbytes: np.empty(nbytes // 4, np.float32))
    threads = [threading.Thread(target=work, args=(p, s), daemon=True)
               for p, s in enumerate(solvers)]
    for thread in threads:
        thread.start()
    return threads, ends


def segment(exchange, partitions):
    links = Links(secrets.randbits(63), partitions)
    exchange.open_segment(links)
    return links


def test_rounds_sum_in_partition_order_and_weigh_by_iterations():
    weights = np.arange(100, dtype=np.float32)
    with WeightExchange() as exchange:
        links = segment(exchange, 3)
        threads, ends = start_workers(exchange, links, [FakeSolver(1), FakeSolver(2),
                                                        FakeSolver(3)])
        assert links.ready(Deadline(10)) == []
        for round_no, tau in ((0, 1), (1, 2)):
            total, divisor, stats = links.round(round_no, tau, weights, Deadline(10))
            assert divisor == 3
            np.testing.assert_array_equal(total, (weights + tau) + (weights + 2 * tau)
                                          + (weights + 3 * tau))
        links.end()
        for thread in threads:
            thread.join(10)
        assert [ends[p]["ended"] for p in range(3)] == ["segment over"] * 3
        exchange.close_segment()


def test_weighted_rounds_mean_by_the_iterations_each_worker_did():
    """Worker 0 does 5 iterations, worker 1 (stopped by its own clock) fewer: the
    mean is sum(n_i * w_i) / sum(n_i), computed exactly so in float32."""
    weights = np.linspace(-1, 1, 50, dtype=np.float32)
    with WeightExchange() as exchange:
        links = segment(exchange, 2)

        class Timed(FakeSolver):
            def train(self, solver, round_no, tau, flat, stopped):
                return super().train(solver, round_no, 2, flat, stopped)  # time was up
        start_workers(exchange, links, [FakeSolver(0.5), Timed(0.25)])
        links.ready(Deadline(10))
        total, divisor, stats = links.round(0, 5, weights, Deadline(10), weighted=True)
        assert [s["iterations"] for s in stats] == [5, 2] and divisor == 7
        by_hand = (weights + np.float32(2.5)) * np.float32(5)
        by_hand += (weights + np.float32(0.5)) * np.float32(2)
        np.testing.assert_array_equal(total, by_hand)
        links.end()
        exchange.close_segment()


def test_a_quorum_round_closes_without_the_late_worker_which_trains_the_next():
    weights = np.zeros(20, np.float32)
    with WeightExchange() as exchange:
        links = segment(exchange, 3)
        late = FakeSolver(100, pace=0.05)  # 50 iterations would take 2.5 s
        threads, ends = start_workers(exchange, links, [FakeSolver(1), late, FakeSolver(3)])
        links.ready(Deadline(10))
        for round_no in range(3):
            total, divisor, stats = links.round(round_no, 50, weights, Deadline(10), quorum=2)
            assert divisor == 2 and [s["dropped"] for s in stats] == [False, True, False]
            np.testing.assert_array_equal(total, np.full(20, 50 * 1 + 50 * 3, np.float32))
            assert 1 <= stats[1]["iterations"] < 50  # it stopped, and trains every round
        links.end()
        for thread in threads:
            thread.join(10)
        assert ends[1] == {"ended": "segment over", "rounds": 3}
        exchange.close_segment()


def test_a_workers_error_comes_back_as_its_own_and_a_lost_link_as_link_broken():
    weights = np.zeros(10, np.float32)
    with WeightExchange() as exchange:
        links = segment(exchange, 2)
        start_workers(exchange, links, [FakeSolver(1), FakeSolver(1, fail_in_round=1)])
        links.ready(Deadline(10))
        links.round(0, 1, weights, Deadline(10))
        with pytest.raises(DataError, match=r"on a worker \(partition 1\): record 7 is bad"):
            links.round(1, 1, weights, Deadline(10))
        exchange.close_segment()
        links = segment(exchange, 2)
        start_workers(exchange, links, [FakeSolver(1), FakeSolver(1)])
        links.ready(Deadline(10))
        links._conns[1].close()  # as if its process had died
        with pytest.raises(LinkBroken, match="partition 1"):
            links.round(0, 1, weights, Deadline(10))
        exchange.close_segment()


def test_a_round_that_gets_no_results_times_out_naming_the_partition():
    weights = np.zeros(10, np.float32)
    with WeightExchange() as exchange:
        links = segment(exchange, 1)
        start_workers(exchange, links, [FakeSolver(1, pace=5)])
        links.ready(Deadline(10))
        with pytest.raises(RoundTimeoutError, match="partition 0 sent nothing.*deadline of 1 s"):
            links.round(0, 1, weights, Deadline(1))
        exchange.close_segment()
