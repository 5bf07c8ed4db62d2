"""The README's test command on a fresh clone, with CPU-bound processes beside it.

Issue 26: a fresh clone's suite failed on a machine busy with other work (the
first fit gave up while executors were still registering). This clones the
repository's HEAD into a temporary folder, starts `--hogs` busy processes (one
pure-Python loop each, at the suite's own priority), runs `bash scripts/test.sh`
there with a JUnit report, samples the load average every 30 s, and stores the
counts, the failures' names, the time and the load under bench/results/.

    python bench/suite_under_load.py [--hogs 2] [--keep]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fresh_clone import clone_head  # noqa: E402
from results_io import record  # noqa: E402

HOG = "while True: pass"
SUITE_DEADLINE_S = 4 * 3600  # nothing waits without one


def junit_counts(report: Path) -> dict:
    """tests, failures, errors, skipped and the failed tests' names from pytest's XML."""
    suite = ET.parse(report).getroot()
    suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
    failed = [f"{case.get('classname')}::{case.get('name')}" for case in suite.iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None]
    return {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")} \
        | {"failed": failed}


def sample_load(samples: list, stop: threading.Event) -> None:
    while not stop.wait(30):
        samples.append(os.getloadavg()[0])


def run_suite(clone: Path, report: Path) -> tuple[int, float]:
    """(exit status, seconds) of the README's test command in `clone`."""
    start = time.monotonic()
    with open(clone / "suite.log", "w") as log:
        done = subprocess.run(["bash", "scripts/test.sh", f"--junitxml={report}"], cwd=clone,
                              stdout=log, stderr=subprocess.STDOUT, timeout=SUITE_DEADLINE_S)
    return done.returncode, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hogs", type=int, default=2, help="busy processes beside the suite")
    parser.add_argument("--keep", action="store_true", help="keep the clone (and its log)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="suite-under-load-"))
    clone, tested = clone_head(work)
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(args.hogs)]
    loads: list = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_load, args=(loads, stop), daemon=True)
    sampler.start()
    try:
        status, seconds = run_suite(clone, work / "junit.xml")
    finally:
        stop.set()
        for hog in hogs:
            hog.kill()
            hog.wait(timeout=30)
    counts = junit_counts(work / "junit.xml") if (work / "junit.xml").exists() else {}
    tail = (clone / "suite.log").read_text(errors="replace").splitlines()[-40:]
    print("\n".join(tail))
    record("suite_under_load", rows=[{"hogs": args.hogs, "exit_status": status,
                                      "seconds": seconds, **counts}],
           extra={"tested_commit": tested, "load_1min_median": statistics.median(loads) if loads else None,
                  "load_1min_max": max(loads, default=None), "load_samples": loads,
                  "log_tail": tail, "clone": str(clone) if args.keep else None})
    if not args.keep:
        subprocess.run(["rm", "-rf", str(work)], check=False, timeout=600)
    sys.exit(status)


if __name__ == "__main__":
    main()
