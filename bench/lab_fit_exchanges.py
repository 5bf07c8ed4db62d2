"""LeNet on Fashion-MNIST on the network lab: the same seeded fit over the driver's
star, the workers' ring, and the ring over bfloat16, K worker hosts on shaped links.

Reports each fit's test accuracy and time, and how far the ring's final weights
are from the star's (relative L2 difference; after round 1 too). Needs root.

    sudo .venv/bin/python bench/lab_fit_exchanges.py [--k 4] [--rate 500] [--rounds 20]

Raw output: bench/results/<date>-<machine>/lab_fit_exchanges.json (results_io).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
from netlab import Lab  # noqa: E402
from results_io import record  # noqa: E402

DRIVER = r"""
import json, sys, time
import numpy as np
from pysparknet import zoo
from pysparknet.data import fashion_mnist
from pysparknet.spark import Exchange, SparkNetTrainer, local_spark
k, rounds, master, conf_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
conf = json.load(open(conf_path))
spark = local_spark(master, conf={**conf, "spark.executor.cores": "1",
                                  "spark.cores.max": str(k), "spark.executor.memory": "768m"})
train, test = fashion_mnist("train"), fashion_mnist("test")
out = {}
for name, exchange in [("driver", Exchange()), ("ring", Exchange(kind="ring")),
                       ("ring-bfloat16", Exchange(kind="ring", dtype="bfloat16"))]:
    weights = []
    for n in (1, rounds):
        trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=k,
                                  tau=50, seed=3, exchange=exchange)
        tic = time.perf_counter()
        result = trainer.fit(train, test, rounds=n, validate_every=rounds, progress=False)
        weights.append(result.weights.flat.copy())
    out[name] = {"accuracy": result.history[-1]["val_accuracy"],
                 "fit_s": time.perf_counter() - tic,
                 "sync_s": [h["sync_s"] for h in result.history]}
    np.save(f"/tmp/lab_fit_{name}_1.npy", weights[0]); np.save(f"/tmp/lab_fit_{name}.npy", weights[1])
spark.stop()
print(json.dumps(out))
"""


def relative(a, b) -> float:
    import numpy as np
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main() -> None:
    import numpy as np
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--rate", type=float, default=500.0, help="Mbit/s, every link")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with Lab(k=args.k, rate_mbit=args.rate, spark=True) as lab:
        env = lab.spark_env("driver")
        done = lab.run_in("driver", [lab.python, "-c", DRIVER, args.k, args.rounds,
                                     lab.master_url, env["NETLAB_SPARK_CONF"]],
                          timeout=3600, env=env, cwd=lab.work_dir)
    fits = json.loads(done.stdout.splitlines()[-1])
    star = {n: np.load(f"/tmp/lab_fit_driver{n}.npy") for n in ("_1", "")}
    for name in ("ring", "ring-bfloat16"):
        fits[name]["vs_star_after_round_1"] = relative(
            np.load(f"/tmp/lab_fit_{name}_1.npy"), star["_1"])
        fits[name]["vs_star_at_the_end"] = relative(np.load(f"/tmp/lab_fit_{name}.npy"),
                                                    star[""])
    for name, fit in fits.items():  # BENCHMARKS.md renders the table from the record
        print(f"K={args.k} {name}: accuracy {fit['accuracy']:.4f}, {fit['fit_s']:.0f} s, "
              f"vs star {fit.get('vs_star_after_round_1', 0):.2e} after round 1, "
              f"{fit.get('vs_star_at_the_end', 0):.2e} at the end")
    record("lab_fit_exchanges", rows=[{"exchange": name, **fit} for name, fit in fits.items()],
           extra={"k": args.k, "rate_mbit": args.rate, "rounds": args.rounds, "tau": 50})


if __name__ == "__main__":
    main()
