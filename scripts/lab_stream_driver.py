"""A Structured Streaming SparkNet fit run as the lab's driver (netlab_faults.run_fit
with driver="lab_stream_driver.py"): parquet files of Fashion-MNIST records in a
folder, read with maxFilesPerTrigger=1 and the availableNow trigger, one micro-batch
a file, checkpointed in `checkpoint_dir`; run again on the same folders, it resumes.

    python lab_stream_driver.py '<json options>'

Options (JSON): folder, checkpoint_dir, metrics, files, per_file (staged into the
folder by the first run), tau, rounds_per_batch, round_timeout, timeout. Prints
`RESULT {json}`: outcome, the error, batch_records, rounds.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from landing import RECORD_SHAPE, SCHEMA_DDL, land, stage_files  # noqa: E402
from netlab import driver_main  # noqa: E402  (scripts/: run_fit's PYTHONPATH)

from pysparknet import zoo  # noqa: E402
from pysparknet.data import fashion_mnist  # noqa: E402
from pysparknet.spark import Faults, SparkNetTrainer  # noqa: E402


def stage(spark, opts: dict, folder: Path) -> None:
    if folder.exists():
        return
    images, labels = fashion_mnist("train")
    count = opts["files"] * opts["per_file"]
    staged = stage_files(spark, images[:count], labels[:count], folder.parent / "staging",
                         opts["per_file"])
    land(staged, folder)


def train(spark, opts: dict) -> dict:
    folder = Path(opts["folder"])
    stage(spark, opts, folder)
    stream = spark.readStream.schema(SCHEMA_DDL).option("maxFilesPerTrigger", 1).parquet(
        str(folder))
    trainer = SparkNetTrainer(spark, zoo.lenet(batch_size=64), zoo.lenet_solver(),
                              num_workers=2, tau=opts.get("tau", 8), seed=3,
                              faults=Faults(round_timeout=opts.get("round_timeout"),
                                            slots_timeout=120))
    xt, yt = fashion_mnist("test")
    training = trainer.fit_stream(
        stream, validation_data=(xt[:1000], yt[:1000]), checkpoint_dir=opts["checkpoint_dir"],
        rounds_per_batch=opts.get("rounds_per_batch", 2), metrics_path=opts["metrics"],
        shape=RECORD_SHAPE, trigger={"availableNow": True}, progress=False)
    out = {"started_monotonic": time.monotonic()}
    try:
        ended = training.await_termination(opts.get("timeout", 600))
        out["outcome"] = "finished" if ended else "timed out"
    except Exception as error:  # the outcome under a fault: reported, not hidden
        out.update(outcome="failed", error=type(error).__name__,
                   message=" ".join(str(error).split())[:2000])
    finally:
        training.stop()
    out.update(ended_monotonic=time.monotonic(), batch_records=training.batch_records,
               rounds=len(training.history))
    return out


if __name__ == "__main__":
    driver_main(train, executors=2)
