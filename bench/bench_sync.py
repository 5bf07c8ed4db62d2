"""SparkNet's sync cost per round vs. a raw loopback transfer of the same bytes.

For flat weight vectors of LeNet's, GoogLeNet's and AlexNet's sizes (0.43M, 7M,
61M floats), K workers on local-cluster[K,1,MB]:

- SparkNet: the trainer's own rounds on bench/sized_net.py's net, whose one
  training step is a few passes over the weights, for each link and schedule.
  Links: `tls` (the default: TLS 1.3 to the driver) and `plain` (tls=False).
  Schedules: `segments` (the default: one barrier stage runs the rounds) and
  `jobs` (one Spark job a round), both over the same links. Sync = round time - the slowest worker's
  training time, as the trainer records it; median over the rounds after the
  first (which builds the solvers; with segments, the last round, which ends
  the stage, is left out too).
- Raw: the driver sends the same bytes to K processes over 127.0.0.1 and each
  sends them back, all K at once (one thread per peer), over plain TCP and over
  TLS 1.3 with the exchange's own SSL contexts; best of --repeat.
- Empty round: a round on a net of 80 floats: the fixed cost per round, next to
  the raw round trip of its 320 bytes, and per-round jobs / segments.

Effective bandwidth = 2 x K x bytes / time (to and from every worker).

    python bench/bench_sync.py [--workers 2] [--rounds 6] [--paths tls,plain]
                               [--modes segments,jobs] [--sizes LeNet,GoogLeNet,AlexNet]
                               [--master spark://master:7077 --conf KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import threading
import time

from sized_net import SIZES, SOLVER, sized_net, sized_records

from results_io import record  # bench/, beside this script

from pysparknet.spark import Exchange, SparkNetTrainer, exchange_tls, local_spark

PEER = r"""
import socket, sys
n, port, pem = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
buf = bytearray(n)
s = socket.create_connection(("127.0.0.1", port))
if pem != "-":  # TLS, as a worker of the exchange does it
    from pysparknet.spark.exchange_tls import client_context
    s = client_context(pem.encode()).wrap_socket(s, server_hostname=None)
with s:
    while True:
        view, got = memoryview(buf), 0
        while got < n:
            k = s.recv_into(view[got:])
            if not k:
                sys.exit(0)
            got += k
        s.sendall(buf)
"""


def raw_loopback(n_bytes: int, workers: int, repeat: int, tls: bool = False) -> float:
    """Best time to send n_bytes to each of `workers` processes and get them back
    (tls: over TLS 1.3 with the exchange's own contexts, a fresh certificate)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    credentials = exchange_tls.generate("127.0.0.1") if tls else None
    pem = credentials.certificate.decode() if tls else "-"
    peers = [subprocess.Popen([sys.executable, "-c", PEER, str(n_bytes), str(port), pem])
             for _ in range(workers)]
    conns = [server.accept()[0] for _ in range(workers)]
    if tls:
        context = exchange_tls.server_context(credentials)
        conns = [context.wrap_socket(conn, server_side=True) for conn in conns]
    payload = bytearray(n_bytes)
    replies = [bytearray(n_bytes) for _ in range(workers)]

    def exchange(conn, reply):
        conn.sendall(payload)
        view, got = memoryview(reply), 0
        while got < n_bytes:
            got += conn.recv_into(view[got:])

    best = float("inf")
    try:
        for _ in range(repeat):
            threads = [threading.Thread(target=exchange, args=pair) for pair in zip(conns, replies)]
            tic = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            best = min(best, time.perf_counter() - tic)
    finally:
        for conn in conns:
            conn.close()
        server.close()
        for peer in peers:
            peer.wait(timeout=30)
    return best


def sparknet_rounds(spark, n_floats: int, workers: int, rounds: int, path: str,
                    mode: str) -> list[dict]:
    trainer = SparkNetTrainer(spark, sized_net(n_floats), SOLVER, num_workers=workers, tau=1,
                              seed=1, exchange=Exchange(tls=path == "tls"), schedule=mode)
    result = trainer.fit(sized_records(spark.sparkContext, workers), rounds=rounds,
                         progress=False)
    trainer.driver_net.close()
    # The first round builds the solvers (and, with segments, starts the stage) and the
    # last one ends the stage: the rounds between are what a long run is made of.
    return result.history[1:-1] if mode == "segments" else result.history[1:]


def variants(paths: list, modes: list) -> list:
    """(link, schedule) pairs."""
    return [(path, mode) for path in paths for mode in modes]


def median_sync(spark, n_floats, workers, rounds, path, mode) -> float:
    history = sparknet_rounds(spark, n_floats, workers, rounds, path, mode)
    return statistics.median(r["sync_s"] for r in history)


def measure(args, spark, sizes: dict, pairs: list):
    """(rows of (size, floats, path, mode, sync s, raw TCP s, raw TLS s), empty round
    sync by (path, mode), raw round trips of the empty round's bytes)."""
    empty = {pair: median_sync(spark, 80, args.workers, args.rounds + 4, *pair)
             for pair in pairs}
    raw_empty = {tls: raw_loopback(320, args.workers, args.repeat * 20, tls=tls)
                 for tls in (False, True)}
    rows = []
    for name, n_floats in sizes.items():
        raw = raw_loopback(4 * n_floats, args.workers, args.repeat)
        raw_tls = raw_loopback(4 * n_floats, args.workers, args.repeat, tls=True)
        for path, mode in pairs:
            took = median_sync(spark, n_floats, args.workers, args.rounds + 1, path, mode)
            rows.append((name, n_floats, path, mode, took, raw, raw_tls))
            print(f"  {name} {path} {mode}: sync {took * 1e3:.1f} ms, raw TCP "
                  f"{raw * 1e3:.1f} ms, raw TLS {raw_tls * 1e3:.1f} ms", flush=True)
    return rows, empty, raw_empty


def print_tables(k: int, rows: list, empty: dict, raw_empty: dict) -> None:
    print("| weights | floats | link | schedule | sync ms | raw TCP ms | raw TLS ms | "
          "sync GB/s | raw TCP / sync | raw TLS / sync |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for name, n_floats, path, mode, took, raw, raw_tls in rows:
        moved = 2 * k * 4 * n_floats / 1e9
        tls_ratio = f"{raw_tls / took:.3f}" if path == "tls" else "-"
        print(f"| {name} | {n_floats:,} | {path} | {mode} | {took * 1e3:.1f} | "
              f"{raw * 1e3:.1f} | {raw_tls * 1e3:.1f} | {moved / took:.2f} | "
              f"{raw / took:.3f} | {tls_ratio} |")
    print("\n| empty round (80 floats, tau=1) | sync ms | / raw round trip of its bytes |")
    print("|---|---:|---:|")
    for (path, mode), took in empty.items():
        raw = raw_empty[path == "tls"]
        print(f"| {path}, {mode} | {took * 1e3:.2f} | {took / raw:.1f} |")
    print(f"| raw TCP round trip, 320 bytes to {k} processes | {raw_empty[False] * 1e3:.2f} "
          f"| 1 |")
    print(f"| raw TLS round trip, 320 bytes to {k} processes | {raw_empty[True] * 1e3:.2f} "
          f"| 1 |")
    for path in {p for p, _ in empty}:
        if (path, "jobs") in empty and (path, "segments") in empty:
            ratio = empty[(path, "jobs")] / empty[(path, "segments")]
            print(f"\nempty round, {path}: per-round jobs / segments = {ratio:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="K")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per size (first dropped)")
    parser.add_argument("--repeat", type=int, default=5, help="raw transfers per size")
    parser.add_argument("--executor-memory", type=int, default=3072, help="MB per executor")
    parser.add_argument("--paths", default="tls,plain",
                        help="links: tls (the default), plain (tls=False)")
    parser.add_argument("--modes", default="segments,jobs",
                        help="round modes: segments (one barrier stage), jobs (one a round)")
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"of {list(SIZES)}")
    parser.add_argument("--master", help="another cluster (e.g. the compose cluster's "
                        "spark://master:7077; the raw baselines stay on this host's loopback)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a Spark setting for the session (repeatable)")
    args = parser.parse_args()
    mb = args.executor_memory
    master = args.master or f"local-cluster[{args.workers},1,{mb}]"
    spark = local_spark(master, conf={"spark.executor.memory": f"{mb}m",
                                      "spark.driver.memory": "4g",
                                      "spark.driver.maxResultSize": "4g",
                                      **dict(pair.split("=", 1) for pair in args.conf)})
    sizes = {name: SIZES[name] for name in args.sizes.split(",") if name}
    pairs = variants(args.paths.split(","), args.modes.split(","))
    try:
        rows, empty, raw_empty = measure(args, spark, sizes, pairs)
    finally:
        spark.stop()
    print(f"\nK={args.workers} workers, {master}\n")
    print_tables(args.workers, rows, empty, raw_empty)
    keys = ("weights", "floats", "link", "schedule", "sync_s", "raw_tcp_s", "raw_tls_s")
    record("sync", rows=[dict(zip(keys, r)) for r in rows],
           extra={"master": master, "workers": args.workers, "rounds": args.rounds,
                  "empty_round_sync_s": {f"{p},{m}": v for (p, m), v in empty.items()},
                  "raw_empty_s": {"tcp": raw_empty[False], "tls": raw_empty[True]}})


if __name__ == "__main__":
    main()
