"""SparkNet on Spark: persistent executor solvers, broadcast, tau local steps, mean."""
from .session import local_spark
from .trainer import FitResult, SparkNetTrainer, TrainingDivergedError

__all__ = ["SparkNetTrainer", "FitResult", "TrainingDivergedError", "local_spark"]
