"""Spark ML: SparkNetClassifier (an Estimator) whose fit trains with SparkNetTrainer and
returns a SparkNetModel (a Transformer) that scores DataFrames on the executors."""
from .classifier import SparkNetClassifier
from .model import SparkNetModel

__all__ = ["SparkNetClassifier", "SparkNetModel"]
