"""The driver <-> worker weight exchange over real loopback sockets."""
import socket
import threading
import time

import numpy as np
import pytest

from pysparknet.spark.transport import (_COUNT, _HELLO, _MAGIC, TransportError, WeightExchange,
                                        recv_exactly, worker_exchange)


def run_worker(exchange, round_no, part, add, results):
    def train(flat):
        flat += add
        return flat, f"worker {part}"
    results[part] = worker_exchange(exchange.address, exchange.token, round_no, part,
                                    lambda n: np.empty(n // 4, np.float32), train)


def test_round_sums_in_partition_order():
    weights = np.arange(1000, dtype=np.float32)
    with WeightExchange() as exchange:
        for round_no in range(2):  # the exchange serves round after round
            exchange.start_round(round_no, weights)
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


def test_wrong_token_or_round_gets_nothing():
    weights = np.ones(10, np.float32)
    with WeightExchange() as exchange:
        exchange.start_round(5, weights)
        for token, round_no in ((b"x" * 16, 5), (exchange.token, 4)):
            with socket.create_connection(exchange.address) as conn:
                conn.sendall(_HELLO.pack(_MAGIC, token, round_no, 0))
                conn.settimeout(10)
                assert conn.recv(8) == b""  # closed without a byte of the weights


def _attempt_with_weights(exchange, part=0):
    """A hand-driven task attempt that has said hello and received the weights."""
    conn = socket.create_connection(exchange.address)
    conn.sendall(_HELLO.pack(_MAGIC, exchange.token, 0, part))
    (count,) = _COUNT.unpack(conn.recv(8, socket.MSG_WAITALL))
    recv_exactly(conn, memoryview(bytearray(count)))
    return conn, count


def _gathering(exchange, weights):
    """Start round 0 with `weights` and a gather of one partition on a thread."""
    exchange.start_round(0, weights)
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
        exchange.start_round(0, np.zeros(4, np.float32))
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
    with pytest.raises(TransportError, match="cannot reach the driver's weight exchange"):
        worker_exchange(address, b"t" * 16, 0, 0, None, None)


def test_a_second_attempt_of_a_summed_task_is_acknowledged_not_left_hanging():
    """An executor killed mid-round leaves its Python worker training on (it talks to
    the driver, not to the dead JVM); Spark's retry of the task connects too. The
    first result to arrive counts; the other is taken, acknowledged and dropped."""
    weights = np.zeros(1000, np.float32)
    with WeightExchange() as exchange:
        gathered, gather = _gathering(exchange, weights)
        orphan, count = _attempt_with_weights(exchange)  # the first attempt
        with orphan:
            time.sleep(0.3)  # the gather now waits on this connection
            retry_may_send, results = threading.Event(), {}

            def retry_train(flat):
                retry_may_send.wait(10)
                return flat + 2, "retry"
            retry = threading.Thread(target=lambda: results.update(r=worker_exchange(
                exchange.address, exchange.token, 0, 0,
                lambda n: np.empty(n // 4, np.float32), retry_train)))
            retry.start()
            time.sleep(0.3)  # the retry has its weights and trains
            orphan.sendall(_COUNT.pack(count) + np.full(1000, 1, np.float32).tobytes())
            assert orphan.recv(1) == b"\x01"
        gather.join(timeout=10)
        np.testing.assert_array_equal(gathered["t"], np.ones(1000, np.float32))
        retry_may_send.set()
        retry.join(timeout=10)
        assert not retry.is_alive() and results["r"] == "retry"
