"""Example (c): SparkNet on the output of a graph computation done in Spark. Only a
few Fashion-MNIST training images are labelled (1%). Spark ML projects the images
(PCA) and links each to its nearest neighbours (random-projection LSH), and label
propagation over that graph, written with DataFrame joins, labels the rest: each
round every unlabelled image takes the label its labelled neighbours weigh most,
the seed labels fixed. LeNet then trains with SparkNet on the labels the graph gave.

    python examples/graph_labels.py [--images 6000] [--seeds 0.01] [--neighbours 8]
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


def image_table(spark, count: int, seeds: float, seed: int):
    """(id, image bytes, pixels vector, true label, seed label or null)."""
    from pyspark.ml.linalg import Vectors

    images, labels = (a[:count] for a in fashion_mnist("train"))
    rng = np.random.default_rng(seed)
    is_seed = rng.random(count) < seeds
    rows = [(i, bytearray(images[i].tobytes()), Vectors.dense(images[i].ravel() / 255.0),
             int(labels[i]), int(labels[i]) if is_seed[i] else None) for i in range(count)]
    return spark.createDataFrame(rows, ["id", "image", "pixels", "label", "seed_label"])


def neighbour_graph(table, neighbours: int, seed: int):
    """Edges (src, dst, weight): each image's nearest neighbours in PCA space."""
    from pyspark.ml.feature import PCA, BucketedRandomProjectionLSH
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    features = PCA(k=32, inputCol="pixels", outputCol="features").fit(table).transform(
        table).select("id", "features").cache()
    lsh = BucketedRandomProjectionLSH(inputCol="features", outputCol="hashes",
                                      bucketLength=2.0, numHashTables=3, seed=seed).fit(features)
    pairs = lsh.approxSimilarityJoin(features, features, 4.0, distCol="distance").select(
        F.col("datasetA.id").alias("src"), F.col("datasetB.id").alias("dst"), "distance")
    nearest = Window.partitionBy("src").orderBy("distance")
    edges = (pairs.where("src != dst").withColumn("rank", F.row_number().over(nearest))
             .where(F.col("rank") <= neighbours)
             .select("src", "dst", (1.0 / (1.0 + F.col("distance"))).alias("weight")))
    return edges.localCheckpoint()


def propagate(edges, seeds, rounds: int):
    """(id, label): label propagation from the seed labels (kept fixed) over edges."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    labelled = seeds
    strongest = Window.partitionBy("src").orderBy(F.desc("score"), "label")
    for _ in range(rounds):
        votes = (edges.join(labelled.withColumnRenamed("id", "dst"), "dst")
                 .groupBy("src", "label").agg(F.sum("weight").alias("score")))
        taken = (votes.withColumn("rank", F.row_number().over(strongest)).where("rank = 1")
                 .select(F.col("src").alias("id"), "label")
                 .join(seeds.select("id"), "id", "left_anti"))
        labelled = seeds.unionByName(taken).localCheckpoint()  # cut the lineage each round
    return labelled


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/graph"))
    parser.add_argument("--images", type=int, default=6000)
    parser.add_argument("--seeds", type=float, default=0.01, help="share labelled by hand")
    parser.add_argument("--neighbours", type=int, default=8)
    parser.add_argument("--propagation-rounds", type=int, default=8)
    add_training_flags(parser, tau=50, rounds=8)
    args = parser.parse_args(argv)
    spark = local_spark(f"local-cluster[{args.workers},1,1024]")
    try:
        summary = run(spark, args)
    finally:
        spark.stop()
    print(json.dumps(summary))
    return 0


def run(spark, args) -> dict:
    from pyspark.sql import functions as F

    table = image_table(spark, args.images, args.seeds, args.seed).cache()
    seeds = table.where("seed_label IS NOT NULL").select("id", F.col("seed_label").alias("label"))
    labelled = propagate(neighbour_graph(table, args.neighbours, args.seed), seeds,
                         args.propagation_rounds)
    graph_labelled = table.select("id", "image", F.col("label").alias("true_label")).join(
        labelled, "id")
    counts = graph_labelled.agg(F.count("*").alias("n"),
                                F.sum((F.col("label") == F.col("true_label")).cast("int"))
                                .alias("right")).first()
    trainer = SparkNetTrainer(spark, zoo.lenet(batch_size=64), zoo.lenet_solver(),
                              num_workers=args.workers, tau=args.tau, seed=args.seed)
    records = graph_labelled.select("image", "label").repartition(args.workers)  # even
    result = trainer.fit(dataframe_records(records, shape=(1, 28, 28)),
                         fashion_mnist("test"), rounds=args.rounds, validate_every=args.rounds,
                         metrics_path=args.out / "metrics.jsonl", progress=False)
    return {"images": args.images, "seed_labels": seeds.count(),
            "graph_labelled": counts["n"], "graph_label_accuracy": counts["right"] / counts["n"],
            "val_accuracy": result.history[-1]["val_accuracy"],
            "elapsed_s": result.history[-1]["elapsed_s"]}


if __name__ == "__main__":
    sys.exit(main())
