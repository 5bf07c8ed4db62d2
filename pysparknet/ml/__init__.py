"""Spark ML: SparkNetClassifier (an Estimator) whose fit trains with SparkNetTrainer and
returns a SparkNetModel (a Transformer) that scores DataFrames on the executors."""
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the docs and type checkers see; imported lazily below
    from .classifier import SparkNetClassifier
    from .model import SparkNetModel

__all__ = ["SparkNetClassifier", "SparkNetModel"]


def __getattr__(name: str):
    # Imported on first use, so that an executor unpickling the scoring UDF
    # (pysparknet.ml.scoring) does not import pyspark.ml (half a second a worker).
    if name == "SparkNetClassifier":
        from .classifier import SparkNetClassifier
        return SparkNetClassifier
    if name == "SparkNetModel":
        from .model import SparkNetModel
        return SparkNetModel
    raise AttributeError(f"module 'pysparknet.ml' has no attribute {name!r}")
