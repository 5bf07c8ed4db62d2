"""What one connection to the weight exchange costs, with and without TLS.

Each round, every task opens one connection (TLS 1.3 handshake with the run's
pinned certificate, the hello with the run secret, the driver's reply). This
times a data-request connection (the shortest exchange: hello, one reply) on
loopback against the same exchange with tls=False, in the same run.

    python bench/bench_exchange_connect.py [--connections 200]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from pysparknet.spark.transport import WeightExchange, request_data


def per_connection(tls: bool, connections: int) -> float:
    with WeightExchange(tls=tls) as exchange:
        exchange.start_round(0, np.zeros(10, np.float32), 1, on_needs_data=lambda part: None)
        ticket = exchange.ticket(0)
        request_data(ticket, 0)  # warm: the worker's TLS context is made once per process
        tic = time.perf_counter()
        for _ in range(connections):
            request_data(ticket, 0)
        return (time.perf_counter() - tic) / connections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=200)
    args = parser.parse_args()
    plain = per_connection(False, args.connections)
    tls = per_connection(True, args.connections)
    print("| exchange | ms per connection | vs plain |")
    print("|---|---:|---:|")
    print(f"| tls=False | {plain * 1e3:.2f} | 1.00 |")
    print(f"| TLS 1.3 (default) | {tls * 1e3:.2f} | {tls / plain:.2f} |")


if __name__ == "__main__":
    main()
