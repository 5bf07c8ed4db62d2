"""Is the network lab link-bound? K simultaneous raw TCP transfers on shaped links.

On a lab (scripts/netlab.py) of K worker hosts whose links are shaped to R Mbit/s
both ways, for K = 2, 4, 8 (repeats interleaved: K=2, 4, 8, 2, 4, 8, ...):

- ring: each worker sends to the next one, all at once, so every worker's link
  carries R up and R down (the traffic pattern of a ring exchange); each transfer
  as a fraction of R, the baseline the shaping sets. Issue 25 asks >= 0.90.
- star: every worker sends to the driver host at once; the driver's one link is
  the bottleneck, so the K transfers' bytes together over the span from the first
  one's start to the last one's end, as a fraction of R (and the smallest single
  share, which htb's one FIFO class does not keep fair).

A transfer's rate counts the bytes received after a 0.5 s warm-up (TCP's slow start,
htb's first burst) over the time they took. TCP payload over Ethernet tops out at
1448/1514 = 0.956 of the link's rate.

    sudo .venv/bin/python bench/bench_netlab_links.py [--rate 500] [--ks 2,4,8]
        [--repeats 3] [--seconds 3] [--out bench/results/<machine>-<date>/netlab_links.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import netlab  # noqa: E402
import netlab_links  # noqa: E402
import netlab_tcp  # noqa: E402


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())
    return f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}"


def one_round(lab, seconds: float) -> dict:
    ring = netlab_tcp.measure(lab, netlab_tcp.ring_pairs(lab), seconds=seconds)
    star = netlab_tcp.measure(lab, [(w.name, "driver") for w in lab.workers], seconds=seconds)
    return {"ring": ring, "star": star}


def summarize(k: int, rate: float, runs: list[dict]) -> dict:
    ring = [r["fraction"] for run in runs for r in run["ring"]]
    star_sum = [netlab_tcp.aggregate_mbit(run["star"]) / rate for run in runs]
    star_min = [min(r["fraction"] for r in run["star"]) for run in runs]
    return {"k": k, "transfers": len(ring), "ring_min": min(ring),
            "ring_median": statistics.median(ring), "ring_max": max(ring),
            "star_sum_median": statistics.median(star_sum), "star_sum_min": min(star_sum),
            "star_min_share": min(star_min)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=500, help="each link's rate, Mbit/s")
    p.add_argument("--ks", default="2,4,8")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    reason = netlab_links.ns_available()
    if reason:
        sys.exit(f"bench_netlab_links: {reason}")
    ks = [int(k) for k in args.ks.split(",")]
    raw = {k: [] for k in ks}
    # A fresh lab for each K and repeat (building one takes well under a second).
    for repeat in range(args.repeats):
        for k in ks:
            with netlab.Lab(k=k, rate_mbit=args.rate) as lab:
                tic = time.monotonic()
                raw[k].append(one_round(lab, args.seconds))
                print(f"repeat {repeat + 1} K={k}: {time.monotonic() - tic:.1f} s", flush=True)
    table = [summarize(k, args.rate, raw[k]) for k in ks]
    print_table(args, table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "machine": machine(), "date": time.strftime("%Y-%m-%d"), "rate_mbit": args.rate,
            "seconds": args.seconds, "repeats": args.repeats, "load": os.getloadavg(),
            "summary": table, "raw": {str(k): v for k, v in raw.items()}}, indent=1))
        print(f"wrote {args.out}")


def print_table(args, table: list[dict]) -> None:
    print(f"\n{machine()}; links {args.rate:g} Mbit/s both ways, {args.repeats} repeats "
          f"of {args.seconds:g} s\n")
    print("| K | ring transfers | ring min / R | ring median / R | ring max / R "
          "| star total / R (median) | star total / R (min) | star smallest share / R |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in table:
        print(f"| {row['k']} | {row['transfers']} | {row['ring_min']:.3f} | "
              f"{row['ring_median']:.3f} | {row['ring_max']:.3f} | "
              f"{row['star_sum_median']:.3f} | {row['star_sum_min']:.3f} | "
              f"{row['star_min_share']:.3f} |")


if __name__ == "__main__":
    main()
