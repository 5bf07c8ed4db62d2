"""Spark ML: SparkNetClassifier (an Estimator) whose fit trains with SparkNetTrainer and
returns a SparkNetModel (a Transformer) that scores DataFrames on the executors."""
from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:  # what the docs and type checkers see; imported lazily below
    from .classifier import SparkNetClassifier
    from .model import SparkNetModel

__all__ = ["SparkNetClassifier", "SparkNetModel"]

# Where each public name lives. An executor that unpickles the scoring UDF
# (pysparknet.ml.scoring) then does not import pyspark.ml (half a second a worker).
_HOMES = {"SparkNetClassifier": ".classifier", "SparkNetModel": ".model"}

__getattr__ = lazy_names(__name__, _HOMES)
