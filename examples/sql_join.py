"""Example (b): SparkNet on the output of a SQL query. Two parquet tables, as a
labelling pipeline leaves them: `images` (id, image bytes) and `annotations` (id,
label, split, reviewed), where a share of the training labels were never reviewed
and are wrong. A SQL join keeps the reviewed training records, and LeNet trains
on the query's output; a second run trains on the unfiltered join to show what
the filter is worth.

    python examples/sql_join.py [--records 20000] [--noisy 0.3] [--rounds 8]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from pysparknet import zoo
from pysparknet.data import dataframe_records, fashion_mnist
from pysparknet.spark import SparkNetTrainer, local_spark

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_training_flags  # noqa: E402  (examples/common.py)

TRAIN_QUERY = """
    SELECT i.image, a.label
    FROM images i JOIN annotations a ON i.id = a.id
    WHERE a.split = 'train' AND a.reviewed
"""
UNFILTERED_QUERY = """
    SELECT i.image, a.label
    FROM images i JOIN annotations a ON i.id = a.id
    WHERE a.split = 'train'
"""
TEST_QUERY = """
    SELECT i.image, a.label
    FROM images i JOIN annotations a ON i.id = a.id
    WHERE a.split = 'test'
"""


def write_tables(spark, folder: Path, records: int, noisy: float, seed: int) -> None:
    """images and annotations as parquet; `noisy` of the training labels are wrong and
    not reviewed (the test split's labels are all right)."""
    train, test = fashion_mnist("train"), fashion_mnist("test")
    images = np.concatenate([train[0][:records], test[0]])
    labels = np.concatenate([train[1][:records], test[1]]).astype(int)
    split = ["train"] * records + ["test"] * len(test[1])
    rng = np.random.default_rng(seed)
    wrong = np.zeros(len(labels), bool)
    wrong[:records] = rng.random(records) < noisy
    given = labels.copy()
    given[wrong] = (labels[wrong] + rng.integers(1, 10, wrong.sum())) % 10
    spark.createDataFrame([(i, bytearray(images[i].tobytes())) for i in range(len(images))],
                          "id LONG, image BINARY").write.mode("overwrite").parquet(
        str(folder / "images"))
    spark.createDataFrame([(i, int(given[i]), split[i], bool(not wrong[i]))
                           for i in range(len(labels))],
                          "id LONG, label INT, split STRING, reviewed BOOLEAN").write.mode(
        "overwrite").parquet(str(folder / "annotations"))


def train_on(spark, query: str, args, metrics: Path) -> dict:
    trainer = SparkNetTrainer(spark, zoo.lenet(batch_size=64), zoo.lenet_solver(),
                              num_workers=args.workers, tau=args.tau, seed=args.seed)
    records = spark.sql(query)
    shape = (1, 28, 28)
    # repartitioned: a join's output partitions can be empty or uneven; each worker
    # trains on one of them
    result = trainer.fit(dataframe_records(records.repartition(args.workers), shape=shape),
                         dataframe_records(spark.sql(TEST_QUERY), shape=shape),
                         rounds=args.rounds, validate_every=args.rounds,
                         metrics_path=metrics, progress=False)
    last = result.history[-1]
    return {"records": records.count(), "val_accuracy": last["val_accuracy"],
            "elapsed_s": last["elapsed_s"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/sql"))
    parser.add_argument("--records", type=int, default=20000, help="training records")
    parser.add_argument("--noisy", type=float, default=0.3,
                        help="share of training labels that are wrong and unreviewed")
    add_training_flags(parser, tau=50, rounds=8)
    args = parser.parse_args(argv)
    spark = local_spark(f"local-cluster[{args.workers},1,1024]")
    try:
        write_tables(spark, args.out / "tables", args.records, args.noisy, args.seed)
        for name in ("images", "annotations"):
            spark.read.parquet(str(args.out / "tables" / name)).createOrReplaceTempView(name)
        results = {"filtered": train_on(spark, TRAIN_QUERY, args, args.out / "filtered.jsonl"),
                   "unfiltered": train_on(spark, UNFILTERED_QUERY, args,
                                          args.out / "unfiltered.jsonl")}
    finally:
        spark.stop()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
