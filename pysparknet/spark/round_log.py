"""The driver's record of a fit's rounds: their history, the metrics file, the progress bar."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

from tqdm import tqdm


class RoundLog:
    """One fit's rounds: what is due after each (validation, checkpoint), and where
    their records go. checkpoint_every is None without a checkpoint folder."""

    def __init__(self, rounds: Optional[int], validating: bool, validate_every: int,
                 checkpoint_dir, checkpoint_every: int, metrics_path, progress: bool,
                 start: int, history: list):
        self.rounds, self.validating, self.validate_every = rounds, validating, validate_every
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every if checkpoint_dir is not None else None
        self.history = history
        self.metrics: Optional[object] = None
        if metrics_path:
            Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
            self.metrics = open(metrics_path, "a")
        self.bar = tqdm(total=rounds, initial=start, unit="round", disable=not progress)
        # a resumed run's clock goes on from its history
        self.started = time.perf_counter() - (history[-1]["elapsed_s"] if history else 0.0)

    def report(self, record: dict) -> None:
        """One JSON line per round, and the progress bar."""
        if self.metrics:
            self.metrics.write(json.dumps(record) + "\n")
            self.metrics.flush()
        self.bar.update(1)
        self.bar.set_postfix({k: f"{record[k]:.4g}" for k in
                              ("loss", "val_accuracy", "images_per_s", "sync_s")
                              if k in record})

    def close(self) -> None:
        self.bar.close()
        if self.metrics:
            self.metrics.close()
