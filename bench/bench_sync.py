"""SparkNet's sync cost per round vs. a raw loopback TCP transfer of the same bytes.

For flat weight vectors of LeNet's, GoogLeNet's and AlexNet's sizes (0.43M, 7M,
61M floats), K workers on local-cluster[K,1,MB]:

- SparkNet: the trainer's own rounds on bench/sized_net.py's net, whose one
  training step is a few passes over the weights, with both of its sync paths:
  `socket` (the default: Spark runs the tasks, the weights go over direct TCP
  between the driver and each worker) and `spark` (Spark broadcast out, task
  results back). Sync = round time - the slowest worker's training time, as
  the trainer records it; median over the rounds after the first (which builds
  the solvers).
- Raw: the driver sends the same bytes to K processes over 127.0.0.1 TCP and
  each sends them back, all K at once (one thread per peer); best of --repeat.
- Empty round: a round of the same trainer on a net of 80 floats: the fixed
  cost per round (Spark's job and task launch), for each sync path.
- `socket` is TLS 1.3 (the default); `socket-plain` is the same exchange with
  tls=False: `--paths socket,socket-plain` measures what TLS costs, and prints
  the ratio of the two sync times per size.

Effective bandwidth = 2 x K x bytes / time (to and from every worker); the
"beyond fixed" column divides by the sync time less the empty round's (shown
only where the sync takes over twice the fixed cost; below that the difference
is within the fixed cost's round-to-round noise).

    python bench/bench_sync.py [--workers 2] [--rounds 5] [--paths socket,socket-plain,spark]
                               [--sizes LeNet,GoogLeNet,AlexNet]
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

from pysparknet.spark import SparkNetTrainer, exchange_tls, local_spark

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


def sparknet_rounds(spark, n_floats: int, workers: int, rounds: int, path: str) -> list[dict]:
    sync, tls = ("socket", False) if path == "socket-plain" else (path, True)
    trainer = SparkNetTrainer(spark, sized_net(n_floats), SOLVER, num_workers=workers, tau=1,
                              seed=1, sync=sync, tls=tls)
    result = trainer.fit(sized_records(spark.sparkContext, workers), rounds=rounds,
                         progress=False)
    trainer.driver_net.close()
    return result.history[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="K")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per size (first dropped)")
    parser.add_argument("--repeat", type=int, default=5, help="raw transfers per size")
    parser.add_argument("--executor-memory", type=int, default=3072, help="MB per executor")
    parser.add_argument("--paths", default="socket,socket-plain,spark",
                        help="sync paths: socket (TLS), socket-plain (tls=False), spark")
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"of {list(SIZES)}")
    args = parser.parse_args()
    mb = args.executor_memory
    spark = local_spark(f"local-cluster[{args.workers},1,{mb}]",
                        conf={"spark.executor.memory": f"{mb}m", "spark.driver.memory": "4g",
                              "spark.driver.maxResultSize": "4g"})
    syncs = tuple(args.paths.split(","))
    sizes = {name: SIZES[name] for name in args.sizes.split(",")}
    rows, empty, raw_tls = [], {}, {}
    try:
        for sync in syncs:
            history = sparknet_rounds(spark, 80, args.workers, args.rounds + 4, sync)
            empty[sync] = statistics.median(r["sync_s"] for r in history)
        for name, n_floats in sizes.items():
            raw = raw_loopback(4 * n_floats, args.workers, args.repeat)
            if "socket" in syncs:
                raw_tls[name] = raw_loopback(4 * n_floats, args.workers, args.repeat, tls=True)
            for sync in syncs:
                history = sparknet_rounds(spark, n_floats, args.workers, args.rounds, sync)
                took = statistics.median(r["sync_s"] for r in history)
                rows.append((name, n_floats, sync, took, raw))
                print(f"  {name} {sync}: sync {took * 1e3:.0f} ms, raw {raw * 1e3:.1f} ms",
                      flush=True)
    finally:
        spark.stop()
    k = args.workers
    print(f"\nK={k} workers, local-cluster[{k},1,{mb}]\n")
    print("| weights | floats | sync path | sync ms | raw TCP ms | raw / sync | "
          "sync GB/s | beyond fixed GB/s | raw GB/s | beyond fixed / raw |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, n_floats, sync, took, raw in rows:
        moved = 2 * k * 4 * n_floats / 1e9
        # Below twice the fixed cost the difference is within its round-to-round noise.
        if took > 2 * empty[sync]:
            beyond = moved / (took - empty[sync])
            beyond_text = f"{beyond:.2f} | {moved / raw:.2f} | {beyond / (moved / raw):.2f}"
        else:
            beyond_text = f"- | {moved / raw:.2f} | -"
        print(f"| {name} | {n_floats:,} | {sync} | {took * 1e3:.0f} | {raw * 1e3:.1f} | "
              f"{raw / took:.3f} | {moved / took:.2f} | {beyond_text} |")
    print()
    if "socket" in syncs and "socket-plain" in syncs:
        took = {(name, sync): t for name, _, sync, t, _ in rows}
        for name in sizes:
            tls, plain = took[(name, "socket")], took[(name, "socket-plain")]
            print(f"TLS cost at {name}: sync {tls * 1e3:.0f} ms with TLS / {plain * 1e3:.0f} ms "
                  f"without = {tls / plain:.3f}; raw loopback TLS {raw_tls[name] * 1e3:.1f} ms "
                  f"(raw TLS / sync with TLS = {raw_tls[name] / tls:.3f})")
    for sync in syncs:
        print(f"empty round (80 floats, tau=1), sync={sync}: {empty[sync] * 1e3:.0f} ms outside "
              f"the workers' training (median of {args.rounds + 3} rounds)")


if __name__ == "__main__":
    main()
