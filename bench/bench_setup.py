"""Set-up, build and sizes: what the README's commands cost a new checkout.

Each repeat clones this repository's HEAD into a temporary folder and runs
`bash scripts/setup.sh` there twice: first with an empty Caffe cache
(PYSPARKNET_CACHE_DIR; Debian's Caffe source package fetched into it and Caffe
built from it, as on a fresh machine), then again in the same clone (what the
README's commands pay on every later run). Apt packages are as this machine has
them: setup.sh skips installed ones, a fresh machine also pays apt-get. pip's own
download cache is left as it is (say so when quoting the cold time). Sizes after
the run: the clone's .venv, the installed package, the Caffe cache and the
Caffe install in it.

    python bench/bench_setup.py [--repeats 1] [--wheel] [--image NAME]

--wheel also times `bash scripts/build_wheel.sh` in the clone and records the
vendored wheel's size (its OpenCV and Caffe caches are reused where this
machine has them; the record says which were). --image records the size of a
docker image already built (scripts/test_docker.sh builds it) when dockerd
answers. Raw output: bench/results/<date>-<machine>/setup.json (results_io).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "native" / "caffe"))
from build_caffe import cache_root  # noqa: E402  (where build_wheel.sh keeps its OpenCV too)
from fresh_clone import clone_head  # noqa: E402
from results_io import record  # noqa: E402

SETUP_DEADLINE_S = 2 * 3600  # a cold CUDA-less set-up takes minutes; nothing waits forever


def folder_bytes(path: Path) -> int:
    """Bytes of the files under `path` (links not followed)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def timed_run(argv: list, cwd: Path, env: dict, log: Path) -> float:
    """Seconds `argv` took in `cwd`; its output appended to `log`; a failure raises."""
    start = time.monotonic()
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        done = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=SETUP_DEADLINE_S)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode} (log: {log})")
    return time.monotonic() - start


def one_setup(work: Path) -> dict:
    """A fresh clone set up cold, then again; their seconds and what they left."""
    clone, commit = clone_head(work)
    cache = work / "cache"
    env = {**os.environ, "PYSPARKNET_CACHE_DIR": str(cache)}
    log = work / "setup.log"
    cold = timed_run(["bash", "scripts/setup.sh"], clone, env, log)
    warm = timed_run(["bash", "scripts/setup.sh"], clone, env, log)
    site = next((clone / ".venv" / "lib").glob("python3*/site-packages"))
    installs = list(cache.glob("caffe-*/install"))
    return {"commit": commit, "cold_s": cold, "warm_s": warm,
            "venv_bytes": folder_bytes(clone / ".venv"),
            "package_bytes": folder_bytes(site / "pysparknet"),
            "caffe_cache_bytes": folder_bytes(cache),
            "caffe_install_bytes": sum(folder_bytes(p) for p in installs),
            "clone": str(clone), "log": str(log)}


def wheel_build(clone: Path, log: Path) -> dict:
    """scripts/build_wheel.sh in the clone: its seconds and the wheel's size."""
    # build_wheel.sh keeps the wheel's own Caffe build inside the OpenCV cache folder
    reused = sorted(p.name for p in cache_root().glob("opencv-*"))
    caffe_reused = sorted(p.name for p in cache_root().glob("opencv-*/caffe/caffe-*"))
    dist = clone / "dist"
    seconds = timed_run(["bash", "scripts/build_wheel.sh", str(dist)], clone,
                        dict(os.environ), log)
    wheels = sorted(dist.glob("*.whl"))
    if not wheels:
        raise RuntimeError(f"build_wheel.sh left no wheel in {dist} (log: {log})")
    return {"seconds": seconds, "wheel": wheels[-1].name, "bytes": wheels[-1].stat().st_size,
            "opencv_cache_reused": reused, "caffe_cache_reused": caffe_reused}


def image_size(name: str) -> dict:
    """`docker image inspect`'s size of an image built before, or why there is none."""
    try:
        done = subprocess.run(["docker", "image", "inspect", name], capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"image": name, "error": f"docker did not answer: {error}"}
    if done.returncode:
        return {"image": name, "error": done.stderr.strip()[:300]}
    return {"image": name, "bytes": json.loads(done.stdout)[0]["Size"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1, help="fresh clones, one after another")
    parser.add_argument("--wheel", action="store_true", help="also build the vendored wheel")
    parser.add_argument("--image", help="also record this docker image's size")
    parser.add_argument("--keep", action="store_true", help="keep the clones and their logs")
    args = parser.parse_args()
    rows, extra = [], {}
    for _ in range(args.repeats):
        work = Path(tempfile.mkdtemp(prefix="bench-setup-"))
        rows.append(one_setup(work))
        print(json.dumps(rows[-1]), flush=True)
        if args.wheel and "wheel" not in extra:
            extra["wheel"] = wheel_build(Path(rows[-1]["clone"]), Path(rows[-1]["log"]))
            print(json.dumps(extra["wheel"]), flush=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.image:
        extra["image"] = image_size(args.image)
    record("setup", rows=rows, extra=extra)


if __name__ == "__main__":
    main()
