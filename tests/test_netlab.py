"""The network lab (scripts/netlab.py): real namespaces, veth links, tc, nft and Spark.

A lab of 2 worker hosts at 500 Mbit/s: the hosts reach each other and nothing else,
each link holds its rate with every link busy, a cut host is unreachable until
restored, teardown leaves nothing behind, and a LeNet SparkNet fit driven from the
driver host trains on executors that live in the worker hosts' namespaces.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from netlab_fixture import RATE_MBIT, lab, lab_unavailable, netlab, netlab_links  # noqa: F401
import netlab_tcp  # noqa: E402  (netlab_fixture put scripts/ on the path)

PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    print("connected")
except OSError as e:
    print(type(e).__name__, e)
"""


def _connect(lab, host, ip, port, timeout=2.0) -> str:
    """What a TCP connect from `host` to ip:port does: 'connected' or the error."""
    return lab.run_in(host, [lab.python, "-c", PROBE, ip, port, timeout], timeout=60).stdout


UDP_SINK = """
import select, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
n = 0
while True:  # counts until its stdin closes (or a minute passes)
    ready, _, _ = select.select([s, sys.stdin], [], [], 60)
    if s in ready:
        s.recv(2048)
        n += 1
    elif not ready or not sys.stdin.read(1):
        break
print(n, flush=True)
"""
UDP_SEND = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    s.sendto(b"x" * 64, (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.0002)
"""


def _udp_through(lab, src, dst, port, count=2000) -> float:
    """The fraction of `count` datagrams from src that reach dst."""
    sink = lab.popen_in(dst, [lab.python, "-c", UDP_SINK, lab.host(dst).ip, port],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout.readline().strip() == "ready"
        lab.run_in(src, [lab.python, "-c", UDP_SEND, lab.host(dst).ip, port, count])
        time.sleep(0.5)  # the last datagrams' way through the bridge
        out, _ = sink.communicate(input="", timeout=30)
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait(timeout=10)
    return int(out.split()[-1]) / count


def _listen_in(lab, host, port):
    """A listener on `host` (a one-line Python server), started and ready."""
    code = ("import socket,sys,time; s=socket.create_server((sys.argv[1],int(sys.argv[2])));"
            "print('ready',flush=True); time.sleep(120)")
    proc = lab.popen_in(host, [lab.python, "-c", code, lab.host(host).ip, port],
                        stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_hosts_reach_each_other(lab):
    listener = _listen_in(lab, "driver", 7001)
    try:
        for host in ["master", *[w.name for w in lab.workers]]:
            assert _connect(lab, host, lab.driver_ip, 7001) == "connected\n", host
    finally:
        listener.kill()
        listener.wait(timeout=10)


def test_no_route_out_of_the_lab(lab):
    # The root namespace's addresses (read only), loopback aside.
    root_addrs = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True)
    root_ips = {line.split()[3].split("/")[0] for line in root_addrs.stdout.splitlines()}
    root_ips.discard("127.0.0.1")
    for host in lab.hosts.values():
        routes = lab.run_in(host.name, ["ip", "-4", "route", "show", "table", "all"]).stdout
        assert "default" not in routes, (host.name, routes)
        addrs = lab.run_in(host.name, ["ip", "-4", "-o", "addr"]).stdout
        assert {line.split()[3] for line in addrs.splitlines()} <= {"127.0.0.1/8",
                                                                    f"{host.ip}/24"}
    for ip in root_ips | {"8.8.8.8", "198.19.0.1"}:
        assert "connected" not in _connect(lab, "w1", ip, 22, timeout=1), ip
    # The root namespace's own loopback (where a Spark on 127.0.0.1 would listen).
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert "connected" not in _connect(lab, "w1", "127.0.0.1", port)


def test_every_link_holds_its_rate_with_all_busy(lab):
    """Each worker sends to the next at once (every link loaded both ways): each
    transfer reaches 90% of the shaped rate (TCP over Ethernet tops out near 95%).
    The one timing assertion, as issue 25 asks; measured twice before failing."""
    for attempt in range(2):
        results = netlab_tcp.measure(lab, netlab_tcp.ring_pairs(lab), seconds=2)
        if all(r["fraction"] >= 0.90 for r in results):
            break
    assert all(r["fraction"] >= 0.90 for r in results), results
    assert all(r["fraction"] <= 1.02 for r in results), results  # shaped, not loopback


def test_cut_host_is_unreachable_until_restored(lab):
    listener = _listen_in(lab, "driver", 7002)
    try:
        lab.cut("w1")
        assert "timed out" in _connect(lab, "w1", lab.driver_ip, 7002, timeout=1)
        assert "connected" in _connect(lab, "w2", lab.driver_ip, 7002)
        lab.restore("w1")
        lab.cut_to_driver("w2", direction="out")
        assert "timed out" in _connect(lab, "w2", lab.driver_ip, 7002, timeout=1)
        lab.cut_to_driver("w2", direction="in")  # only the driver's packets to w2 drop
        assert _udp_through(lab, "w2", "driver", 7003) == 1.0
        assert _udp_through(lab, "driver", "w2", 7003) == 0.0
        lab.restore("w2")
        lab.link_down("w1")
        assert "connected" not in _connect(lab, "w1", lab.driver_ip, 7002, timeout=1)
        lab.link_up("w1")
        for host in ("w1", "w2"):
            assert _connect(lab, host, lab.driver_ip, 7002) == "connected\n", host
    finally:
        lab.restore("w1")
        lab.restore("w2")
        listener.kill()
        listener.wait(timeout=10)


def test_loss_drops_packets_and_a_missing_netem_is_a_clear_error():
    if lab_unavailable():
        pytest.skip(lab_unavailable())
    with netlab.Lab(k=1, rate_mbit=100) as small:
        if netlab_links.has_qdisc("netem"):
            small.shape("w1", rate_mbit=100, delay_ms=5)
        else:
            with pytest.raises(netlab.LabUnsupported, match="netem"):
                small.shape("w1", rate_mbit=100, delay_ms=5)
        small.shape("w1", loss=0.3)  # nft on the bridge drops 30% of w1's packets each way
        assert 0.55 < _udp_through(small, "w1", "driver", 7004) < 0.85
        small.shape("w1", loss=0)
        assert _udp_through(small, "w1", "driver", 7004) == 1.0


def test_teardown_leaves_nothing_even_after_a_failure():
    if lab_unavailable():
        pytest.skip(lab_unavailable())
    tag = None
    with pytest.raises(RuntimeError, match="boom"):
        with netlab.Lab(k=1) as small:
            tag = small.tag
            sleeper = small.popen_in("w1", ["sleep", "300"])
            assert any(ns.startswith(tag) for ns in netlab_links.namespaces())
            raise RuntimeError("boom")
    assert sleeper.wait(timeout=10) is not None
    assert not [ns for ns in netlab_links.namespaces() if ns.startswith(tag + "-")]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert tag not in listed


def test_netlab_sh_up_status_down():
    if lab_unavailable():
        pytest.skip(lab_unavailable())
    sh = [str(Path(netlab.ROOT) / "scripts" / "netlab.sh")]
    up = subprocess.run([*sh, "up", "1", "100"], capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    about = json.loads(up.stdout[:up.stdout.rindex("}") + 1])
    try:
        assert about["hosts"]["w1"]["ip"] == "198.18.0.11" and about["rate_mbit"] == 100
        status = subprocess.run([*sh, "status"], capture_output=True, text=True, timeout=60)
        assert f"{about['tag']}: 4 namespaces" in status.stdout
    finally:
        down = subprocess.run([*sh, "down", about["tag"]], capture_output=True, text=True,
                              timeout=120)
    assert down.returncode == 0 and f"removed {about['tag']}" in down.stdout, down.stderr
    assert not [ns for ns in netlab_links.namespaces() if ns.startswith(about["tag"] + "-")]


def test_a_crashed_lab_is_removed_by_the_next_one():
    if lab_unavailable():
        pytest.skip(lab_unavailable())
    dead = next(pid for pid in range(4_000_000, 3_000_000, -1)
                if not os.path.exists(f"/proc/{pid}"))
    left = netlab.Lab(k=1, tag=f"psn{dead}x0").up()  # never downed: its process "died"
    try:
        assert f"psn{dead}x0" in netlab_links.lab_tags()
        assert f"psn{dead}x0" in netlab_links.remove_stale_labs()
        assert not [ns for ns in netlab_links.namespaces() if ns.startswith(left.tag + "-")]
    finally:
        left.down()


DRIVER = """
import json, os, sys
import numpy as np
from pysparknet import zoo
from pysparknet.data import fashion_mnist
from pysparknet.spark import SparkNetTrainer
from netlab import driver_session

spark = driver_session({"spark.task.maxFailures": "1"})
sc = spark.sparkContext
where = sc.parallelize(range(2), 2).map(
    lambda _: os.stat("/proc/self/ns/net").st_ino).collect()
x, y = fashion_mnist("train")
records = list(zip(x[:1200], y[:1200].tolist()))
xt, yt = fashion_mnist("test")
trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2, tau=10, seed=3)
result = trainer.fit(sc.parallelize(records, 2), validation_data=(xt[:1000], yt[:1000]),
                     rounds=4, progress=False)
executors = [e.host() for e in sc._jsc.sc().statusTracker().getExecutorInfos()]
security = {k: sc.getConf().get(k, "unset") for k in
            ("spark.authenticate", "spark.network.crypto.enabled")}
print("RESULT", json.dumps({"ns": where, "security": security, "executors": sorted(map(str, executors)),
                            "finite": bool(np.isfinite(result.weights.flat).all()),
                            "history": result.history}, default=str))
spark.stop()
"""


def test_lenet_fit_from_the_driver_host_on_executors_in_worker_hosts(lab, tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER))
    done = lab.run_driver([script], timeout=300)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    worker_ns = {lab.ns_inode(w) for w in lab.workers}
    assert set(result["ns"]) <= worker_ns and result["ns"], result
    assert os.stat("/proc/self/ns/net").st_ino not in result["ns"]
    assert set(result["executors"]) >= {w.ip for w in lab.workers}, result
    assert result["finite"], result
    assert len(result["history"]) == 4, result
    assert result["history"][-1]["val_accuracy"] > 0.5, result  # chance is 0.1
    # Spark's authentication (the lab's fresh secret) and RPC encryption, on every side.
    assert result["security"] == {"spark.authenticate": "true",
                                  "spark.network.crypto.enabled": "true"}, result
    for log in ("master.log", "worker0.log", "worker1.log"):
        assert "authentication enabled" in (lab.cluster.work_dir / log).read_text(), log


RING_DRIVER = """
import json, os, sys
from pysparknet import zoo
from pysparknet.data import fashion_mnist
from pysparknet.spark import Exchange, SparkNetTrainer, local_spark

tls = sys.argv[1] == "tls"
conf = json.load(open(os.environ["NETLAB_SPARK_CONF"]))
spark = local_spark(os.environ["NETLAB_MASTER"], conf={**conf, "spark.task.maxFailures": "1"})
x, y = fashion_mnist("train")
trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2, tau=5, seed=3,
                          exchange=Exchange(kind="ring", tls=tls))
start = trainer.driver_net.get_weights().flat.copy()
result = trainer.fit((x[:1000], y[:1000]), rounds=2, progress=False)
start.tofile(sys.argv[2])
print("RESULT", json.dumps({"rounds": len(result.history)}))
spark.stop()
"""


@contextlib.contextmanager
def bridge_capture(lab, capture: Path):
    """Every frame crossing the lab's bridge while the block runs, into `capture`."""
    sniffer = subprocess.Popen([*netlab_links.in_ns(lab.bridge_ns), lab.python,
                                str(Path(__file__).with_name("lab_sniffer.py")), str(capture),
                                "600"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert sniffer.stdout.readline().strip() == "sniffing"
        yield
    finally:
        sniffer.terminate()
        sniffer.wait(timeout=30)


def sniffed_ring_fit(lab, tmp_path, link: str) -> tuple:
    """A ring fit from the driver host with a sniffer on the bridge: (the capture's bytes,
    the fit's starting weights' bytes)."""
    script, weights = tmp_path / "ring_driver.py", tmp_path / f"start_{link}.f32"
    script.write_text(textwrap.dedent(RING_DRIVER))
    capture = tmp_path / f"bridge_{link}.bin"
    with bridge_capture(lab, capture):
        done = lab.run_in("driver", [lab.python, script, link, weights],
                          env=lab.spark_env("driver"), cwd=tmp_path, timeout=400)
    assert '"rounds": 2' in done.stdout, done.stdout[-2000:]
    return capture.read_bytes(), weights.read_bytes()


def sniffed_demo(lab, tmp_path, *options: str) -> tuple:
    """The demo's command (scripts/demo.sh: `sparknet train`, LeNet on Fashion-MNIST,
    K=2), short, from the driver host against the lab's cluster, whose secret and
    RPC encryption come as a cluster's do (spark-defaults.conf in SPARK_CONF_DIR), with
    a sniffer on the bridge: (the capture's bytes, everything the command printed)."""
    capture = tmp_path / f"demo{'-'.join(options)}.bin"
    where = [f"--conf={key}={lab.driver_conf()[key]}"
             for key in ("spark.driver.host", "spark.driver.bindAddress")]
    with bridge_capture(lab, capture):
        done = lab.run_in("driver", [lab.python, "-m", "pysparknet.cli", "train",
                                     "--master", lab.master_url, *where, "--workers", "2",
                                     "--tau", "5", "--rounds", "2", "--seed", "3", "--quiet",
                                     *options],
                          env=lab.spark_env("driver"), cwd=tmp_path, timeout=400, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "SparkNet lenet" in output, output[-3000:]
    return capture.read_bytes(), output


def weight_windows_seen(capture: bytes, weights: bytes, width: int = 64, count: int = 200):
    """How many of `count` windows of the weights' bytes (spread over the vector) appear
    in the capture."""
    step = max((len(weights) - width) // count, 1)
    windows = [weights[i:i + width] for i in range(0, len(weights) - width, step)][:count]
    return sum(window in capture for window in windows)


def test_a_sniffer_on_the_bridge_sees_no_weights_of_a_ring_fit(lab, tmp_path):
    """Spark's crypto on and the exchange over TLS, driver and peer links alike: none
    of the first round's weights cross the bridge readable. The same fit in clear
    (tls=False) shows the sniffer would see them."""
    secure, weights = sniffed_ring_fit(lab, tmp_path, "tls")
    clear, clear_weights = sniffed_ring_fit(lab, tmp_path, "plain")
    assert weights == clear_weights  # same seed, same start
    assert len(secure) > len(weights)  # the weights crossed, encrypted
    assert weight_windows_seen(secure, weights) == 0
    assert weight_windows_seen(clear, clear_weights) > 100


def test_a_sniffer_on_the_bridge_sees_no_weights_of_the_demo(lab, tmp_path):
    """The demo with its defaults (the driver's star over TLS) and Spark's crypto on:
    none of the starting weights, sent to both workers in round 1, cross the bridge
    readable, and nothing warns about security. The same command with
    --insecure-exchange shows the sniffer would see them."""
    from pysparknet import Net, zoo
    with Net(zoo.lenet(), zoo.lenet_solver(), device="cpu", seed=3) as start:
        weights = start.get_weights().flat.tobytes()  # the driver's net, seeded as the CLI's
    secure, output = sniffed_demo(lab, tmp_path)
    clear, clear_output = sniffed_demo(lab, tmp_path, "--insecure-exchange")
    assert len(secure) > 2 * len(weights)  # sent to two workers, encrypted
    assert weight_windows_seen(secure, weights) == 0
    assert weight_windows_seen(clear, weights) > 100
    assert "in clear" not in output and "not encrypted" not in output, output[-3000:]
    assert "in clear" in clear_output  # the warning that --insecure-exchange earns


def test_a_peer_port_refuses_a_stranger(lab):
    """A process outside the run that reaches a worker's ring port is closed unheard:
    the ring's own test (tests/test_ring.py) on loopback, here from another host."""
    probe = textwrap.dedent("""
        import socket, sys
        from pysparknet.spark.exchange_tls import RingKeys
        from pysparknet.spark.ring_links import RingLinks, RING_HELLO, RING_MAGIC
        from pysparknet.spark.sockets import Deadline
        ring = RingLinks(RingKeys.issue(True), b"s" * 32, 1, 0, sys.argv[1])
        print(ring.address[1], flush=True)
        try:
            ring.join([list(ring.address), list(ring.address)], Deadline(20))
        except Exception as error:
            print("refused:", type(error).__name__, flush=True)
    """)
    worker = lab.workers[0]
    listener = lab.popen_in(worker.name, [lab.python, "-c", probe, worker.ip],
                            stdout=subprocess.PIPE, text=True, cwd=lab.work_dir)
    try:
        port = int(listener.stdout.readline())
        stranger = textwrap.dedent(f"""
            import socket
            s = socket.create_connection(("{worker.ip}", {port}), timeout=10)
            s.sendall(b"SNR1" + b"s" * 32 + bytes(12))
            s.settimeout(10)
            try:
                print("answer", s.recv(1))
            except ConnectionResetError:
                print("answer reset")
        """)
        done = lab.run_in("driver", [lab.python, "-c", stranger], timeout=60,
                          cwd=lab.work_dir)
        assert done.stdout.strip() in ("answer b''", "answer reset"), done.stdout
    finally:
        listener.kill()
        listener.wait(timeout=10)


CUT_DRIVER = """
import json, os, sys, time
from pysparknet import zoo
from pysparknet.data import fashion_mnist
from pysparknet.spark import Exchange, Faults, SparkNetTrainer, local_spark

conf = json.load(open(os.environ["NETLAB_SPARK_CONF"]))
spark = local_spark(os.environ["NETLAB_MASTER"], conf={**conf, "spark.task.maxFailures": "1"})
x, y = fashion_mnist("train")
trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2, tau=5, seed=3,
                          exchange=Exchange(kind=sys.argv[1]), faults=Faults(round_timeout=20))
try:
    trainer.fit((x[:1000], y[:1000]), rounds=400, metrics_path=sys.argv[2], progress=False)
except Exception as error:  # when the fit gave up, and why (the session's stop may wait)
    print("FAILED", time.monotonic(), type(error).__name__, str(error).replace("\\n", " "),
          flush=True)
finally:
    spark.stop()
"""


@pytest.mark.parametrize("exchange", ["driver", "ring"])
def test_a_host_cut_off_past_the_deadline_fails_the_fit_naming_it(lab, tmp_path, exchange):
    """A worker host's link cut (both ways) for longer than the round's deadline: the
    fit fails within the deadline (and the stage's teardown), its error naming the
    cut host, not a neighbour stopped with it, instead of hanging. The ring names
    every partition it still waited for."""
    script, metrics = tmp_path / "cut_driver.py", tmp_path / "metrics.jsonl"
    script.write_text(textwrap.dedent(CUT_DRIVER))
    driver = lab.popen_in("driver", [lab.python, script, exchange, metrics],
                          env=lab.spark_env("driver"), cwd=tmp_path, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    cut_at = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
                lab.cut("w2")
                cut_at = time.monotonic()
                break
            time.sleep(0.2)
        assert cut_at is not None, driver.communicate(timeout=60)[1][-3000:]
        stdout, stderr = driver.communicate(timeout=300)
    finally:
        lab.restore("w2")
        if driver.poll() is None:
            driver.kill()
    failed = [line.split(" ", 3) for line in stdout.splitlines() if line.startswith("FAILED ")]
    assert failed, stderr[-3000:]
    _, at, kind, message = failed[0]
    failed_after = float(at) - cut_at  # CLOCK_MONOTONIC: one clock for the whole machine
    print(f"{exchange}: w2 cut after round 3; {kind} {failed_after:.0f} s later: {message}")
    # The round's deadline names it, or Spark's own loss of the host does first (a
    # Worker silent for 60 s: an earlier cut leaves its TCP in retransmit backoff).
    named = {"RoundTimeoutError": r"198\.18\.0\.12",
             "TransportError": r"Spark lost executor \S+ on 198\.18\.0\.12 "}
    assert kind in named and re.search(named[kind], message), message
    assert failed_after < 20 + 60 + 15 + 25  # deadline, stage teardown, release, slack
