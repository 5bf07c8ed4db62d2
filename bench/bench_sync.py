"""SparkNet's sync cost per round vs. a raw loopback transfer of the same bytes.

For flat weight vectors of LeNet's, GoogLeNet's and AlexNet's sizes (0.43M, 7M,
61M floats), K workers on local-cluster[K,1,MB]:

- SparkNet: the trainer's own rounds on bench/sized_net.py's net, whose one
  training step is a few passes over the weights, for each link and schedule.
  Links: `tls` (the default: TLS 1.3 to the driver) and `plain` (tls=False).
  Schedules: `segments` (the default: one barrier stage runs the rounds) and
  `jobs` (one Spark job a round), both over the same links. Sync = round
  time - the slowest worker's training time, as the trainer records it; median
  over the rounds after the first (which builds the solvers; with segments, the
  last round, which ends the stage, is left out too).
- Raw: the driver sends the same bytes to K processes over 127.0.0.1 and each
  sends them back, all K at once (one thread per peer), over plain TCP and over
  TLS 1.3 with the exchange's own SSL contexts; median of 3 round trips.
- Interleaved: each of --repeat passes measures raw TCP, raw TLS, then one fit
  per link and schedule; the tables give the median over the passes (min-max).
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

from results_io import record, spread_text  # bench/, beside this script

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


class RawLoopback:
    """K peer processes that echo n_bytes over 127.0.0.1 (tls: TLS 1.3 with the
    exchange's own contexts, a fresh certificate); time() is one round trip to
    all of them at once, one thread per peer. Kept open across the interleaved
    repeats."""

    def __init__(self, n_bytes: int, workers: int, tls: bool):
        self.n_bytes = n_bytes
        server = socket.create_server(("127.0.0.1", 0))
        credentials = exchange_tls.generate("127.0.0.1") if tls else None
        pem = credentials.certificate.decode() if tls else "-"
        # -P: the peers import the installed pysparknet even when run from the source tree
        self.peers = [subprocess.Popen([sys.executable, "-P", "-c", PEER, str(n_bytes),
                                        str(server.getsockname()[1]), pem])
                      for _ in range(workers)]
        self.conns = [server.accept()[0] for _ in range(workers)]
        server.close()
        if tls:
            context = exchange_tls.server_context(credentials)
            self.conns = [context.wrap_socket(c, server_side=True) for c in self.conns]
        self.payload = bytearray(n_bytes)
        self.replies = [bytearray(n_bytes) for _ in range(workers)]

    def _exchange(self, conn, reply) -> None:
        conn.sendall(self.payload)
        view, got = memoryview(reply), 0
        while got < self.n_bytes:
            got += conn.recv_into(view[got:])

    def time(self) -> float:
        threads = [threading.Thread(target=self._exchange, args=pair)
                   for pair in zip(self.conns, self.replies)]
        tic = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - tic

    def __enter__(self) -> "RawLoopback":
        return self

    def __exit__(self, *exc) -> None:
        for conn in self.conns:
            conn.close()
        for peer in self.peers:
            peer.wait(timeout=30)


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


def interleaved(args, spark, n_floats: int, pairs: list, rounds: int, trips: int) -> dict:
    """Per repeat, in turn: raw TCP, raw TLS (median of `trips` round trips each),
    then one fit per (link, schedule) (its median sync): {what: [one per repeat]}."""
    samples = {"tcp": [], "tls": [], **{pair: [] for pair in pairs}}
    with RawLoopback(4 * n_floats, args.workers, tls=False) as tcp, \
            RawLoopback(4 * n_floats, args.workers, tls=True) as tls:
        for _ in range(args.repeat):
            samples["tcp"].append(statistics.median(tcp.time() for _ in range(trips)))
            samples["tls"].append(statistics.median(tls.time() for _ in range(trips)))
            for pair in pairs:
                samples[pair].append(median_sync(spark, n_floats, args.workers, rounds, *pair))
    return samples


def measure(args, spark, sizes: dict, pairs: list):
    """(rows: one per size, link and schedule, with every repeat's seconds; the
    empty round's repeats by 'link,schedule'; its raw round trips' by link)."""
    empty = interleaved(args, spark, 80, pairs, args.rounds + 4, trips=20)
    rows = []
    for name, n_floats in sizes.items():
        samples = interleaved(args, spark, n_floats, pairs, args.rounds + 1, trips=3)
        for path, mode in pairs:
            row = {"weights": name, "floats": n_floats, "link": path, "schedule": mode,
                   "sync_s": samples[(path, mode)], "raw_tcp_s": samples["tcp"],
                   "raw_tls_s": samples["tls"]}
            rows.append(row)
            print(f"  {name} {path} {mode}: sync {_ms(row['sync_s'])} ms, raw TCP "
                  f"{_ms(row['raw_tcp_s'])} ms, raw TLS {_ms(row['raw_tls_s'])} ms", flush=True)
    return rows, {f"{p},{m}": empty[(p, m)] for p, m in pairs}, \
        {"tcp": empty["tcp"], "tls": empty["tls"]}


def _ms(samples: list, digits: int = 1) -> str:
    return spread_text(samples, digits, scale=1e3)


def print_tables(k: int, rows: list, empty: dict, raw_empty: dict) -> None:
    print("| weights | floats | link | schedule | sync ms | raw TCP ms | raw TLS ms | "
          "sync GB/s | raw TCP / sync | raw TLS / sync |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        took, raw, raw_tls = (statistics.median(r[key])
                              for key in ("sync_s", "raw_tcp_s", "raw_tls_s"))
        moved = 2 * k * 4 * r["floats"] / 1e9
        tls_ratio = f"{raw_tls / took:.3f}" if r["link"] == "tls" else "-"
        print(f"| {r['weights']} | {r['floats']:,} | {r['link']} | {r['schedule']} | "
              f"{_ms(r['sync_s'])} | {_ms(r['raw_tcp_s'])} | {_ms(r['raw_tls_s'])} | "
              f"{moved / took:.2f} | {raw / took:.3f} | {tls_ratio} |")
    print("\n| empty round (80 floats, tau=1) | sync ms | / raw round trip of its bytes |")
    print("|---|---:|---:|")
    for key, took in empty.items():
        raw = statistics.median(raw_empty["tls" if key.startswith("tls") else "tcp"])
        print(f"| {key} | {_ms(took, 2)} | {statistics.median(took) / raw:.1f} |")
    for link, raw in raw_empty.items():
        print(f"| raw {link} round trip, 320 bytes to {k} processes | {_ms(raw, 2)} | 1 |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="K")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per size (first dropped)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="interleaved repeats: raw TCP, raw TLS, then each variant's fit")
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
    record("sync", rows=rows,
           extra={"master": master, "workers": args.workers, "rounds": args.rounds,
                  "repeat": args.repeat, "empty_round_sync_s": empty,
                  "raw_empty_s": raw_empty})

if __name__ == "__main__":
    main()
