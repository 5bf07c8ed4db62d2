"""SparkNetModel.transform's throughput on K executors against K times one in-process
Predictor (Net forward passes) at the same batch size, measured in the same run.

The baseline runs inside an executor (one core, the executors' OpenBLAS threads);
the transform is timed from the action's start (the broadcast, the net built in
each Python worker, Arrow batches, decoding the array column, the forward passes).
Target (issue 27): ratio >= 0.8.

    python bench/bench_ml_scoring.py [--workers 2] [--images 10000] [--batch 100]

--images above 10,000 cycles through the test set: the action's fixed costs (the
job, the Python workers, the nets' construction) then weigh less, as they do on a
real scoring job.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import record  # noqa: E402

from pysparknet import Net, zoo
from pysparknet.data import fashion_mnist
from pysparknet.ml import SparkNetModel
from pysparknet.prototxt import to_text
from pysparknet.spark import local_spark


def one_process(spark, weights, images: np.ndarray, batch: int) -> float:
    """Images/s of one Predictor on an executor (built before the clock starts)."""
    def run(_):
        from pysparknet.predict import Predictor
        predictor = Predictor(zoo.lenet(), weights, batch_size=batch)
        predictor.scores(images[:batch])  # warm
        start = time.perf_counter()
        predictor.scores(images)
        yield len(images) / (time.perf_counter() - start)
    return spark.sparkContext.parallelize([0], 1).mapPartitions(run).collect()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    k = args.workers
    spark = local_spark(f"local-cluster[{k},1,1024]")
    test_images = fashion_mnist("test")[0]
    # More images than the test set's 10,000 cycle through it (np.resize repeats).
    images = np.resize(test_images, (args.images, *test_images.shape[1:]))
    weights = Net(zoo.lenet(), zoo.lenet_solver(), seed=1).get_weights()
    model = SparkNetModel(weights, netPrototxt=to_text(zoo.lenet()), featuresCol="image",
                          batchSize=args.batch)
    frame = spark.createDataFrame(pd.DataFrame(
        {"image": [im.ravel().astype(float).tolist() for im in images]})).repartition(k)
    frame = frame.cache()
    frame.count()
    single = one_process(spark, weights, images[: max(args.batch, args.images // k)],
                         args.batch)
    rows = []
    for run in ("first (builds the nets)", "second (nets cached)"):
        start = time.perf_counter()
        model.transform(frame).select("prediction").write.format("noop").mode("overwrite") \
            .save()
        rate = len(images) / (time.perf_counter() - start)
        print(f"{run}: one process {single:.0f} images/s; transform on {k} executors "
              f"{rate:.0f} images/s; ratio to {k} x one process {rate / (k * single):.2f} "
              "(target >= 0.8)")
        rows.append({"run": run, "one_process_images_per_s": single,
                     "transform_images_per_s": rate, "ratio": rate / (k * single)})
    spark.stop()
    record("ml_scoring", rows=rows, extra={"workers": k, "images": args.images,
                                           "batch": args.batch})


if __name__ == "__main__":
    main()
