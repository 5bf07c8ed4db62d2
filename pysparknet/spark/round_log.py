"""The driver's record of a fit's rounds: their history, the metrics file, and the
progress: a bar on a terminal, one line a round where stderr is not one (docker
logs, CI, a file), since a bar redraws in place and those see whole lines only."""
from __future__ import annotations

import json
import sys
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
        self.tracker = None  # tracking.FitTracker: MLflow gets each round too
        self.metrics: Optional[object] = None
        if metrics_path:
            Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
            self.metrics = open(metrics_path, "a")
        self.lines = progress and not sys.stderr.isatty()
        self.bar = tqdm(total=rounds, initial=start, unit="round",
                        disable=not progress or self.lines)
        self.start = start
        # a resumed run's clock goes on from its history
        self.started = time.perf_counter() - (history[-1]["elapsed_s"] if history else 0.0)
        self.opened = time.perf_counter()

    def report(self, record: dict) -> None:
        """One JSON line per round, and the progress bar."""
        if self.metrics:
            self.metrics.write(json.dumps(record) + "\n")
            self.metrics.flush()
        if self.tracker is not None:
            self.tracker.log_round(record)
        self.bar.update(1)
        self.bar.set_postfix({k: f"{record[k]:.4g}" for k in
                              ("loss", "val_accuracy", "images_per_s", "sync_s")
                              if k in record})
        if self.lines:
            print(self.line(record), file=sys.stderr, flush=True)

    def line(self, record: dict) -> str:
        """A round as one line: its number, loss, accuracy when validated, images/s,
        sync time and the time the rounds left should take at the pace so far."""
        of = f"/{self.rounds}" if self.rounds else ""
        parts = [f"round {record['round']}{of}", f"loss {record['loss']:.4f}"]
        parts += [f"{key} {value:.4f}" for key, value in record.items()
                  if key.startswith("val_") and isinstance(value, float)]
        parts.append(f"{record['images_per_s']:.0f} images/s")
        parts.append(f"sync {record['sync_s']:.3f} s")
        done = record["round"] - self.start
        if self.rounds and done > 0:
            left = (time.perf_counter() - self.opened) / done * (self.rounds - record["round"])
            parts.append(f"ETA {left:.0f} s")
        return ", ".join(parts)

    def close(self) -> None:
        self.bar.close()
        if self.metrics:
            self.metrics.close()
