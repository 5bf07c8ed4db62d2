"""Files landing in a folder, as a stream's producer writes them: Fashion-MNIST
records as parquet files of (image bytes, label) rows. The files are written in
one Spark job beside the folder, then moved into it one at a time (a rename:
each appears whole, as Spark's file source expects)."""
from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np

SCHEMA_DDL = "image BINARY, label INT"
RECORD_SHAPE = (1, 28, 28)


def stage_files(spark, images: np.ndarray, labels: np.ndarray, staging: Path,
                per_file: int) -> list[Path]:
    """The records as parquet files of `per_file` rows each, in order, under staging."""
    from pyspark.sql import types as T

    schema = T.StructType([T.StructField("image", T.BinaryType(), False),
                           T.StructField("label", T.IntegerType(), False)])
    rows = [(bytearray(image.tobytes()), int(label)) for image, label in zip(images, labels)]
    files = -(-len(rows) // per_file)
    if staging.exists():
        shutil.rmtree(staging)
    # Slices of parallelize keep the order: file k holds rows k*per_file onwards.
    chunks = spark.sparkContext.parallelize(
        [rows[i:i + per_file] for i in range(0, len(rows), per_file)], files)
    spark.createDataFrame(chunks.flatMap(lambda chunk: chunk), schema).write.parquet(
        str(staging))
    return sorted(staging.glob("part-*.parquet"))


def land(files: list[Path], folder: Path, every_s: float = 0.0, first: int = 0) -> None:
    """Move the staged files into folder, one each `every_s` seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, path in enumerate(files, first):
        if number > first and every_s:
            time.sleep(every_s)
        path.rename(folder / f"batch-{number:05d}.parquet")


def land_in_background(files: list[Path], folder: Path, every_s: float) -> threading.Thread:
    """land() on a thread, the stream training meanwhile; join() it when done."""
    thread = threading.Thread(target=land, args=(files, folder, every_s), daemon=True)
    thread.start()
    return thread
