"""What Spark's authentication and RPC encryption (on by default) cost the demo.

The demo's command (`sparknet train`, LeNet on Fashion-MNIST, K=2 on local-cluster,
tau=50), fewer rounds, run with the defaults and with --insecure-spark, interleaved
(A B A B ...). Each run: the command's wall time (Spark's start included), the
fit's median round time, and whether it printed the warning that Spark's RPC runs
in clear (the defaults must not).

    .venv/bin/python bench/bench_security_cost.py [--rounds 10] [--repeats 3]

Raw output: bench/results/<date>-<machine>/security_cost.json (results_io).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import interleave, record, summarize  # noqa: E402

SPARKNET = Path(sys.executable).with_name("sparknet")
CLEAR_WARNING = "Spark's RPC is not encrypted"


def demo_run(rounds: int, insecure: bool, runs: list) -> float:
    """One demo-sized `sparknet train`; its wall seconds (details appended to runs)."""
    with tempfile.TemporaryDirectory() as work:
        metrics = Path(work) / "metrics.jsonl"
        argv = [str(SPARKNET), "train", "--model", "lenet", "--data", "fashion-mnist",
                "--workers", "2", "--tau", "50", "--rounds", str(rounds),
                "--validate-every", str(rounds), "--metrics", str(metrics)]
        tic = time.perf_counter()
        done = subprocess.run(argv + (["--insecure-spark"] if insecure else []), cwd=work,
                              capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - tic
        if done.returncode:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: "
                               f"{done.stderr[-2000:]}")
        history = [json.loads(line) for line in metrics.read_text().splitlines()]
    runs.append({"insecure": insecure, "wall_s": wall,
                 "round_s": [h["round_s"] for h in history],
                 "accuracy": history[-1].get("val_accuracy"),
                 "clear_warning": CLEAR_WARNING in done.stderr + done.stdout})
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs: list = []
    walls = interleave({"secure (default)": lambda: demo_run(args.rounds, False, runs),
                        "--insecure-spark": lambda: demo_run(args.rounds, True, runs)},
                       args.repeats)
    rows = []
    for name, insecure in (("secure (default)", False), ("--insecure-spark", True)):
        mine = [r for r in runs if r["insecure"] == insecure]
        round_medians = [statistics.median(r["round_s"][1:]) for r in mine]
        rows.append({"variant": name, "wall": summarize(walls[name]), "wall_s": walls[name],
                     "round": summarize(round_medians), "round_s": round_medians,
                     "clear_warning": [r["clear_warning"] for r in mine],
                     "accuracy": [r["accuracy"] for r in mine]})
        print(f"{name}: wall {rows[-1]['wall']}, median round {rows[-1]['round']}, "
              f"clear-RPC warning {rows[-1]['clear_warning']}")
    record("security_cost", rows=rows, extra={"rounds": args.rounds, "repeats": args.repeats,
                                              "runs": runs})


if __name__ == "__main__":
    main()
