"""A soak on the network lab: a long LeNet fit under a seeded chaos schedule.

K worker hosts; the same seeded fit twice: undisturbed, and under chaos_schedule
(a fault every few rounds: loss, a 10x slower link, a link down or a host's packets
to the driver cut for seconds, an executor killed), checkpointing every
--checkpoint-every rounds, with the driver killed (SIGKILL, its JVM too) at round
--kill-driver-at and the fit resumed from its checkpoint. Reports both accuracies,
whether the checkpoint's history holds every round exactly once, the longest wait
between two rounds, and every fault with when it was applied and undone. Needs root.

    sudo .venv/bin/python bench/lab_soak.py [--k 4] [--rounds 200] [--seed 11]

Raw output: bench/results/<date>-<machine>/lab_soak.json (results_io).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
from netlab import Lab  # noqa: E402
from netlab_faults import soak  # noqa: E402
from results_io import record  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--rate", type=float, default=500.0, help="Mbit/s, every link")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--tau", type=int, default=5)
    parser.add_argument("--train", type=int, default=60000, help="training images")
    parser.add_argument("--seed", type=int, default=11, help="the chaos schedule's seed")
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--kill-driver-at", type=int, default=None,
                        help="the round the driver is killed at (default: half way)")
    args = parser.parse_args()
    fit_opts = {"k": args.k, "rounds": args.rounds, "tau": args.tau, "train": args.train,
                "test": 10000, "checkpoint_every": args.checkpoint_every,
                "validate_every": args.checkpoint_every * 5, "round_timeout": 60.0}
    with Lab(k=args.k, rate_mbit=args.rate, spark=True) as lab, \
            tempfile.TemporaryDirectory() as work:
        report = soak(lab, fit_opts, Path(work), args.seed,
                      args.kill_driver_at or args.rounds // 2)
    print(json.dumps({k: v for k, v in report.items() if k != "faults"}, indent=1))
    record("lab_soak", rows=report.pop("faults"),
           extra={**report, **vars(args), "exchange": fit_opts.get("exchange", "driver")})


if __name__ == "__main__":
    main()
