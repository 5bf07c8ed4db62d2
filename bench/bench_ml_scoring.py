"""SparkNetModel.transform's throughput on K executors against K times one in-process
Predictor (Net forward passes) at the same batch size, measured in the same run.

The baseline runs inside an executor (one core, the executors' OpenBLAS threads);
the transform is timed from the action's start (the job, the broadcast, Arrow
batches, decoding the column, the forward passes). Each image column kind is
also passed through an Arrow UDF that does nothing (the column as the transform
hands it over: arrays cast to float32 in the JVM): Spark's own cost of handing
that column to Python and a struct back, which bounds any scoring UDF. Variants run interleaved
(baseline, then each input's transform and pass-through, `--repeats` times).
Timed once beforehand: the session's first pass-through (it starts the
executors' Python workers), then the first transform (it builds their nets);
after the rest, a second model's first transform (its nets built in warm workers).
Target (issue 27): ratio >= 0.8.

    python bench/bench_ml_scoring.py [--workers 2] [--images 60000] [--batch 100]
                                     [--inputs array,raw,png] [--repeats 5]

--images above 10,000 cycle through the test set: the action's fixed costs (the
job, the Python workers) then weigh less, as they do on a real scoring job.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa  # at module level: the UDF's type hints name it

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import interleave, record, summarize  # noqa: E402

from pysparknet import Net, zoo
from pysparknet.data import encode_image, fashion_mnist
from pysparknet.ml import SparkNetModel
from pysparknet.prototxt import to_text
from pysparknet.spark import local_spark

ARROW_BATCH = 10000  # spark.sql.execution.arrow.maxRecordsPerBatch's default

# How each input kind holds an image in its column.
INPUTS = {
    "array": lambda im: im.ravel().astype(float).tolist(),  # array<double>
    "raw": lambda im: im.tobytes(),  # binary: raw uint8 pixels, imageShape set
    "png": encode_image,  # binary: encoded PNG
}


def one_process(spark, weights, images: np.ndarray, batch: int) -> float:
    """Images/s of one Predictor on an executor (built before the clock starts), on
    the task's one core, called as the transform calls it: once an Arrow batch."""
    def run(_):
        from pysparknet.predict import Predictor
        predictor = Predictor(zoo.lenet(), weights, batch_size=batch, threads=1)
        predictor.predict(images[:batch])  # warm
        start = time.perf_counter()
        for first in range(0, len(images), ARROW_BATCH):
            predictor.predict(images[first:first + ARROW_BATCH])
        yield len(images) / (time.perf_counter() - start)
    return spark.sparkContext.parallelize([0], 1).mapPartitions(run).collect()[0]


def cached_frame(spark, images: np.ndarray, kind: str, partitions: int):
    frame = spark.createDataFrame(pd.DataFrame({"image": [INPUTS[kind](im) for im in images]}))
    frame = frame.repartition(partitions).cache()
    frame.count()
    return frame


def pass_through(frame, kind: str):
    """The column handed to Python as the transform hands it (arrays cast to
    float32 in the JVM), and a result as wide as the scores back, nothing done."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import arrow_udf

    from pysparknet.ml.scoring import result_schema

    @arrow_udf(result_schema(0))  # LeNet's 10 classes
    def nothing(column: pa.Array) -> pa.Array:
        n = len(column)
        probability = pa.ListArray.from_arrays(
            pa.array(np.arange(n + 1, dtype=np.int32) * 10), pa.array(np.zeros(n * 10)))
        return pa.StructArray.from_arrays([pa.array(np.zeros(n)), probability],
                                          names=["prediction", "probability"])
    image = F.col("image").cast("array<float>") if kind == "array" else F.col("image")
    return frame.select(nothing(image).prediction)


def images_per_s(n: int, scored) -> float:
    start = time.perf_counter()
    scored.write.format("noop").mode("overwrite").save()
    return n / (time.perf_counter() - start)


def variants(spark, model, frames: dict, images: np.ndarray, args) -> dict:
    n, k = len(images), args.workers
    share = images[: max(args.batch, n // k)]
    runs = {"one process": lambda: one_process(spark, model.weights, share, args.batch)}
    for kind, frame in frames.items():
        scorer = model.copy({model.imageShape: [1, 28, 28]}) if kind == "raw" else model
        runs[f"transform {kind}"] = \
            lambda s=scorer, f=frame: images_per_s(n, s.transform(f).select("prediction"))
        runs[f"pass-through {kind}"] = \
            lambda f=frame, c=kind: images_per_s(n, pass_through(f, c))
    return runs


def table_rows(samples: dict, firsts: dict, k: int) -> list:
    baseline = summarize(samples["one process"])
    single = baseline["median"]
    rows = [{"variant": "one process (baseline)", **baseline}]
    for name, values in samples.items():
        if name != "one process":
            stats = summarize(values)
            rows.append({"variant": name, **stats, "ratio": stats["median"] / (k * single)})
    for name, rate in firsts.items():  # the session's first actions, timed once
        rows.append({"variant": name, "median": rate, "min": rate, "max": rate, "n": 1,
                     "drift": False, "ratio": rate / (k * single)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--images", type=int, default=60000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--inputs", default=",".join(INPUTS),
                        help=f"image column kinds, from {', '.join(INPUTS)}")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    kinds = [kind for kind in args.inputs.split(",") if kind]
    if not kinds or set(kinds) - set(INPUTS):
        parser.error(f"--inputs: choose from {', '.join(INPUTS)}")
    k = args.workers
    spark = local_spark(f"local-cluster[{k},1,1024]")
    test_images = fashion_mnist("test")[0]
    # More images than the test set's 10,000 cycle through it (np.resize repeats).
    images = np.resize(test_images, (args.images, *test_images.shape[1:]))
    weights = Net(zoo.lenet(), zoo.lenet_solver(), seed=1).get_weights()
    model = SparkNetModel(weights, netPrototxt=to_text(zoo.lenet()), featuresCol="image",
                          batchSize=args.batch)
    frames = {kind: cached_frame(spark, images, kind, k) for kind in kinds}
    # The session's first Python action: it starts the Python workers.
    starting = images_per_s(len(images), pass_through(frames[kinds[0]], kinds[0]))
    first = images_per_s(len(images), model.transform(frames[kinds[0]]).select("prediction"))
    samples = interleave(variants(spark, model, frames, images, args), args.repeats)
    # A new model in warm workers: what building its nets costs, apart from the session's
    # first action (imports in each Python worker, the JVM's first Arrow struct reads).
    another = SparkNetModel(weights, netPrototxt=to_text(zoo.lenet()), featuresCol="image",
                            batchSize=args.batch)
    another_first = images_per_s(len(images),
                                 another.transform(frames[kinds[0]]).select("prediction"))
    spark.stop()
    rows = table_rows(samples, {
        f"pass-through {kinds[0]}, first (starts the Python workers)": starting,
        f"transform {kinds[0]}, first (builds each worker's net)": first,
        f"transform {kinds[0]}, a second model's first (builds its nets)": another_first}, k)
    for r in rows:
        ratio = f"; ratio to {k} x one process {r['ratio']:.2f}" if "ratio" in r else ""
        print(f"{r['variant']}: {r['median']:.0f} images/s ({r['min']:.0f}-{r['max']:.0f})"
              f"{ratio}")
    record("ml_scoring", rows=rows, repeats=samples,
           extra={"workers": k, "images": args.images, "batch": args.batch,
                  "repeats_each": args.repeats})


if __name__ == "__main__":
    main()
