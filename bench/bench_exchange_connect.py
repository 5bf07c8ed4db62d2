"""What one link to the driver costs to open, with and without TLS.

Each stage, every task opens one link (TLS 1.3 handshake with the run's pinned
certificate, the hello with the run secret, the driver's TAKEN). This times a
whole open (connect, handshake, hello, TAKEN) on loopback against the same
listener with tls=False, in the same run, interleaved.

    python bench/bench_exchange_connect.py [--connections 200] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

from results_io import record  # bench/, beside this script

from pysparknet.spark.link_worker_end import WorkerLink
from pysparknet.spark.transport import LinkListener


def per_connection(listener: LinkListener, connections: int) -> float:
    ticket = listener.ticket(0)
    tic = time.perf_counter()
    for _ in range(connections):
        WorkerLink.open(ticket, 0).conn.close()
    return (time.perf_counter() - tic) / connections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict = {False: [], True: []}
    with LinkListener(tls=False) as plain, LinkListener(tls=True) as tls:
        for listener in (plain, tls):
            listener.expect(lambda serial, part, conn: False)  # authenticated, then closed
            per_connection(listener, 5)  # warm: a worker's TLS context is made once
        for _ in range(args.repeats):  # A B A B
            for on, listener in ((False, plain), (True, tls)):
                times[on].append(per_connection(listener, args.connections))
    plain_ms, tls_ms = (statistics.median(times[on]) * 1e3 for on in (False, True))
    print("| link | ms per connection (median, min-max) | vs plain |")
    print("|---|---:|---:|")
    for on, median in ((False, plain_ms), (True, tls_ms)):
        spread = f"{min(times[on]) * 1e3:.2f}-{max(times[on]) * 1e3:.2f}"
        print(f"| {'TLS 1.3 (default)' if on else 'tls=False'} | {median:.2f} ({spread}) | "
              f"{median / plain_ms:.2f} |")
    record("exchange_connect", repeats={"tls=False": times[False], "TLS 1.3 (default)": times[True]},
           extra={"connections": args.connections})


if __name__ == "__main__":
    main()
