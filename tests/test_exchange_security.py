"""The links against a fake driver, slow talkers, floods and stuck rounds (real sockets)."""
import socket
import threading
import time

import numpy as np
import pytest
from link_workers import FakeSolver, stage

from pysparknet import RoundTimeoutError, TransportError
from pysparknet.spark.link_worker_end import WorkerLink
from pysparknet.spark.sockets import Deadline
from pysparknet.spark.transport import LinkListener, Ticket


def test_a_worker_refuses_a_driver_without_the_run_certificate():
    with LinkListener() as real, LinkListener() as fake:
        fake.expect(lambda *_: True)  # it would take any link
        # The task says: the run's certificate and secret, but the address is the fake's.
        ticket = Ticket(fake.address, real.secret, 0, real.certificate, None)
        with pytest.raises(TransportError, match="did not present this run's certificate"):
            WorkerLink.open(ticket, 0)


def test_a_plain_tcp_fake_driver_never_sees_the_secret():
    with LinkListener() as real, socket.create_server(("127.0.0.1", 0)) as fake:
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
            WorkerLink.open(ticket, 0)
        thread.join(timeout=10)
    assert received[:1] == b"\x16"  # a TLS ClientHello, nothing else
    assert real.secret not in bytes(received)


def test_a_slow_talker_is_cut_off_at_the_handshake_deadline():
    with LinkListener(handshake_s=1.0) as listener:
        listener.expect(lambda *_: True)
        with socket.create_connection(listener.address) as trickle:
            trickle.settimeout(10)
            tic = time.monotonic()
            trickle.sendall(b"\x16")  # one byte of a handshake, then silence
            assert trickle.recv(1) == b""  # closed by the driver
            assert time.monotonic() - tic < 5


def test_a_flood_of_idle_connections_leaves_the_listener_serving():
    """More connections than admitted at once: the excess is closed, not queued on a
    thread each; a real worker that arrives meanwhile gets in by retrying."""
    weights = np.arange(1000, dtype=np.float32)
    with LinkListener(handshake_s=2.0, max_pending=16) as listener:
        flood = [socket.create_connection(listener.address) for _ in range(200)]
        links, threads, ends = stage(listener, [FakeSolver(1)], deadline_s=60)
        links.ready(Deadline(60))
        total, _, _ = links.round(0, 1, weights, Deadline(60))
        links.close()
        for conn in flood:
            conn.close()
    np.testing.assert_array_equal(total, weights + 1)
    threads[0].join(10)
    assert ends == {0: 1}


def test_a_missing_first_partition_is_the_timeout_named_not_an_abort():
    """Partitions 0 and 1 are read side by side: when 0's result never comes, the
    round fails with the deadline naming it, while 1's was already in."""
    weights = np.zeros(100, np.float32)
    with LinkListener() as listener:
        links, _, _ = stage(listener, [FakeSolver(1, pace=10), FakeSolver(1)])
        links.ready(Deadline(10))
        tic = time.monotonic()
        with pytest.raises(RoundTimeoutError,
                           match="partition 0 on 127.0.0.1 sent nothing.*deadline of 2 s"):
            links.round(0, 1, weights, Deadline(1.5))
        assert time.monotonic() - tic < 10
        links.close()


def test_listens_on_the_bind_address_and_advertises_the_host():
    """spark.driver.host may be a name or address the driver cannot bind (NAT, a
    container's published name): the listener binds bindAddress, advertises host."""
    with LinkListener("127.0.0.1", advertise="192.0.2.7") as listener:
        assert listener.address[0] == "192.0.2.7"
        with socket.create_connection(("127.0.0.1", listener.address[1]), timeout=5):
            pass


def test_an_unbindable_address_names_both_settings():
    with pytest.raises(TransportError, match="spark.driver.bindAddress.*spark.driver.host"):
        LinkListener("192.0.2.7", advertise="192.0.2.7")
