"""Real fits on a local-cluster with Spark's security on, probed as an attacker and
an unlucky user would: a reader of the network, a replayer, a connection flood,
bad numbers in the data, a checkpoint folder that cannot be written."""
from __future__ import annotations

import os
import resource
import secrets
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from pysparknet import DataError, zoo
from pysparknet.spark import SparkNetTrainer, local_spark
from pysparknet.spark.checkpoint import CheckpointError

from sniffer import LoopbackSniffer, can_sniff

SECURE = {"spark.authenticate": "true", "spark.authenticate.secret": secrets.token_hex(16),
          "spark.network.crypto.enabled": "true", "spark.io.encryption.enabled": "true",
          "spark.task.maxFailures": "4"}
ROUNDS, TAU, SEED = 6, 5, 11


@pytest.fixture(scope="module")
def spark():
    session = local_spark("local-cluster[2,1,1024]", conf=SECURE)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def data(fmnist_train):
    return fmnist_train[0][:2000], fmnist_train[1][:2000]


def _trainer(spark, **options):
    return SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2, tau=TAU,
                           seed=SEED, **options)


def _fit(spark, data, trainer=None, **fit_options):
    x, y = data
    trainer = trainer or _trainer(spark)
    rdd = spark.sparkContext.parallelize(list(zip(x, y.tolist())), 2)
    return trainer.fit(rdd, rounds=ROUNDS, progress=False, **fit_options)


def _fit_in_thread(spark, data, trainer, timeout_s, **fit_options):
    """A fit that must end: a hang fails the test instead of the suite."""
    outcome = {}

    def fit():
        try:
            outcome["result"] = _fit(spark, data, trainer, **fit_options)
        except Exception as error:  # noqa: BLE001 - re-raised below
            outcome["error"] = error
    thread = threading.Thread(target=fit)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        spark.sparkContext.cancelAllJobs()
        pytest.fail(f"the fit hung (still running after {timeout_s} s)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


@pytest.fixture(scope="module")
def undisturbed(spark, data):
    return _fit(spark, data).weights.flat.copy()


def _windows(flat: np.ndarray, count: int = 16, size: int = 64) -> list[bytes]:
    """Byte windows of random-looking weights (not zero-filled biases)."""
    raw, found = flat[:100_000].tobytes(), []
    for offset in np.linspace(0, len(raw) - size, 200).astype(int):
        window = raw[offset - offset % 4: offset - offset % 4 + size]
        if len(set(window)) > 16:
            found.append(window)
    return found[:count]


class Replayer(threading.Thread):
    """Replays every captured worker connection to the exchange, then sends forged
    weights (all 7.0) as that partition's result."""

    def __init__(self, sniffer: LoopbackSniffer, weights_bytes: int):
        super().__init__(daemon=True)
        self.sniffer, self.weights_bytes = sniffer, weights_bytes
        self.stop, self.replayed, self.weights_received = threading.Event(), 0, 0

    def run(self) -> None:
        seen = set()
        while not self.stop.is_set():
            for port in self.sniffer.ports_receiving((b"\x16\x03", b"SNW")):
                for flow in self.sniffer.first_payloads_to(port):
                    if flow[:64] not in seen:
                        seen.add(flow[:64])
                        self._replay(port, flow)
            time.sleep(0.05)

    def _replay(self, port: int, flow: bytes) -> None:
        import socket
        first = flow[:56] if flow.startswith(b"SNW") else flow[:4096]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
                conn.sendall(first)
                self.replayed += 1
                reply = conn.recv(8)
                if len(reply) == 8 and struct.unpack("!Q", reply)[0] == self.weights_bytes:
                    self.weights_received += 1
                forged = np.full(self.weights_bytes // 4, 7.0, np.float32).tobytes()
                conn.sendall(struct.pack("!Q", self.weights_bytes) + forged)
        except OSError:
            pass


@pytest.mark.skipif(not can_sniff(), reason="reading the loopback interface needs CAP_NET_RAW")
def test_a_network_reader_sees_no_weights_and_injects_nothing(spark, data, undisturbed):
    trainer = _trainer(spark)
    start = trainer.driver_net.get_weights().flat.copy()  # what round 1 sends out
    windows = _windows(start)
    with LoopbackSniffer() as sniffer:
        attacker = Replayer(sniffer, start.nbytes)
        attacker.start()
        attacked = _fit(spark, data, trainer).weights.flat
        attacker.stop.set()
        attacker.join(timeout=10)
    assert attacker.replayed >= 2, "the attacker found no exchange traffic to replay"
    assert attacker.weights_received == 0
    assert not any(sniffer.contains(w) for w in windows), "weights crossed the network in clear"
    assert not sniffer.contains(b"SNW2"), "a hello crossed the network in clear"
    np.testing.assert_array_equal(attacked, undisturbed)  # nothing forged was averaged in

    # The control: the same reader does see the weights of an exchange without TLS.
    plain = _trainer(spark, tls=False)
    with LoopbackSniffer() as sniffer:
        _fit(spark, data, plain)
    assert sum(sniffer.contains(w) for w in windows) >= len(windows) // 2


FLOOD = r"""
import resource, socket, sys, threading, time
port = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

def trickle():  # one byte every 20 s on one connection
    for _ in range(30):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                for _ in range(30):
                    c.sendall(b"\x16"); time.sleep(20)
        except OSError:
            time.sleep(1)
threading.Thread(target=trickle, daemon=True).start()
for wave in range(20):  # 1,100 idle connections held 8 s, again and again
    held = []
    for _ in range(1100):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            pass
    print(f"wave {wave}: {len(held)} connections", flush=True)
    time.sleep(8)
    for c in held:
        c.close()
    time.sleep(1)
"""


def _own_listening_ports() -> set[int]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_a_connection_flood_and_a_trickle_during_a_fit_under_1024_files(spark, data, undisturbed):
    before = _own_listening_ports()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    flooder = None

    def flood_the_exchange():
        nonlocal flooder
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            new = _own_listening_ports() - before
            if new:
                flooder = subprocess.Popen([sys.executable, "-c", FLOOD, str(new.pop())],
                                           stdout=subprocess.PIPE, text=True)
                return
            time.sleep(0.05)
    watcher = threading.Thread(target=flood_the_exchange, daemon=True)
    watcher.start()
    first_wave = []

    def after_round(record):
        """Rounds 2-6 run under the flood: round 1 waits for its first wave (a fit of
        a few seconds would otherwise be over before the flood is up)."""
        if record["round"] == 1:
            watcher.join(timeout=120)
            if flooder is not None:
                first_wave.append(flooder.stdout.readline())
        return False
    try:
        result = _fit_in_thread(spark, data, _trainer(spark), timeout_s=400,
                                until=after_round)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        watcher.join(timeout=5)
        if flooder is not None:
            flooder.kill()
            waves = "".join(first_wave) + flooder.communicate()[0]
    assert flooder is not None, "the exchange's port never showed up"
    assert "1100 connections" in waves, waves  # the flood really held 1,100 at once
    np.testing.assert_array_equal(result.weights.flat, undisturbed)


def test_nan_in_the_records_is_bad_data_named_or_skipped(spark, data):
    x, y = data[0].astype(np.float32) / 255, data[1]
    x[1234, 5, 5] = np.nan
    x[77, 0, 0] = np.inf
    rdd = spark.sparkContext.parallelize(list(zip(x, y.tolist())), 2)
    with pytest.raises(DataError, match=r"partition [01], record (77|234): NaN or infinite"):
        _trainer(spark).fit(rdd, rounds=1, progress=False)
    with pytest.warns(UserWarning, match="skipped 2 bad record"):
        result = _trainer(spark).fit(rdd, rounds=2, progress=False, on_bad_record="skip")
    assert all(np.isfinite(h["loss"]) for h in result.history)


def test_an_unwritable_checkpoint_folder_fails_before_any_training(spark, data, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    metrics = tmp_path / "metrics.jsonl"
    tic = time.monotonic()
    with pytest.raises(CheckpointError, match="cannot write checkpoints"):
        _fit(spark, data, checkpoint_dir=tmp_path / "a-file" / "ckpt", metrics_path=metrics)
    assert not metrics.exists() or metrics.read_text() == ""  # no round ran
    assert time.monotonic() - tic < 10
