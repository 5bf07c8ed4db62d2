"""Scoring on the executors: a scalar-iterator pandas UDF over the image column.

Each Python worker builds the model's Predictor once (predict.cached_predictor,
keyed by the model) from a broadcast of the net and weights, which Spark ships
once per executor, and reuses it for every Arrow batch and task after. The
UDF's struct result becomes the prediction, probability (a vector) and top-k
columns; the DataFrame's other columns never leave the JVM.
"""
from typing import Iterator, Optional

import numpy as np
import pandas as pd
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
            from ..spark.solvers import device_for_task, task_threads

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

    def stacked(self, values: list) -> Optional[np.ndarray]:
        """All rows as one (N, C, H, W) array when every one is a well-formed array or
        raw pixels (one conversion, not one a row); None sends the batch row by row."""
        if self.array_shape is None or not values:  # encoded images, Spark's struct
            return None
        fitted = fit_record_shape(tuple(self.array_shape), self.shape)
        try:
            if self.kind == "binary":
                pixels = np.frombuffer(b"".join(values), np.uint8)
            else:
                pixels = np.stack(values).astype(np.float32, copy=False)
        except (TypeError, ValueError):  # a null, or rows of different lengths
            return None
        if fitted is None or pixels.size != len(values) * int(np.prod(self.array_shape)):
            return None
        return pixels.reshape(len(values), *fitted)

    def batch(self, predictor, values: list, part: int, first: int) -> pd.DataFrame:
        whole = self.stacked(values)
        if whole is not None:
            return self.frame(predictor.predict(whole, self.top_k), len(values),
                              list(range(len(values))))
        images, good = [], []
        for i, value in enumerate(values):
            try:
                images.append(self.image(value, f"partition {part}, row {first + i}"))
                good.append(i)
            except DataError:
                if self.on_bad_record == "error":
                    raise
        out = predictor.predict(np.stack(images), self.top_k) if images else None
        return self.frame(out, len(values), good)

    def frame(self, out, n: int, good: list) -> pd.DataFrame:
        """The UDF's result for n rows, of which `good` were scored (as `out`)."""
        prediction = np.full(n, np.nan)
        probability: list = [None] * n
        top: list = [None] * n
        if out is not None:
            prediction[good] = out.predictions
            rows = list(out.probabilities.astype(np.float64))
            top_rows = list(out.top_k.astype(np.int32)) if self.top_k else None
            if len(good) == n:
                probability, top = rows, (top_rows or top)
            else:
                for j, i in enumerate(good):
                    probability[i] = rows[j]
                    if self.top_k:
                        top[i] = top_rows[j]
        prediction = pd.array(prediction, dtype="Float64")  # NaN -> null
        columns = {"prediction": prediction, "probability": probability}
        if self.top_k:
            columns["top_k"] = top
        return pd.DataFrame(columns)


def _values(batch) -> list:
    if isinstance(batch, pd.DataFrame):  # a struct column (Spark's image)
        return batch.to_dict("records")
    return batch.tolist()


def score_udf(scoring: Scoring):
    """The pandas UDF that scores `scoring.column`'s images."""
    from pyspark import TaskContext
    from pyspark.sql.functions import pandas_udf

    def score(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        predictor = scoring.predictor()
        context = TaskContext.get()
        part, row = (context.partitionId() if context else 0), 0
        for batch in batches:
            values = _values(batch)
            yield scoring.batch(predictor, values, part, row)
            row += len(values)

    return pandas_udf(score, result_schema(scoring.top_k))
