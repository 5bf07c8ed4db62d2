"""Raw benchmark results: what every bench/ script stores, and how it repeats.

    record(name, command, rows, extra)  -> bench/results/<YYYY-MM-DD>-<machine>/<name>.json
    interleave({"a": fa, "b": fb}, 3)   -> runs a b a b a b, returns every sample
    summarize(samples)                  -> median, min, max, n, drift
    spread_text(samples, digits, scale) -> "median (min-max)", " drift" when flagged

A record holds the command line, the git commit, the machine, the load average
before and after, the versions of python/numpy/pyspark/torch where installed,
and every repeat. bench/render.py renders BENCHMARKS.md's tables from these
files only. BENCH_MACHINE names the machine (default `<arch>-<ncpu>cpu`);
BENCH_RESULTS_DIR moves the root (default bench/results).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Mapping

DEFAULT_ROOT = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
DRIFT_LIMIT = 0.15  # a repeat further than this from its own median is drift
MIN_REPEATS = 3
PACKAGES = ("numpy", "pyspark", "torch", "pysparknet")
_LOAD_AT_IMPORT = os.getloadavg()


def results_root() -> Path:
    return Path(os.environ.get("BENCH_RESULTS_DIR") or DEFAULT_ROOT)


def machine_name() -> str:
    return os.environ.get("BENCH_MACHINE") or f"{platform.machine()}-{os.cpu_count()}cpu"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD") or "unknown"
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no")
                         else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def gpu_info() -> dict:
    """nvidia-smi's name, driver and clocks, and torch's CUDA and cuDNN, where present."""
    info = {}
    query = "name,driver_version,clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem"
    try:
        info["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv"], capture_output=True,
            text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import torch
        info["torch_cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    except Exception:  # no torch, or no CUDA build of it
        pass
    return info


def record(name: str, command: str | None = None, rows: Iterable | None = None,
           extra: Mapping | None = None, repeats: Mapping | None = None) -> Path:
    """Write one run's raw output; returns the file's path (printed too)."""
    today = datetime.date.today().isoformat()
    folder = results_root() / f"{today}-{machine_name()}"
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "name": name,
        "command": command or "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "commit": git_commit(),
        "date": today,
        "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_name(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "load_before": list(_LOAD_AT_IMPORT),
        "load_after": list(os.getloadavg()),
        "versions": versions(),
        "rows": list(rows or []),
        "repeats": dict(repeats or {}),
        "extra": dict(extra or {}),
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, default=_plain) + "\n")
    print(f"[results] {path}", flush=True)
    return path


def _plain(value):
    """numpy scalars and tuples into JSON."""
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"not JSON: {type(value).__name__}")


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    """fn as a callable returning its wall-clock seconds."""
    def run() -> float:
        tic = time.perf_counter()
        fn()
        return time.perf_counter() - tic
    return run


def interleave(callables: Mapping[str, Callable[[], float]], repeats: int = MIN_REPEATS,
               ) -> dict[str, list[float]]:
    """Run A B A B ... `repeats` times each; every callable returns its sample."""
    if repeats < MIN_REPEATS:
        raise ValueError(f"interleave needs at least {MIN_REPEATS} repeats, got {repeats}")
    if not callables:
        raise ValueError("interleave needs at least one callable")
    samples: dict[str, list[float]] = {name: [] for name in callables}
    for _ in range(repeats):
        for name, fn in callables.items():
            samples[name].append(float(fn()))
    return samples


def drifted(samples: Iterable[float], limit: float = DRIFT_LIMIT) -> bool:
    """True when a repeat is more than `limit` off the samples' own median."""
    values = [float(v) for v in samples]
    median = statistics.median(values)
    if median == 0:
        return any(v != 0 for v in values)
    return any(abs(v - median) / abs(median) > limit for v in values)


def summarize(samples: Iterable[float], limit: float = DRIFT_LIMIT) -> dict:
    """median, min, max, n and the drift flag of one variant's repeats."""
    values = [float(v) for v in samples]
    if not values:
        raise ValueError("summarize needs at least one sample")
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values), "drift": drifted(values, limit)}


def spread_text(samples: Iterable[float], digits: int = 1, scale: float = 1.0) -> str:
    """'median (min-max)' of the samples times `scale`, and ' drift' when flagged."""
    s = summarize(v * scale for v in samples)
    text = f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"
    return text + (" drift" if s["drift"] else "")


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def latest(name: str, root: Path | None = None) -> Path | None:
    """The newest stored `<name>.json`: by its folder's date prefix, then by the
    time the record says it was written (not the file's mtime, which a checkout resets)."""
    def written(path: Path) -> tuple:
        try:
            stamp = str(load(path).get("time_utc", ""))
        except (OSError, ValueError, AttributeError):
            stamp = ""
        return path.parent.name[:10], stamp, path.parent.name
    found = sorted((root or results_root()).glob(f"*/{name}.json"), key=written)
    return found[-1] if found else None
