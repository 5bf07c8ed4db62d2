"""The exchanges on a shaped network: the driver's star against the workers' ring,
on the network lab (scripts/netlab.py: one namespace per host, each host's link
shaped to R both ways), K = 2, 4, 8 worker hosts.

For each K a lab comes up with a Spark standalone cluster in it (Spark's
authentication and RPC encryption on), bench/bench_exchange.py runs as the
driver inside the driver's host, and every variant's sync is set against its
bound: the star moves K·M bytes each way through the driver's link (K·M/R), the
ring 2(K-1)/K·M through every link (2(K-1)/K·M/R). Needs root.

    sudo .venv/bin/python bench/bench_exchange_lab.py [--ks 2,4,8] [--rate 500] \\
        [--floats 60965224] [--variants driver-tls,driver-plain,ring-tls,...] [--tau 20]

Its raw output goes to bench/results/<date>-<machine>/exchange_lab.json
(bench/results_io.py), rendered in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
from netlab import Lab  # noqa: E402
from results_io import record  # noqa: E402

VARIANTS = "driver-tls,driver-plain,ring-tls,ring-plain,ring-tls-bfloat16"


def bound_s(variant: str, k: int, floats: int, rate_mbit: float) -> float:
    """The link-bound sync: bytes through the busiest link over its rate. The star
    sends K·M at a round's start and takes K·M back at its end, one after the other
    (2·K·M/R); the ring moves 2(K-1)/K·M over every link (each worker's chunk of the
    sum to the driver travels while the next round trains, behind its compute)."""
    wire_bytes = 2 if variant.endswith(("bfloat16", "float16")) else 4
    model = floats * wire_bytes
    moved = 2 * k * model if variant.startswith("driver") else 2 * (k - 1) / k * model
    return moved * 8 / (rate_mbit * 1e6)


def run_k(k: int, args) -> dict:
    """bench_exchange.py as the driver of a K-host lab: its JSON document."""
    memory = args.worker_memory
    with Lab(k=k, rate_mbit=args.rate, spark=True, worker_memory=f"{memory}m") as lab:
        env = lab.spark_env("driver")
        command = [lab.python, str(ROOT / "bench" / "bench_exchange.py"), "--workers", k,
                   "--floats", args.floats, "--variants", args.variants, "--rounds",
                   args.rounds, "--repeats", args.repeats, "--tau", args.tau,
                   "--master", lab.master_url,
                   "--conf-json", env["NETLAB_SPARK_CONF"],
                   "--executor-memory", min(memory, 1024)]
        done = lab.run_in("driver", command, timeout=args.timeout, env=env)
    for line in done.stdout.splitlines()[:-1]:
        print(f"  K={k} {line}", flush=True)
    return json.loads(done.stdout.splitlines()[-1])


def rows(document: dict, rate_mbit: float) -> list:
    k, floats = document["workers"], document["floats"]
    table = []
    for variant, repeats in document["runs"].items():
        samples = [r["sync_s"] for rounds in repeats for r in rounds]
        median = statistics.median(samples)
        bound = bound_s(variant, k, floats, rate_mbit)
        table.append({"k": k, "variant": variant, "sync_median_s": median,
                      "sync_min_s": min(samples), "sync_max_s": max(samples),
                      "bound_s": bound, "over_bound": median / bound,
                      "compute_median_s": statistics.median(
                          r["compute_s"] for rounds in repeats for r in rounds),
                      "samples": samples})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ks", default="2,4,8")
    parser.add_argument("--rate", type=float, default=500.0, help="Mbit/s, every link")
    parser.add_argument("--floats", type=int, default=60_965_224)
    parser.add_argument("--variants", default=VARIANTS)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tau", type=int, default=1,
                        help="steps a round (the ring's chunks to the driver travel behind "
                             "them)")
    parser.add_argument("--worker-memory", type=int, default=3072, help="MB per worker host")
    parser.add_argument("--timeout", type=float, default=3600.0, help="s per K")
    args = parser.parse_args()
    results = []
    for k in map(int, args.ks.split(",")):
        results += rows(run_k(k, args), args.rate)
    print(f"\n{args.floats:,} floats, links shaped to {args.rate:g} Mbit/s\n")
    print("| K | exchange | sync s (median, min-max) | link bound s | / bound |")
    print("|---:|---|---:|---:|---:|")
    for row in results:
        print(f"| {row['k']} | {row['variant']} | {row['sync_median_s']:.2f} "
              f"({row['sync_min_s']:.2f}-{row['sync_max_s']:.2f}) | {row['bound_s']:.2f} | "
              f"{row['over_bound']:.2f} |")
    record("exchange_lab", rows=results,
           extra={"rate_mbit": args.rate, "floats": args.floats, "rounds": args.rounds,
                  "repeats": args.repeats, "ks": args.ks, "tau": args.tau})


if __name__ == "__main__":
    main()
