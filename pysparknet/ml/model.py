"""SparkNetModel: a trained net as a Spark ML Transformer, saved in Spark ML's layout.

    model.transform(df)   # + prediction (double), probability (vector) [, topK]
    model.save(path)      # path/metadata (Spark's JSON), path/model/{net,deploy,
                          # solver}.prototxt and weights.caffemodel (Caffe's files)
    SparkNetModel.load(path)
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Optional

from pyspark.ml import Model
from pyspark.ml.util import (DefaultParamsReader, DefaultParamsWriter, MLReadable,
                             MLReader, MLWritable, MLWriter)

from ..net import Net
from ..predict import scoring_net
from ..prototxt import to_text
from ..weights import WeightCollection
from .params import SparkNetParams
from .scoring import Scoring, record_shape, score_udf

FILES = {"net": "net.prototxt", "deploy": "deploy.prototxt", "solver": "solver.prototxt",
         "weights": "weights.caffemodel"}


class SparkNetModel(Model, SparkNetParams, MLReadable, MLWritable):
    """The net (netPrototxt), its solver and the trained weights; transform scores the
    featuresCol's images on the executors (see pysparknet.ml.scoring)."""

    def __init__(self, weights: Optional[WeightCollection] = None,
                 history: Optional[list] = None, **params):
        super().__init__()
        self._set(**params)
        self.weights = weights
        self.history = history or []
        self.copy_report = None  # fine-tuning: what initialWeights gave (finetune.CopyReport)
        self._weights_id = uuid.uuid4().hex
        self._broadcast = None

    def _weights_key(self) -> tuple:
        """What keys this model's Predictor in a worker's cache (predict.stats)."""
        batch = self.getOrDefault(self.batchSize) if self.isDefined(self.batchSize) else None
        return (self.uid, self._weights_id, batch, self.getOrDefault(self.device))

    def setParams(self, **params) -> "SparkNetModel":
        return self._set(**params)

    def _broadcast_model(self, sc):
        """The net and weights, broadcast once for this model (shipped once per executor)."""
        if self._broadcast is None:
            self._broadcast = sc.broadcast((self.net_text(), self.weights))
        return self._broadcast

    def _transform(self, dataset):
        from pyspark.ml.functions import array_to_vector
        from pyspark.sql import functions as F

        if self.weights is None:
            raise ValueError("this SparkNetModel has no weights")
        kind = self.image_column_kind(dataset)
        column = self.getOrDefault(self.featuresCol)
        net_text = self.net_text()
        shape = record_shape(net_text)
        array_shape = self.pixels_shape(kind, shape)
        key = self._weights_key()
        batch, device = key[2], key[3]
        top_k = self.getOrDefault(self.topK)
        scoring = Scoring(key, self._broadcast_model(dataset.sparkSession.sparkContext), kind,
                          column, shape, array_shape, top_k, self.on_bad_record(), batch,
                          device)
        scored = "__sparknet_scores"
        features = F.col(column)
        if kind == "array":  # the net takes float32: the JVM casts, and Arrow moves half
            features = features.cast("array<float>")  # the bytes of array<double>
        out = dataset.withColumn(scored, score_udf(scoring)(features))
        out = out.withColumn(self.getOrDefault(self.predictionCol), F.col(f"{scored}.prediction"))
        probability = F.col(f"{scored}.probability")
        out = out.withColumn(self.getOrDefault(self.probabilityCol),  # null for a bad row
                             F.when(probability.isNull(), None)
                             .otherwise(array_to_vector(probability)))
        if top_k:
            out = out.withColumn(self.getOrDefault(self.topKCol), F.col(f"{scored}.top_k"))
        return out.drop(scored)

    def unpersist(self) -> None:
        """Free the broadcast weights on the executors (a later transform sends them again)."""
        if self._broadcast is not None:
            self._broadcast.unpersist()
            self._broadcast = None

    def copy(self, extra=None) -> "SparkNetModel":
        that = super().copy(extra)
        that._broadcast = None
        return that

    # --- persistence -------------------------------------------------------------
    def write(self) -> MLWriter:
        return _ModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _ModelReader(cls)


def _net_with_weights(net_text: str, solver_text: Optional[str]) -> Net:
    return Net(net_text, solver_text or None)


class _ModelWriter(MLWriter):
    def __init__(self, instance: SparkNetModel):
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        model = self.instance
        DefaultParamsWriter.saveMetadata(model, path, self.sc,
                                         extraMetadata={"files": FILES, "format": 1})
        folder = Path(path) / "model"
        folder.mkdir(parents=True, exist_ok=True)
        net_text = model.net_text()
        solver_text = model.getOrDefault(model.solverPrototxt) if \
            model.isDefined(model.solverPrototxt) else ""
        (folder / FILES["net"]).write_text(net_text)
        (folder / FILES["deploy"]).write_text(to_text(scoring_net(net_text).net))
        (folder / FILES["solver"]).write_text(solver_text)
        with _net_with_weights(net_text, solver_text) as net:
            net.set_weights(model.weights)
            net.save(folder / FILES["weights"])


class _ModelReader(MLReader):
    def __init__(self, cls):
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> SparkNetModel:
        folder = Path(path) / "model"
        for name in FILES.values():
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{path} is not a whole saved SparkNetModel: "
                                        f"{folder / name} is missing")
        metadata = DefaultParamsReader.loadMetadata(path, self.sc)
        net_text = (folder / FILES["net"]).read_text()
        solver_text = (folder / FILES["solver"]).read_text()
        with _net_with_weights(net_text, solver_text) as net:
            net.load(folder / FILES["weights"])
            weights = net.get_weights()
        model = self.cls(weights)
        DefaultParamsReader.getAndSetParams(model, metadata)
        model._set(netPrototxt=net_text)
        if solver_text:
            model._set(solverPrototxt=solver_text)
        model._resetUid(metadata["uid"])
        return model
