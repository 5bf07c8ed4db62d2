"""Scoring on the executors: a scalar-iterator Arrow UDF over the image column.

Each Python worker builds the model's Predictor once (predict.cached_predictor,
keyed by the model) from a broadcast of the net and weights, which Spark ships
once per executor, and reuses it for every Arrow batch and task after. A batch
of well-formed arrays or raw pixels is read straight from Arrow's buffers (no
Python object a row); the struct result (prediction, probability, top-k) is
built from whole NumPy arrays the same way. The DataFrame's other columns never
leave the JVM. This module imports no pyspark.ml: a Python worker that scores
pays only for the net's own imports.
"""
from typing import Iterator, Optional

import numpy as np
import pyarrow as pa
from pyspark.sql import types as T

from .. import predict
from ..data.minibatches import fit_record_shape
from ..data.spark_sources import row_to_image
from ..errors import DataError


def result_schema(top_k: int) -> T.StructType:
    fields = [T.StructField("prediction", T.DoubleType()),
              T.StructField("probability", T.ArrayType(T.DoubleType()))]
    if top_k:
        fields.append(T.StructField("top_k", T.ArrayType(T.IntegerType())))
    return T.StructType(fields)


def record_shape(net_text: str) -> tuple:
    """(C, H, W) the scoring net takes (None where a crop takes any size)."""
    definition = predict.scoring_net(net_text)
    for layer in definition.net.layer:
        if layer.type in ("Input", "SparkNetFeed"):
            dims = tuple(layer.input_param.shape[0].dim)[1:]
            crop = layer.transform_param.crop_size if layer.HasField("transform_param") else 0
            return (dims[0], None, None) if crop and len(dims) == 3 else dims
    raise DataError("the net has no Input layer to score from")


def _regular_values(column: pa.Array, row_size: int) -> Optional[np.ndarray]:
    """A list or binary column's values as one flat array (no copy) when no row is
    null and every row holds row_size values; None otherwise (the row path names
    the row)."""
    if column.null_count:
        return None
    binary = pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)
    if binary:  # pyarrow gives a binary array no .offsets: read them from its buffers
        _, offset_buffer, data_buffer = column.buffers()
        wide = pa.types.is_large_binary(column.type)
        offsets = np.frombuffer(offset_buffer, np.int64 if wide else np.int32)
        offsets = offsets[column.offset:column.offset + len(column) + 1]
    else:
        offsets = column.offsets.to_numpy()
    if np.any(np.diff(offsets) != row_size):
        return None
    if not binary:  # a list column: flatten() honours the batch's slice
        return column.flatten().to_numpy(zero_copy_only=False)
    if data_buffer is None:  # every row empty
        return np.empty(0, np.uint8)
    return np.frombuffer(data_buffer, np.uint8)[offsets[0]:offsets[-1]]


def _list_column(rows: np.ndarray, null: np.ndarray, arrow_type) -> pa.Array:
    """(n, width) values as an Arrow list column, null where `null` is set."""
    n, width = rows.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * width)
    return pa.ListArray.from_arrays(offsets, pa.array(rows.ravel(), arrow_type),
                                    mask=pa.array(null) if null.any() else None)


class Scoring:
    """What a task needs to score: pickled with the UDF, the weights by broadcast."""

    def __init__(self, key, broadcast, kind: str, column: str, shape: tuple,
                 array_shape: Optional[tuple], top_k: int, on_bad_record: str,
                 batch_size: Optional[int], device: str):
        self.key, self.broadcast, self.kind, self.column = key, broadcast, kind, column
        self.shape, self.array_shape, self.top_k = shape, array_shape, top_k
        self.on_bad_record, self.batch_size, self.device = on_bad_record, batch_size, device
        self.color = {1: False, 3: True}.get(shape[0]) if shape else None

    def predictor(self) -> predict.Predictor:
        def build():
            from ..spark.task_resources import device_for_task, task_threads

            net_text, weights = self.broadcast.value
            return predict.Predictor(net_text, weights, self.batch_size,
                                     device_for_task(self.device), threads=task_threads())
        return predict.cached_predictor(self.key, build)

    def image(self, value, where: str) -> np.ndarray:
        try:
            image = row_to_image(self.kind, value, self.array_shape, self.color)
        except DataError as error:
            raise DataError(f"column {self.column!r}, {where}: {error}") from None
        fitted = fit_record_shape(image.shape, self.shape)
        if fitted is None:
            raise DataError(f"column {self.column!r}, {where}: an image of shape "
                            f"{tuple(image.shape)}; the net takes {tuple(self.shape)}")
        return image.reshape(fitted)

    def stacked(self, column: pa.Array) -> Optional[np.ndarray]:
        """All rows as one (N, C, H, W) float32 or uint8 array, read from the batch's
        buffers, when every row is a well-formed array or raw pixels; None sends the
        batch row by row (encoded images, Spark's struct, a null or misshapen row)."""
        if self.array_shape is None or not len(column):
            return None
        fitted = fit_record_shape(tuple(self.array_shape), self.shape)
        if fitted is None:
            return None
        pixels = _regular_values(column, int(np.prod(self.array_shape)))
        if pixels is None:
            return None
        if self.kind == "array":
            pixels = pixels.astype(np.float32, copy=False)
        return pixels.reshape(len(column), *fitted)

    def batch(self, predictor, column: pa.Array, part: int, first: int) -> pa.StructArray:
        whole = self.stacked(column)
        if whole is not None:
            return self.result(predictor.predict(whole, self.top_k), len(column),
                               np.arange(len(column)))
        images, good = [], []
        for i, value in enumerate(column.to_pylist()):
            try:
                images.append(self.image(value, f"partition {part}, row {first + i}"))
                good.append(i)
            except DataError:
                if self.on_bad_record == "error":
                    raise
        out = predictor.predict(np.stack(images), self.top_k) if images else None
        return self.result(out, len(column), np.array(good, dtype=np.int64))

    def result(self, out, n: int, good: np.ndarray) -> pa.StructArray:
        """The UDF's struct for n rows, of which `good` were scored (as `out`); the
        others (bad records) are null in every field."""
        null = np.ones(n, bool)
        null[good] = False
        prediction = np.zeros(n)
        classes = out.probabilities.shape[1] if out is not None else 0
        probability = np.zeros((n, classes))
        top = np.zeros((n, self.top_k), np.int32)
        if out is not None:
            prediction[good] = out.predictions
            probability[good] = out.probabilities
            if self.top_k:
                top[good] = out.top_k
        fields = {"prediction": pa.array(prediction, pa.float64(),
                                         mask=null if null.any() else None),
                  "probability": _list_column(probability, null, pa.float64())}
        if self.top_k:
            fields["top_k"] = _list_column(top, null, pa.int32())
        return pa.StructArray.from_arrays(list(fields.values()), names=list(fields))


def score_udf(scoring: Scoring):
    """The Arrow UDF that scores `scoring.column`'s images."""
    from pyspark import TaskContext
    from pyspark.sql.functions import arrow_udf

    def score(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        predictor = scoring.predictor()
        context = TaskContext.get()
        part, row = (context.partitionId() if context else 0), 0
        for column in batches:
            yield scoring.batch(predictor, column, part, row)
            row += len(column)

    return arrow_udf(score, result_schema(scoring.top_k))  # iterator hints: SCALAR_ITER
