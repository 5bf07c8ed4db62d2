"""SparkNet on Spark: persistent executor solvers, broadcast, tau local steps, mean."""
from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:  # what the docs and type checkers see; imported lazily below
    from ..errors import TrainingDivergedError
    from .options import Exchange, Faults, Stragglers
    from .session import local_spark
    from .trainer import FitResult, SparkNetTrainer

__all__ = ["SparkNetTrainer", "FitResult", "TrainingDivergedError", "local_spark",
           "Exchange", "Stragglers", "Faults"]

# Where each public name lives. An executor imports only the modules its task
# runs (scoring, a worker's rounds), not the driver's trainer (~0.1 s a worker).
_HOMES = {"SparkNetTrainer": ".trainer", "FitResult": ".trainer",
          "TrainingDivergedError": "..errors", "local_spark": ".session",
          "Exchange": ".options", "Stragglers": ".options", "Faults": ".options"}

__getattr__ = lazy_names(__name__, _HOMES)
