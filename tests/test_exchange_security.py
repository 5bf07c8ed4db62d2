"""The weight exchange against a fake driver, slow talkers and stuck rounds (real sockets)."""
import socket
import threading
import time

import numpy as np
import pytest

from pysparknet import RoundTimeoutError, TransportError
from pysparknet.spark.transport import Ticket, WeightExchange, worker_exchange


def _never_called(*_):
    raise AssertionError("a worker trained for a driver it should have refused")


def test_a_worker_refuses_a_driver_without_the_run_certificate():
    weights = np.ones(100, np.float32)
    with WeightExchange() as real, WeightExchange() as fake:
        fake.start_round(0, weights, 1)
        # The task says: the run's certificate and secret, but the address is the fake's.
        ticket = Ticket(fake.address, real.secret, 0, real.certificate, None)
        with pytest.raises(TransportError, match="did not present this run's certificate"):
            worker_exchange(ticket, 0, _never_called, _never_called)


def test_a_plain_tcp_fake_driver_never_sees_the_secret():
    with WeightExchange() as real, socket.create_server(("127.0.0.1", 0)) as fake:
        received = bytearray()

        def listen():
            conn, _ = fake.accept()
            with conn:
                conn.settimeout(5)
                try:
                    while chunk := conn.recv(65536):
                        received.extend(chunk)
                        conn.sendall(b"\x00" * 64)  # answer anything
                except OSError:
                    pass
        thread = threading.Thread(target=listen)
        thread.start()
        ticket = Ticket(fake.getsockname(), real.secret, 0, real.certificate, None)
        with pytest.raises((TransportError, OSError)):
            worker_exchange(ticket, 0, _never_called, _never_called)
        thread.join(timeout=10)
    assert received[:1] == b"\x16"  # a TLS ClientHello, nothing else
    assert real.secret not in bytes(received)


def test_a_slow_talker_is_cut_off_at_the_handshake_deadline():
    with WeightExchange(handshake_s=1.0) as exchange:
        exchange.start_round(0, np.zeros(4, np.float32), 1)
        with socket.create_connection(exchange.address) as trickle:
            trickle.settimeout(10)
            tic = time.monotonic()
            trickle.sendall(b"\x16")  # one byte of a handshake, then silence
            assert trickle.recv(1) == b""  # closed by the driver
            assert time.monotonic() - tic < 5


def test_a_flood_of_idle_connections_leaves_the_exchange_serving():
    """More connections than admitted at once: the excess is closed, not queued on a
    thread each; a real worker that arrives meanwhile gets in by retrying."""
    weights = np.arange(1000, dtype=np.float32)
    with WeightExchange(handshake_s=2.0, max_pending=16) as exchange:
        exchange.start_round(0, weights, 1)
        flood = [socket.create_connection(exchange.address) for _ in range(200)]
        results = {}
        worker = threading.Thread(target=lambda: results.update(w=worker_exchange(
            exchange.ticket(0, 30), 0, lambda n: np.empty(n // 4, np.float32),
            lambda flat: (flat + 1, "trained"))))
        worker.start()
        total = exchange.gather(1, weights.size, deadline_s=60)
        worker.join(timeout=30)
        for conn in flood:
            conn.close()
    np.testing.assert_array_equal(total, weights + 1)
    assert results["w"] == "trained"


def test_a_round_whose_results_do_not_come_fails_at_its_deadline():
    with WeightExchange() as exchange:
        exchange.start_round(3, np.zeros(4, np.float32), 2)
        tic = time.monotonic()
        with pytest.raises(RoundTimeoutError, match=r"partition\(s\) \[0, 1\].*deadline of 1 s"):
            exchange.gather(2, 4, deadline_s=1.0)
        assert time.monotonic() - tic < 5


def test_listens_on_the_bind_address_and_advertises_the_host():
    """spark.driver.host may be a name or address the driver cannot bind (NAT, a
    container's published name): the exchange binds bindAddress, advertises host."""
    with WeightExchange("127.0.0.1", advertise="192.0.2.7") as exchange:
        assert exchange.address[0] == "192.0.2.7"
        with socket.create_connection(("127.0.0.1", exchange.address[1]), timeout=5):
            pass


def test_an_unbindable_address_names_both_settings():
    with pytest.raises(TransportError, match="spark.driver.bindAddress.*spark.driver.host"):
        WeightExchange("192.0.2.7", advertise="192.0.2.7")


def test_a_missing_first_partition_is_the_timeout_named_not_an_abort():
    """Partitions 0 and 1 are read side by side: when 0 never comes, the round fails
    with the deadline naming it, while 1's result was already in."""
    weights = np.zeros(100, np.float32)
    with WeightExchange() as exchange:
        exchange.start_round(0, weights, 2)
        results = {}
        worker = threading.Thread(target=lambda: results.update(w=worker_exchange(
            exchange.ticket(0, 5), 1, lambda n: np.empty(n // 4, np.float32),
            lambda flat: (flat + 1, "sent"))))
        worker.start()
        with pytest.raises(RoundTimeoutError, match=r"partition\(s\) \[0\]"):
            exchange.gather(2, weights.size, deadline_s=1.5)
        worker.join(timeout=10)
    assert results == {"w": "sent"}  # partition 1 was taken and acknowledged
