"""The command-line options every training command shares (`sparknet train`,
`sparknet repro alexnet|googlenet`): when to validate and checkpoint, resuming,
the metrics file, MLflow, the seed, quiet."""
from __future__ import annotations

from pathlib import Path


def add_fit_options(parser) -> None:
    parser.add_argument("--validate-every", type=int, default=10, help="rounds")
    parser.add_argument("--checkpoint-dir", type=Path)
    parser.add_argument("--checkpoint-every", type=int, default=10, help="rounds")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint-dir")
    parser.add_argument("--metrics", type=Path, help="append one JSON line per round here")
    parser.add_argument("--mlflow", action="store_const", const=True, default=None,
                        help="log params, every round's metrics, the checkpoint and the "
                        "model to MLflow (MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME); "
                        'needs pip install "pysparknet[mlflow]"')
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quiet", action="store_true",
                        help="no progress (a bar on a terminal, else a line a round)")
