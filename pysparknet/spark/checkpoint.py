"""SparkNet checkpoints: Caffe's .caffemodel + .solverstate, and a small JSON.

    DIR/round_000010.caffemodel     the averaged weights after round 10
    DIR/round_000010.solverstate    the driver solver's state (iter = rounds x tau)
    DIR/checkpoint.json             written last: round, tau, K, history, file names

Every file is written to a temporary name and renamed, and checkpoint.json only
names files that are complete, so a driver killed at any moment leaves the
previous checkpoint whole. Older round files are removed once the new JSON is in.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..net import Net
from ..weights import WeightCollection

MANIFEST = "checkpoint.json"
FORMAT = "pysparknet-checkpoint-1"


class CheckpointError(ValueError):
    """A directory that should hold a pysparknet checkpoint does not."""


@dataclass
class Checkpoint:
    round: int
    weights: WeightCollection
    history: list
    meta: dict


def _write_json_atomically(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save(directory: Path, net: Net, round_done: int, history: list, meta: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"round_{round_done:06d}"
    model, state = directory / f"{stem}.caffemodel", directory / f"{stem}.solverstate"
    net.save_state(model, state)
    _write_json_atomically(directory / MANIFEST, {
        "format": FORMAT, "round": round_done, "model": model.name, "solverstate": state.name,
        "history": history, **meta})
    for old in directory.glob("round_*"):
        if old.stem != stem:
            old.unlink()


def load(directory: Path, net: Net) -> Optional[Checkpoint]:
    """The checkpoint in `directory`, loaded into `net`; None if it holds nothing yet."""
    if not directory.exists() or not any(directory.iterdir()):
        return None
    manifest = directory / MANIFEST
    try:
        meta = json.loads(manifest.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{directory} is not a pysparknet checkpoint directory "
                              f"({manifest.name}: {e})") from None
    net.restore_state(directory / meta["solverstate"], directory / meta["model"])
    return Checkpoint(meta["round"], net.get_weights(), meta["history"], meta)
