"""The driver <-> worker weight exchange over real loopback sockets."""
import socket
import threading
import time

import numpy as np
import pytest

from pysparknet.spark.transport import (_COUNT, _HELLO, _MAGIC, Ticket, TransportError,
                                        WeightExchange, recv_exactly, worker_exchange)


def run_worker(exchange, round_no, part, add, results):
    def train(flat):
        flat += add
        return flat, f"worker {part}"
    results[part] = worker_exchange(exchange.ticket(round_no), part,
                                    lambda n: np.empty(n // 4, np.float32), train)


def test_round_sums_in_partition_order():
    weights = np.arange(1000, dtype=np.float32)
    with WeightExchange() as exchange:
        for round_no in range(2):  # the exchange serves round after round
            exchange.start_round(round_no, weights, 3)
            results = {}
            workers = [threading.Thread(target=run_worker,
                                        args=(exchange, round_no, p, p + 1.0, results))
                       for p in (2, 0, 1)]  # connect out of order
            for w in workers:
                w.start()
            total = exchange.gather(3, weights.size)
            for w in workers:
                w.join()
            expected = (weights + 1) + (weights + 2) + (weights + 3)
            np.testing.assert_array_equal(total, expected)
            assert results == {0: "worker 0", 1: "worker 1", 2: "worker 2"}


def test_wrong_secret_round_or_partition_gets_nothing():
    weights = np.ones(10, np.float32)
    with WeightExchange(tls=False) as exchange:
        exchange.start_round(5, weights, 2)
        for secret, round_no, part in ((b"x" * 32, 5, 0), (exchange.secret, 4, 0),
                                       (exchange.secret, 5, 2)):
            with socket.create_connection(exchange.address) as conn:
                conn.sendall(_HELLO.pack(_MAGIC, secret, round_no, part))
                conn.settimeout(10)
                assert conn.recv(8) == b""  # closed without a byte of the weights


def _attempt_with_weights(exchange, part=0):
    """A hand-driven task attempt (TLS as a worker does it) that has said hello and
    received the weights."""
    from pysparknet.spark.transport import Deadline, _open
    conn = _open(exchange.ticket(0), Deadline(10))
    conn.sendall(_HELLO.pack(_MAGIC, exchange.secret, 0, part))
    count_bytes = bytearray(8)
    recv_exactly(conn, memoryview(count_bytes))
    (count,) = _COUNT.unpack(count_bytes)
    recv_exactly(conn, memoryview(bytearray(count)))
    return conn, count


def _gathering(exchange, weights):
    """Start round 0 with `weights` and a gather of one partition on a thread."""
    exchange.start_round(0, weights, 1)
    gathered = {}
    thread = threading.Thread(target=lambda: gathered.update(
        t=exchange.gather(1, weights.size)))
    thread.start()
    return gathered, thread


def test_broken_result_is_dropped_and_the_retry_counts():
    weights = np.zeros(100_000, np.float32)
    with WeightExchange() as exchange:
        gathered, thread = _gathering(exchange, weights)
        # A first attempt receives the weights, sends half its result and dies.
        conn, count = _attempt_with_weights(exchange)
        with conn:
            conn.sendall(_COUNT.pack(count) + np.full(50_000, 7, np.float32).tobytes())
        # Spark's retry of the task does the whole exchange.
        results = {}
        run_worker(exchange, 0, 0, 3.0, results)
        thread.join(timeout=30)
        np.testing.assert_array_equal(gathered["t"], np.full(100_000, 3, np.float32))


def test_abort_wakes_the_gather():
    with WeightExchange() as exchange:
        exchange.start_round(0, np.zeros(4, np.float32), 2)
        errors = []

        def gather():
            try:
                exchange.gather(2, 4)
            except TransportError as error:
                errors.append(error)
        thread = threading.Thread(target=gather)
        thread.start()
        exchange.abort()
        thread.join(timeout=10)
        assert not thread.is_alive() and "aborted" in str(errors[0])


def test_unreachable_driver_is_a_clear_error():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = probe.getsockname()
    ticket = Ticket(address, b"t" * 32, 0, None, deadline_s=None)
    import pysparknet.spark.transport as transport
    patience, transport.CONNECT_S = transport.CONNECT_S, 1.0
    try:
        with pytest.raises(TransportError, match="got no answer from the driver's weight "
                                                 "exchange.*spark.driver.host"):
            worker_exchange(ticket, 0, None, None)
    finally:
        transport.CONNECT_S = patience


def test_a_second_attempt_is_refused_while_the_first_lives_and_skips_once_summed():
    """An executor killed mid-round leaves its Python worker training on (it talks to
    the driver, not to the dead JVM); Spark's retry of the task connects too. One
    connection holds a partition: the retry is told the partition is busy and asks
    again until the first attempt's result is summed, then skips."""
    weights = np.zeros(1000, np.float32)
    with WeightExchange() as exchange:
        gathered, gather = _gathering(exchange, weights)
        orphan, count = _attempt_with_weights(exchange)  # the first attempt
        with orphan:
            results, retry_trained = {}, threading.Event()

            def retry_train(flat):
                retry_trained.set()
                return flat + 2, "retry"
            retry = threading.Thread(target=lambda: results.update(r=worker_exchange(
                exchange.ticket(0), 0, lambda n: np.empty(n // 4, np.float32), retry_train)))
            retry.start()
            time.sleep(1.5)  # the retry has asked (and been told: busy) at least once
            orphan.sendall(_COUNT.pack(count) + np.full(1000, 1, np.float32).tobytes())
            ack = bytearray(1)
            recv_exactly(orphan, memoryview(ack))
            assert ack == b"\x01"
        gather.join(timeout=10)
        np.testing.assert_array_equal(gathered["t"], np.ones(1000, np.float32))
        retry.join(timeout=10)
        assert not retry.is_alive() and results["r"] is None and not retry_trained.is_set()


def test_a_dead_first_attempt_gives_way_to_the_retry():
    weights = np.zeros(1000, np.float32)
    with WeightExchange() as exchange:
        gathered, gather = _gathering(exchange, weights)
        orphan, _ = _attempt_with_weights(exchange)
        orphan.close()  # its process died: the kernel closed the connection
        results = {}
        run_worker(exchange, 0, 0, 4.0, results)
        gather.join(timeout=10)
        np.testing.assert_array_equal(gathered["t"], np.full(1000, 4, np.float32))
