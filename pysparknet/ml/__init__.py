"""Spark ML: SparkNetClassifier (an Estimator) whose fit trains with SparkNetTrainer and
returns a SparkNetModel (a Transformer) that scores DataFrames on the executors."""
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the docs and type checkers see; imported lazily below
    from .classifier import SparkNetClassifier
    from .model import SparkNetModel

__all__ = ["SparkNetClassifier", "SparkNetModel"]

# Where each public name lives. An executor that unpickles the scoring UDF
# (pysparknet.ml.scoring) then does not import pyspark.ml (half a second a worker).
_HOMES = {"SparkNetClassifier": ".classifier", "SparkNetModel": ".model"}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'pysparknet.ml' has no attribute {name!r}")
    from importlib import import_module
    return getattr(import_module(_HOMES[name], __name__), name)
