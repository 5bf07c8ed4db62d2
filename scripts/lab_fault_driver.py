"""A LeNet SparkNet fit run as the lab's driver (Lab.run_driver / netlab_faults.run_fit).

    python lab_fault_driver.py '<json options>'

Options (JSON): exchange ('driver' | 'ring'), k, tau, rounds, train (images),
test (images), seed, round_timeout, min_workers, round_seconds, metrics (path),
checkpoint_dir, checkpoint_every, resume, validate_every, weights_out (a .npy path for the final
weights). Prints one line `RESULT {json}`: outcome 'finished' or 'failed', the
error's type and message, the final test accuracy, and the fit's seconds.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
from netlab import driver_main  # scripts/ is on PYTHONPATH (run_fit puts it there)

from pysparknet import zoo
from pysparknet.data import fashion_mnist
from pysparknet.spark import Exchange, Faults, SparkNetTrainer, Stragglers


def trainer_for(spark, opts: dict) -> SparkNetTrainer:
    return SparkNetTrainer(
        spark, zoo.lenet(), zoo.lenet_solver(), num_workers=opts.get("k", 2),
        tau=opts.get("tau", 5), seed=opts.get("seed", 3),
        exchange=Exchange(kind=opts.get("exchange", "driver")),
        faults=Faults(round_timeout=opts.get("round_timeout"), slots_timeout=120),
        stragglers=Stragglers(round_seconds=opts.get("round_seconds"),
                              min_workers=opts.get("min_workers")))


def fit(spark, opts: dict) -> dict:
    """The fit, and what became of it (never raises: a failure is a result)."""
    x, y = fashion_mnist("train")
    xt, yt = fashion_mnist("test")
    n, n_test, rounds = opts.get("train", 2000), opts.get("test", 2000), opts["rounds"]
    started = time.monotonic()
    out = {"started_monotonic": started}
    try:
        result = trainer_for(spark, opts).fit(
            (x[:n], y[:n]), (xt[:n_test], yt[:n_test]), rounds=rounds,
            validate_every=opts.get("validate_every", rounds), metrics_path=opts.get("metrics"), progress=False,
            checkpoint_dir=opts.get("checkpoint_dir"), resume=opts.get("resume", False),
            checkpoint_every=opts.get("checkpoint_every", 1))
    except Exception as error:  # the outcome under a fault: reported, not hidden
        out.update(outcome="failed", error=type(error).__name__,
                   message=" ".join(str(error).split()))
    else:
        out.update(outcome="finished", accuracy=result.history[-1].get("val_accuracy"),
                   rounds=len(result.history))
        if opts.get("weights_out"):
            np.save(opts["weights_out"], result.weights.flat)
    out.update(ended_monotonic=time.monotonic(), fit_s=time.monotonic() - started)
    return out


if __name__ == "__main__":
    options = json.loads(sys.argv[1])
    driver_main(fit, executors=options.get("k", 2), conf=options.get("spark_conf"))
