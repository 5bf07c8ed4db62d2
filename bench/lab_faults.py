"""Every network fault of the lab against both exchanges: what a LeNet fit does.

K worker hosts on shaped links; for each exchange (the driver's star, the ring)
an undisturbed fit, then the same seeded fit with one fault on one worker host
from round 4: loss, delay, a 10x slower link, the link down or cut one way for
less and more than the round deadline, the executor killed, the master killed
(in a fresh lab of its own: the lab keeps no master after it). Each row: what the fit did (finished,
or failed with which error, how long after the fault), the rounds under the
fault against undisturbed rounds, the final accuracy against undisturbed, and
whether the final weights are bit-for-bit the undisturbed fit's. The undisturbed
fit runs again at the end of each exchange's rows (A B ... A). Needs root.

    sudo .venv/bin/python bench/lab_faults.py [--k 2] [--rate 500] [--rounds 12]

Raw output: bench/results/<date>-<machine>/lab_faults.json (results_io).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
import netlab_links  # noqa: E402
from netlab import Lab  # noqa: E402
from netlab_faults import Fault, run_fit  # noqa: E402
from results_io import record  # noqa: E402

AT_ROUND, DEADLINE_S = 4, 20.0
# (row name, fault kind, how long: ("rounds", n) or ("seconds", s), fit options)
SCENARIOS = [
    ("loss 1%", "loss:0.01", ("rounds", 4), {}),
    ("loss 5%", "loss:0.05", ("rounds", 4), {}),
    ("delay 50 ms", "delay:50", ("rounds", 4), {}),
    ("delay 200 ms, 20 ms jitter", "delay:200:20", ("rounds", 4), {}),
    ("link 10x slower", "slow:10", ("rounds", 4), {}),
    ("link 10x slower, min_workers=1", "slow:10", ("rounds", 4), {"min_workers": 1}),
    ("link down 5 s (< deadline)", "down", ("seconds", 5), {}),
    ("link down 40 s (> deadline)", "down", ("seconds", 40), {}),
    ("host->driver cut 5 s", "cut_out", ("seconds", 5), {}),
    ("driver->host cut 5 s", "cut_in", ("seconds", 5), {}),
    ("host->driver cut 40 s (> deadline)", "cut_out", ("seconds", 40), {}),
    ("executor killed", "kill", ("rounds", 0), {}),
]
MASTER_SCENARIO = ("master killed", "kill_master", ("rounds", 0), {})


def fault_for(kind: str, span: tuple, host: str) -> Fault:
    unit, amount = span
    return Fault(kind, host, AT_ROUND, **({"seconds": amount} if unit == "seconds"
                                          else {"rounds": amount}))


def fit_row(lab, exchange: str, args, name: str, faults: list, extra_opts: dict,
            weights_out: Path) -> dict:
    opts = {"exchange": exchange, "k": args.k, "rounds": args.rounds, "tau": args.tau,
            "train": args.train, "test": 2000, "round_timeout": DEADLINE_S,
            "weights_out": str(weights_out), **extra_opts}
    run = run_fit(lab, opts, faults, deadline_s=600).as_dict()
    print(f"{exchange:6} {name:36} {run['result'].get('outcome', 'no result'):8} "
          f"{run['result'].get('error', '')} {run['result'].get('accuracy', '')} "
          f"wall {run['wall_s']:.0f} s", flush=True)
    return {"exchange": exchange, "scenario": name, "weights_path": str(weights_out), **run}


def unsupported_row(exchange: str, name: str, fault: Fault) -> dict:
    fault.error = netlab_links.NO_NETEM
    return {"exchange": exchange, "scenario": name, "result": {"outcome": "unsupported"},
            "faults": [vars(fault)]}


def exchange_rows(lab, exchange: str, args, scenarios: list, work: Path) -> list:
    rows = [fit_row(lab, exchange, args, "undisturbed", [], {}, work / f"{exchange}-0.npy")]
    for i, (name, kind, span, extra) in enumerate(scenarios, 1):
        if exchange == "ring" and "min_workers" in extra:
            continue  # the ring has no partial rounds: every worker holds a chunk
        if kind.startswith("delay") and not lab_has_netem():
            rows.append(unsupported_row(exchange, name, fault_for(kind, span, "w1")))
            continue
        rows.append(fit_row(lab, exchange, args, name, [fault_for(kind, span, "w1")], extra,
                            work / f"{exchange}-{i}.npy"))
    rows.append(fit_row(lab, exchange, args, "undisturbed (again)", [], {},
                        work / f"{exchange}-again.npy"))
    return rows


def master_row(lab, exchange: str, args, work: Path) -> dict:
    """The master killed mid-fit (a lab of its own: it stays dead)."""
    name, kind, span, extra = MASTER_SCENARIO
    return fit_row(lab, exchange, args, name, [fault_for(kind, span, "master")], extra,
                   work / f"{exchange}-master.npy")


def lab_has_netem() -> bool:
    return netlab_links.has_qdisc("netem")


def compare(rows: list, work: Path) -> None:
    """Each row against its exchange's undisturbed fits: round times, weights, accuracy."""
    import numpy as np
    for exchange in {r["exchange"] for r in rows}:
        mine = [r for r in rows if r["exchange"] == exchange]
        calm = [r for r in mine if r["scenario"].startswith("undisturbed")]
        calm_rounds = [s for r in calm for s in r["round_s"][1:] if s]
        base = np.load(work / f"{exchange}-0.npy")
        for r in mine:
            r["undisturbed_round_s"] = statistics.median(calm_rounds)
            r["undisturbed_accuracy"] = calm[0]["result"].get("accuracy")
            under = r.get("round_s", [])[AT_ROUND:AT_ROUND + 4]
            r["faulted_round_s"] = statistics.median(under) if under else None
            path = Path(r.pop("weights_path", "") or work / "none")
            r["weights_equal"] = bool(path.exists() and np.array_equal(np.load(path), base))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--rate", type=float, default=500.0, help="Mbit/s, every link")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--tau", type=int, default=5)
    parser.add_argument("--train", type=int, default=2000, help="training images")
    args = parser.parse_args()
    rows, work = [], Path(tempfile.mkdtemp(prefix="lab_faults-"))
    with Lab(k=args.k, rate_mbit=args.rate, spark=True) as lab:
        rows += exchange_rows(lab, "driver", args, SCENARIOS, work)
        rows += exchange_rows(lab, "ring", args, SCENARIOS, work)
    for exchange in ("driver", "ring"):
        with Lab(k=args.k, rate_mbit=args.rate, spark=True) as lab:
            rows.append(master_row(lab, exchange, args, work))
    compare(rows, work)
    shutil.rmtree(work)
    record("lab_faults", rows=rows,
           extra={"k": args.k, "rate_mbit": args.rate, "rounds": args.rounds, "tau": args.tau,
                  "train": args.train, "at_round": AT_ROUND, "round_timeout": DEADLINE_S})


if __name__ == "__main__":
    main()
