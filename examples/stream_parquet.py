"""Example (a): SparkNet on a stream. Fashion-MNIST arrives as parquet files landing
in a folder at a fixed rate; Spark's file source reads them as a streaming
DataFrame and LeNet trains on each micro-batch as it arrives (K workers, each
with a buffer of recent records). Test accuracy after every batch goes to a
metrics file and a PNG (accuracy against wall-clock time and iterations).

    python examples/stream_parquet.py                  # 12 files of 2,500 records, one every 2 s
    python examples/stream_parquet.py --files 0 --available-now --folder DIR
                                                       # train on what DIR holds, then stop

Run again with the same --checkpoint folder, it resumes the model and the
stream's offsets together: each file is trained on exactly once.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from landing import RECORD_SHAPE, SCHEMA_DDL, land_in_background, stage_files  # noqa: E402

from pysparknet import cli, zoo  # noqa: E402
from pysparknet.data import fashion_mnist  # noqa: E402
from pysparknet.spark import SparkNetTrainer, local_spark  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/stream"),
                        help="folder for the landing files, checkpoints, metrics and plot")
    parser.add_argument("--folder", type=Path, help="the watched folder (default OUT/in)")
    parser.add_argument("--checkpoint", type=Path, help="default OUT/checkpoint")
    parser.add_argument("--files", type=int, default=12, help="files to land (0: none)")
    parser.add_argument("--per-file", type=int, default=2500, help="records a file")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between files")
    parser.add_argument("--available-now", action="store_true",
                        help="train on the files there at the start, then stop")
    parser.add_argument("--workers", type=int, default=2, help="K")
    parser.add_argument("--tau", type=int, default=16, help="iterations a round")
    parser.add_argument("--rounds-per-batch", type=int, default=2)
    parser.add_argument("--buffer", type=int, default=4096, help="records a worker keeps")
    parser.add_argument("--master", default=None, help="default local-cluster[K,1,1024]")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds to wait for the stream to be trained on")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def wait_for(training, records: int, timeout_s: float) -> None:
    """Until `records` have been trained on (or the query ended), within timeout_s."""
    deadline = time.monotonic() + timeout_s
    while training.records_seen < records:
        if training.await_termination(1.0):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{training.records_seen} of {records} records trained on "
                               f"after {timeout_s:.0f} s")


def main(argv=None) -> int:
    args = parse_args(argv)
    folder = args.folder or args.out / "in"
    checkpoint = args.checkpoint or args.out / "checkpoint"
    metrics = args.out / "metrics.jsonl"
    spark = local_spark(args.master or f"local-cluster[{args.workers},1,1024]")
    try:
        landing = None
        if args.files:
            images, labels = fashion_mnist("train")
            count = args.files * args.per_file
            staged = stage_files(spark, images[:count], labels[:count], args.out / "staging",
                                 args.per_file)
            landing = land_in_background(staged, folder, args.every)
        folder.mkdir(parents=True, exist_ok=True)
        stream = (spark.readStream.schema(SCHEMA_DDL).option("maxFilesPerTrigger", 1)
                  .parquet(str(folder)))
        trainer = SparkNetTrainer(spark, zoo.lenet(batch_size=64), zoo.lenet_solver(),
                                  num_workers=args.workers, tau=args.tau, seed=args.seed)
        training = trainer.fit_stream(
            stream, validation_data=fashion_mnist("test"), checkpoint_dir=checkpoint,
            rounds_per_batch=args.rounds_per_batch, buffer_records=args.buffer,
            metrics_path=metrics, shape=RECORD_SHAPE, query_name="fashion_mnist_stream",
            trigger={"availableNow": True} if args.available_now else None)
        try:
            if args.available_now:
                training.await_termination(args.timeout)
            else:
                landing.join()
                wait_for(training, args.files * args.per_file, args.timeout)
        finally:
            training.stop()
        report(training, metrics)
    finally:
        spark.stop()
    return 0


def report(training, metrics: Path) -> None:
    """The run's summary on stdout (one JSON line), and the plot beside the metrics."""
    history = training.history
    last = next((r for r in reversed(history) if "val_accuracy" in r), {})
    print(json.dumps({"batch_records": training.batch_records,
                      "records_seen": training.records_seen,
                      "passed_over": training.passed_over,
                      "val_accuracy": last.get("val_accuracy"),
                      "elapsed_s": last.get("elapsed_s")}))
    if last:
        cli.main(["plot", str(metrics), "-o", str(metrics.with_suffix(".png"))])


if __name__ == "__main__":
    sys.exit(main())
