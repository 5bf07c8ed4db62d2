"""The link over real loopback TLS: the driver's end (DriverLinks, attached by the
LinkListener) and the workers' ends (WorkerLink) as the stages use them, workers in
threads, no Spark."""
from __future__ import annotations

import secrets
import socket

import numpy as np
import pytest
from link_workers import FakeSolver, stage

import pysparknet.spark.transport as transport
from pysparknet.errors import DataError, RoundTimeoutError, TransportError
from pysparknet.spark.link_driver_end import DriverLinks
from pysparknet.spark.link_protocol import LinkBroken
from pysparknet.spark.link_worker_end import WorkerLink
from pysparknet.spark.sockets import Deadline
from pysparknet.spark.transport import HELLO, MAGIC, LinkListener, Ticket


def test_rounds_sum_in_partition_order_and_the_stage_ends_cleanly():
    weights = np.arange(100, dtype=np.float32)
    with LinkListener() as listener:
        links, threads, ends = stage(listener, [FakeSolver(1), FakeSolver(2), FakeSolver(3)])
        assert links.ready(Deadline(10)) == []
        for round_no, tau in ((0, 1), (1, 2)):
            total, divisor, stats = links.round(round_no, tau, weights, Deadline(10))
            assert divisor == 3 and [s.index for s in stats] == [0, 1, 2]
            np.testing.assert_array_equal(total, (weights + tau) + (weights + 2 * tau)
                                          + (weights + 3 * tau))
        links.close()
        for thread in threads:
            thread.join(10)
        assert ends == {0: 2, 1: 2, 2: 2}


def test_weighted_rounds_mean_by_the_iterations_each_worker_did():
    """Worker 0 does 5 iterations, worker 1 (stopped by its own clock) 2: the mean is
    sum(n_i * w_i) / sum(n_i), computed exactly so in float32."""
    weights = np.linspace(-1, 1, 50, dtype=np.float32)
    with LinkListener() as listener:
        links, _, _ = stage(listener, [FakeSolver(0.5), FakeSolver(0.25, iterations=2)])
        links.ready(Deadline(10))
        total, divisor, stats = links.round(0, 5, weights, Deadline(10), weighted=True)
        assert [s.iterations for s in stats] == [5, 2] and divisor == 7
        by_hand = (weights + np.float32(2.5)) * np.float32(5)
        by_hand += (weights + np.float32(0.5)) * np.float32(2)
        np.testing.assert_array_equal(total, by_hand)
        links.close()


def test_a_quorum_round_closes_without_the_late_worker_which_trains_the_next():
    weights = np.zeros(20, np.float32)
    with LinkListener() as listener:
        late = FakeSolver(100, pace=0.05)  # 50 iterations would take 2.5 s
        links, threads, ends = stage(listener, [FakeSolver(1), late, FakeSolver(3)])
        links.ready(Deadline(10))
        for round_no in range(3):
            total, divisor, stats = links.round(round_no, 50, weights, Deadline(10), quorum=2)
            assert divisor == 2 and [s.dropped for s in stats] == [False, True, False]
            np.testing.assert_array_equal(total, np.full(20, 50 * 1 + 50 * 3, np.float32))
            assert 1 <= stats[1].iterations < 50  # it stopped, and trains every round
        links.close()
        for thread in threads:
            thread.join(10)
        assert ends[1] == 3


def test_a_workers_error_comes_back_as_its_own_and_a_lost_link_as_link_broken():
    weights = np.zeros(10, np.float32)
    with LinkListener() as listener:
        links, _, _ = stage(listener, [FakeSolver(1), FakeSolver(1, fail_in_round=1)])
        links.ready(Deadline(10))
        links.round(0, 1, weights, Deadline(10))
        with pytest.raises(DataError, match=r"on a worker \(partition 1\): record 7 is bad"):
            links.round(1, 1, weights, Deadline(10))
        links.close()
        links, _, _ = stage(listener, [FakeSolver(1), FakeSolver(1)])
        links.ready(Deadline(10))
        links.conn(1).close()  # as if its process had died
        with pytest.raises(LinkBroken, match="partition 1"):
            links.round(0, 1, weights, Deadline(10))
        links.close()


def test_a_round_that_gets_no_results_times_out_naming_the_partition():
    weights = np.zeros(10, np.float32)
    with LinkListener() as listener:
        links, _, _ = stage(listener, [FakeSolver(1, pace=5)])
        links.ready(Deadline(10))
        with pytest.raises(RoundTimeoutError,
                           match="partition 0 on 127.0.0.1 sent nothing.*deadline of 1 s"):
            links.round(0, 1, weights, Deadline(1))
        links.close()


def test_a_second_link_for_a_partition_is_refused_while_the_first_holds_it():
    """An executor killed mid-round can leave its Python worker on, still linked; a
    retry of its task must not take the partition over: its link is closed."""
    with LinkListener() as listener:
        links, _, _ = stage(listener, [FakeSolver(1)])
        links.ready(Deadline(10))
        retry = WorkerLink.open(listener.ticket(links.serial, 5), 0)  # taken... then closed
        with retry, pytest.raises((OSError, TransportError)):
            retry.ready()
            list(retry.rounds(lambda n: np.empty(n // 4, np.float32)))
        total, _, _ = links.round(0, 1, np.zeros(4, np.float32), Deadline(10))
        np.testing.assert_array_equal(total, np.ones(4, np.float32))  # the first trained
        links.close()


def test_wrong_secret_stage_or_partition_gets_no_link():
    with LinkListener(tls=False) as listener:
        links = DriverLinks(secrets.randbits(63), 2)
        listener.expect(links.attach)
        for secret, serial, part in ((b"x" * 32, links.serial, 0),
                                     (listener.secret, links.serial + 1, 0),
                                     (listener.secret, links.serial, 2)):
            with socket.create_connection(listener.address) as conn:
                conn.sendall(HELLO.pack(MAGIC, secret, serial, part))
                conn.settimeout(10)
                reply = conn.recv(64)
                assert reply in (b"", b"\x00" * 7 + b"\x01")  # at most TAKEN, then closed
                assert conn.recv(64) == b""
        with pytest.raises(RoundTimeoutError, match=r"partition\(s\) \[0, 1\] did not connect"):
            links.ready(Deadline(1))
        links.close()


def test_unreachable_driver_is_a_clear_error(monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = probe.getsockname()
    monkeypatch.setattr(transport, "CONNECT_S", 1.0)
    with pytest.raises(TransportError, match="got no answer from the driver.*spark.driver.host"):
        WorkerLink.open(Ticket(address, b"t" * 32, 0, None), 0)
