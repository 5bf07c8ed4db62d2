"""The workers' ring (exchange='ring') on real sockets: links formed with TLS and
the run secret, a ring allreduce that sums exactly what the star sums, to the bit
run after run, and a ring that refuses whoever is not in the run."""
from __future__ import annotations

import secrets
import socket
import threading

import numpy as np
import pytest

from pysparknet.errors import TransportError
from pysparknet.spark.exchange_tls import RingKeys
from pysparknet.spark.ring_links import RING_HELLO, RING_MAGIC, RingLinks
from pysparknet.spark.ring_reduce import RingReduce, chunk_bounds, owned_chunk
from pysparknet.spark.sockets import Deadline
from pysparknet.spark.wire_types import WireCast, wire_dtype


def form_ring(size: int, keys: RingKeys, secret: bytes, serial: int = 7) -> list:
    rings = [RingLinks(keys, secret, serial, rank, "127.0.0.1") for rank in range(size)]
    peers = [list(ring.address) for ring in rings]
    errors: list = []

    def join(ring):
        try:
            ring.join(peers, Deadline(30))
        except Exception as error:  # noqa: BLE001 - asserted below
            errors.append(error)
    threads = [threading.Thread(target=join, args=(ring,)) for ring in rings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return rings


def allreduce(rings: list, vectors: list, wire=None) -> list:
    """Every rank's vector after the allreduce, and the chunks each owned as it
    travels to the driver."""
    size = len(rings)
    reducers = [RingReduce(ring, rank, size, wire) for rank, ring in enumerate(rings)]

    def run(rank):
        owned[rank] = reducers[rank].allreduce(vectors[rank]).copy()
    owned: list = [None] * size
    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for reducer in reducers:
        reducer.close()
    return owned


@pytest.mark.parametrize("size, tls", [(2, True), (3, True), (4, False)])
def test_the_ring_sums_like_the_star_and_the_same_bits_every_time(size, tls):
    keys, secret = RingKeys.issue(tls), secrets.token_bytes(32)
    rng = np.random.default_rng(size)
    inputs = [rng.standard_normal(3_000_001).astype(np.float32) for _ in range(size)]
    star = np.sum(np.stack(inputs), axis=0, dtype=np.float64)
    results = []
    for _ in range(2):
        rings = form_ring(size, keys, secret)
        vectors = [v.copy() for v in inputs]
        owned = allreduce(rings, vectors)
        for ring in rings:
            ring.close()
        for vector in vectors[1:]:  # every rank holds the same sum
            assert np.array_equal(vector, vectors[0])
        # the chunks the driver gets make the whole sum
        whole = np.empty_like(vectors[0])
        for rank, chunk in enumerate(owned):
            start, end = chunk_bounds(whole.size, size)[owned_chunk(rank, size)]
            whole[start:end] = chunk
        assert np.array_equal(whole, vectors[0])
        results.append(vectors[0])
    assert np.array_equal(results[0], results[1])  # a fixed order of summation
    np.testing.assert_allclose(results[0], star, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("wire", ["bfloat16", "float16"])
def test_a_16_bit_wire_sums_in_float32_and_every_rank_agrees(wire):
    size, keys, secret = 3, RingKeys.issue(True), secrets.token_bytes(32)
    rng = np.random.default_rng(5)
    updates = [(rng.standard_normal(1_000_003) * 1e-3).astype(np.float32) for _ in range(size)]
    exact = np.sum(np.stack(updates), axis=0, dtype=np.float64)
    rings = form_ring(size, keys, secret)
    vectors = [u.copy() for u in updates]
    owned = allreduce(rings, vectors, wire_dtype(wire))
    for ring in rings:
        ring.close()
    for vector in vectors[1:]:
        assert np.array_equal(vector, vectors[0])
    whole = np.empty_like(vectors[0])
    for rank, chunk in enumerate(owned):
        assert chunk.dtype == wire_dtype(wire)  # half the bytes to the driver too
        start, end = chunk_bounds(whole.size, size)[owned_chunk(rank, size)]
        whole[start:end] = chunk
    assert np.array_equal(whole, vectors[0])
    # K-1 roundings on the way and one at the end: a few units of the last place
    # (8 bits of mantissa for bfloat16, 11 for float16)
    bits = 8 if wire == "bfloat16" else 11
    relative = np.linalg.norm(vectors[0] - exact) / np.linalg.norm(exact)
    assert relative < 2.0 ** -bits
    assert relative > 0  # it did travel rounded


@pytest.mark.parametrize("finite", [True, False], ids=["finite", "with-nan-and-inf"])
def test_the_bfloat16_shifts_round_as_ml_dtypes_does(finite):
    """Every float32 bit pattern the generator draws (subnormals, ties, the largest
    floats; NaNs and infinities when not `finite`) casts to the same bfloat16 bits as
    ml_dtypes' cast, and back to the same float32."""
    bfloat16 = wire_dtype("bfloat16")
    cast = WireCast(bfloat16, 1 << 16)
    values = np.random.default_rng(11).integers(0, 2 ** 32, 1 << 16, np.uint32).view(np.float32)
    if finite:
        values = np.where(np.isfinite(values), values, np.float32(1.5))
    values[:4] = [1.00390625, 1.01171875, 3.4028235e38, -0.0]  # ties to even; to inf
    wire, back = np.empty(values.size, bfloat16), np.empty(values.size, np.float32)
    cast.to_wire(values, wire)
    cast.from_wire(wire, back)
    with np.errstate(invalid="ignore"):
        expected = values.astype(bfloat16)
    assert np.array_equal(wire.view(np.uint16), expected.view(np.uint16))
    assert np.array_equal(back.view(np.uint32), expected.astype(np.float32).view(np.uint32))


def test_a_stranger_is_refused_and_the_ring_still_forms():
    keys, secret = RingKeys.issue(True), secrets.token_bytes(32)
    rings = [RingLinks(keys, secret, 7, rank, "127.0.0.1") for rank in range(2)]
    # A ring hello in clear to a TLS ring port, with a wrong secret: closed.
    with socket.create_connection(rings[0].address, timeout=5) as stranger:
        stranger.sendall(RING_HELLO.pack(RING_MAGIC, b"x" * 32, 7, 1))
        peers = [list(ring.address) for ring in rings]
        threads = [threading.Thread(target=ring.join, args=(peers, Deadline(30)))
                   for ring in rings]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        stranger.settimeout(5)
        try:
            answer = stranger.recv(1)
        except ConnectionResetError:
            answer = b""
        assert answer == b""  # closed without a word
    vectors = [np.ones(10, np.float32), np.full(10, 2, np.float32)]
    allreduce(rings, vectors)
    assert np.array_equal(vectors[0], np.full(10, 3, np.float32))
    for ring in rings:
        ring.close()


def test_a_peer_that_never_comes_fails_within_the_deadline():
    keys, secret = RingKeys.issue(True), secrets.token_bytes(32)
    ring = RingLinks(keys, secret, 7, 0, "127.0.0.1")
    absent = RingLinks(keys, secret, 7, 1, "127.0.0.1")  # listens, never joins
    with pytest.raises(TransportError, match="rank 1 .*did not"):
        ring.join([list(ring.address), list(absent.address)], Deadline(3))
    ring.close()
    absent.close()


@pytest.mark.parametrize("wire", [None, "bfloat16"])
def test_a_peer_gone_mid_allreduce_fails_it_instead_of_hanging(wire):
    """Rank 1 takes part in the first pieces, then its process is gone (its links
    close): rank 0's allreduce raises, its sender ends, nothing waits on."""
    keys, secret = RingKeys.issue(True), secrets.token_bytes(32)
    rings = form_ring(2, keys, secret)
    reducer = RingReduce(rings[0], 0, 2, wire and wire_dtype(wire))
    outcome: list = []

    def rank_0():
        try:
            reducer.allreduce(np.ones(8_000_003, np.float32))
            outcome.append("finished")
        except Exception as error:  # noqa: BLE001 - asserted below
            outcome.append(error)
    worker = threading.Thread(target=rank_0)
    worker.start()
    piece = np.empty(1 << 16, np.uint8)
    rings[1].left.recv_into(piece)  # rank 0 has begun sending
    rings[1].close()
    worker.join(60)
    reducer.close()
    rings[0].close()
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], (TransportError, OSError)), outcome
