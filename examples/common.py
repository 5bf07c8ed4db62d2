"""What the examples share: their SparkNet run's flags."""
from __future__ import annotations

import argparse


def add_training_flags(parser: argparse.ArgumentParser, tau: int, rounds: int) -> None:
    """--workers (K), --tau, --rounds, --seed."""
    parser.add_argument("--workers", type=int, default=2, help="K")
    parser.add_argument("--tau", type=int, default=tau, help="iterations a round")
    parser.add_argument("--rounds", type=int, default=rounds, help="SparkNet rounds")
    parser.add_argument("--seed", type=int, default=1)
