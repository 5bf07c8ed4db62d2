"""A fresh clone of this repository's HEAD, for the scripts that measure what a new
user's checkout does (suite_under_load.py, bench_setup.py)."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def clone_head(work: Path) -> tuple[Path, str]:
    """(the clone's folder under `work`, the commit it holds)."""
    clone = work / "pysparknet"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=600)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True,
                            text=True, check=True, timeout=60).stdout.strip()
    return clone, commit
