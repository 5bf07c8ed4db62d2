"""The Params SparkNetClassifier and SparkNetModel share (pyspark.ml's conventions)."""
from __future__ import annotations

from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import (HasFeaturesCol, HasLabelCol, HasPredictionCol,
                                     HasProbabilityCol)

from ..errors import DataError
from ..prototxt import parse_net, parse_solver, to_text

ON_BAD_RECORD = ("error", "null", "skip")


def _param(name: str, doc: str, converter=TypeConverters.identity) -> Param:
    return Param(Params._dummy(), name, doc, typeConverter=converter)


class SparkNetParams(HasFeaturesCol, HasLabelCol, HasPredictionCol, HasProbabilityCol):
    """Columns, the net, and how it scores."""

    netPrototxt = _param("netPrototxt", "the train_val net, as prototxt text",
                         TypeConverters.toString)
    solverPrototxt = _param("solverPrototxt", "the solver, as prototxt text",
                            TypeConverters.toString)
    zooModel = _param("zooModel", "a zoo net by name (pysparknet.zoo.ZOO), instead of "
                      "netPrototxt/solverPrototxt", TypeConverters.toString)
    imageShape = _param("imageShape", "(C, H, W) of an array column's images (default: "
                        "the net's input); set on a binary column, its values are raw "
                        "uint8 pixels of that shape (unset: encoded JPEG/PNG)",
                        TypeConverters.toListInt)
    batchSize = _param("batchSize", "images a forward pass scores (default: the net's TEST "
                       "batch)", TypeConverters.toInt)
    topK = _param("topK", "also give the k best classes in topKCol (0: no)",
                  TypeConverters.toInt)
    topKCol = _param("topKCol", "the top-k classes' column", TypeConverters.toString)
    onBadRecord = _param("onBadRecord", "a row whose image cannot be used: 'error' (fail "
                         "naming it), 'null' (scoring: null prediction) or 'skip' "
                         "(training: dropped)", TypeConverters.toString)
    device = _param("device", "'cpu', 'gpu' (the GPU Spark assigns each task) or 'gpu:N'",
                    TypeConverters.toString)

    def __init__(self, *args):
        super().__init__(*args)
        self._setDefault(featuresCol="features", labelCol="label", predictionCol="prediction",
                         probabilityCol="probability", topK=0, topKCol="topK",
                         onBadRecord="error", device="cpu")

    def net_text(self) -> str:
        if self.isDefined(self.zooModel) and not self.isDefined(self.netPrototxt):
            from .. import zoo
            return to_text(zoo.load(self.getOrDefault(self.zooModel)).net)
        if not self.isDefined(self.netPrototxt):
            raise ValueError("give the net: netPrototxt (or net=) or zooModel")
        return self.getOrDefault(self.netPrototxt)

    def on_bad_record(self) -> str:
        policy = self.getOrDefault(self.onBadRecord)
        if policy not in ON_BAD_RECORD:
            raise ValueError(f"onBadRecord must be one of {ON_BAD_RECORD}, got {policy!r}")
        return policy

    def pixels_shape(self, kind: str, net_shape: tuple):
        """The shape row values are reshaped to: arrays take imageShape (else the net's
        input); binary values are raw pixels only with imageShape set (else decoded)."""
        if self.isDefined(self.imageShape):
            return tuple(self.getOrDefault(self.imageShape)) if kind != "spark-image" else None
        if kind == "array" and None not in net_shape:
            return tuple(net_shape)
        return None

    def checked_column(self, dataset, param: Param) -> str:
        """The column `param` names, which must be in `dataset` (DataError naming it)."""
        name = self.getOrDefault(param)
        if name not in dataset.columns:
            raise DataError(f"{param.name} {name!r} is not a column of the DataFrame (it "
                            f"has {dataset.columns})")
        return name

    def image_column_kind(self, dataset) -> str:
        """The features column's kind (binary, array, spark-image), or DataError naming it."""
        from ..data.spark_sources import image_kind

        column = self.checked_column(dataset, self.featuresCol)
        try:
            return image_kind(dataset.schema[column].dataType)
        except DataError as error:
            raise DataError(f"featuresCol {column!r}: {error}") from None


def as_prototxt(source, solver: bool = False) -> str:
    """Prototxt text of a net (or solver) given as a message, text, path or zoo model."""
    return to_text(parse_solver(source) if solver else parse_net(source))
