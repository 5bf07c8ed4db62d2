"""SparkNet checkpoints: Caffe's .caffemodel + .solverstate, and a small JSON.

    DIR/round_000010.caffemodel     the averaged weights after round 10
    DIR/round_000010.solverstate    the driver solver's state (iter = rounds x tau)
    DIR/round_000010.outer.npy      the outer optimizer's momentum (when it has one)
    DIR/checkpoint.json             written last: round, tau, K, history, file names

Every file is written to a temporary name, fsynced and renamed (and the folder
fsynced), and checkpoint.json only names files that are complete, so a driver
killed or a machine losing power at any moment leaves the previous checkpoint
whole. A save that fails removes what it wrote. Once the new JSON is in, the
files the previous JSON named are removed: never any other file.
"""
from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..files import atomic_path, write_atomically
from ..net import Net
from ..weights import WeightCollection

MANIFEST = "checkpoint.json"
FORMAT = "pysparknet-checkpoint-1"
_ROUND_FILE = re.compile(r"round_\d{6,}\.(caffemodel|solverstate|outer\.npy)")
# what a save leaves behind when it is killed: temporary files of ours
_OWN_TEMPORARY = re.compile(
    r"\.(round_\d{6,}\.(caffemodel|solverstate|outer\.npy)|checkpoint\.json|write-test)\..+")


class CheckpointError(ValueError):
    """A directory that should hold a pysparknet checkpoint does not."""


@dataclass
class Checkpoint:
    round: int
    weights: WeightCollection
    history: list
    meta: dict
    outer_state: Optional[np.ndarray] = None


def check_writable(directory: Path) -> None:
    """Make the folder and write a file in it now: fail before any training."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(prefix=".write-test.", dir=directory):
            pass
    except OSError as error:
        raise CheckpointError(f"cannot write checkpoints to {directory}: {error}") from None


def _previous_files(directory: Path) -> list[Path]:
    """The round files the current manifest names (none if it is unreadable)."""
    try:
        meta = json.loads((directory / MANIFEST).read_text())
        return [directory / name for name in _named_files(meta, directory)]
    except (OSError, ValueError, CheckpointError):
        return []


def save(directory: Path, net: Net, round_done: int, history: list, meta: dict,
         outer_state: Optional[np.ndarray] = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"round_{round_done:06d}"
    model, state = directory / f"{stem}.caffemodel", directory / f"{stem}.solverstate"
    outer = directory / f"{stem}.outer.npy"
    previous = _previous_files(directory)
    try:
        net.save_state(model, state)
        if outer_state is not None:
            with atomic_path(outer) as tmp, open(tmp, "wb") as f:
                np.save(f, outer_state)
        write_atomically(directory / MANIFEST, json.dumps({
            "format": FORMAT, "round": round_done, "model": model.name,
            "solverstate": state.name, "history": history,
            "outer_state": outer.name if outer_state is not None else None, **meta}, indent=1))
    except BaseException:
        for written in (model, state, outer):  # no orphans: unless the old manifest names them
            if written not in previous and written.exists():
                written.unlink()
        raise
    for old in previous:
        if old not in (model, state, outer) and old.exists():
            old.unlink()


def current_files(directory: Path) -> list[Path]:
    """The folder's latest checkpoint: its manifest and the round files it names
    (none when there is no readable manifest)."""
    if not (directory / MANIFEST).is_file():
        return []
    named = _previous_files(directory)
    return [directory / MANIFEST] + named if named else []


def _named_files(meta: dict, directory: Path) -> tuple[str, ...]:
    """The manifest's model, solverstate (and outer state) names, checked to be round
    files of this folder (never a path elsewhere)."""
    names = (meta.get("model"), meta.get("solverstate"))
    if meta.get("outer_state") is not None:
        names += (meta["outer_state"],)
    for name in names:
        if not (isinstance(name, str) and _ROUND_FILE.fullmatch(name)):
            raise CheckpointError(f"{directory / MANIFEST} names {name!r}, not a round file "
                                  "of this folder")
    return names


def _is_fresh(directory: Path) -> bool:
    """Nothing to resume: missing, empty, or only what a first save that failed (or was
    killed) leaves: round files and temporary files of ours, no manifest."""
    if not directory.exists():
        return True
    names = [p.name for p in directory.iterdir()]
    return MANIFEST not in names and all(
        _ROUND_FILE.fullmatch(n) or _OWN_TEMPORARY.fullmatch(n) for n in names)


def load(directory: Path, net: Net) -> Optional[Checkpoint]:
    """The checkpoint in `directory`, loaded into `net`; None if it holds nothing yet."""
    if _is_fresh(directory):
        return None
    manifest = directory / MANIFEST
    try:
        meta = json.loads(manifest.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
        round_done = meta["round"]
        if not isinstance(round_done, int) or round_done < 0:
            raise ValueError(f"round {round_done!r}")
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{directory} is not a pysparknet checkpoint directory "
                              f"({manifest.name}: {e})") from None
    model, state, *outer = _named_files(meta, directory)
    net.restore_state(directory / state, directory / model)
    outer_state = np.load(directory / outer[0]) if outer else None
    return Checkpoint(round_done, net.get_weights(), meta.get("history", []), meta, outer_state)


def read_manifest(directory: Optional[Path]) -> Optional[dict]:
    """The checkpoint's JSON as written (None: no checkpoint there yet)."""
    if directory is None or _is_fresh(directory):
        return None
    try:
        return json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{directory / MANIFEST}: {e}") from None
