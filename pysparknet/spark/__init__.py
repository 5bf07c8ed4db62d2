"""SparkNet on Spark: persistent executor solvers, broadcast, tau local steps, mean."""
from ..errors import TrainingDivergedError
from .options import Exchange, Faults, Stragglers
from .session import local_spark
from .trainer import FitResult, SparkNetTrainer

__all__ = ["SparkNetTrainer", "FitResult", "TrainingDivergedError", "local_spark",
           "Exchange", "Stragglers", "Faults"]
