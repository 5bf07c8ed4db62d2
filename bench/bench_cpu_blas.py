"""Which BLAS one Net's CPU step runs fastest on: Debian's OpenBLAS (its OpenMP build,
what scripts/setup.sh selects) against BLIS and oneMKL, the same Caffe build, interleaved.

Caffe calls only CBLAS functions (cblas_sgemm, cblas_saxpy, ...), and the loader binds
each to the first library that defines it, so another BLAS replaces OpenBLAS through
LD_PRELOAD without a rebuild:

  openblas   Debian's libopenblas0-openmp (0.3.21)
  blis       Debian's libblis4-openmp (BLIS 0.9, its CBLAS layer; apt-get install
             libblis4-openmp), threads from BLIS_NUM_THREADS
  mkl        oneMKL from PyPI's mkl wheel (--mkl DIR: DIR/lib holding the wheel's
             mkl-*.data/data/lib/ files) on GNU OpenMP (MKL_THREADING_LAYER=GNU: one
             pool with Caffe's loops)

Each BLAS that is not installed is skipped, saying so. A newer OpenBLAS is not among
them: PyPI's (scipy-openblas32) renames its symbols (scipy_cblas_sgemm), so it cannot
stand in for Caffe's, and Debian 12 ships only 0.3.21.

Rows: the 1024^3 sgemm ceiling and Net.train steps (bench_cpu_threads.py's: random
inputs, fresh processes) of LeNet (batch 64) and CIFAR-10 quick (batch 100) on 1 and 2
threads, the convolution at its default (per image on 1 thread, 16 MB chunks on 2).

    python bench/bench_cpu_blas.py [--nets sgemm lenet cifar10_quick] [--repeats 3]
        [--mkl /tmp/mkl]
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from bench_cpu_threads import BATCH, BLAS_DIRS, ITERATIONS, openblas, step_ms
from results_io import interleave, record, summarize  # bench/, beside this script

BLIS = Path(BLAS_DIRS["openmp"]).parent / "blis-openmp" / "libblis.so.4"


def libraries(mkl_dir: str) -> dict:
    """name -> (the environment that loads it, the library the sgemm ceiling calls);
    the ones not installed are left out, saying so."""
    found = {"openblas": (openblas("openmp"), "libopenblas.so.0")}
    if BLIS.exists():
        found["blis"] = (dict(openblas("openmp"), LD_PRELOAD=str(BLIS)), str(BLIS))
    else:
        print(f"blis: skipped ({BLIS} is not here: apt-get install libblis4-openmp)")
    mkl = next(iter(sorted((Path(mkl_dir) / "lib").glob("libmkl_rt.so.*"))), None) \
        if mkl_dir else None
    if mkl:
        lib_path = f"{mkl.parent}:{BLAS_DIRS['openmp']}"
        found["mkl"] = ({"LD_LIBRARY_PATH": lib_path, "LD_PRELOAD": str(mkl),
                         "MKL_THREADING_LAYER": "GNU", "MKL_INTERFACE_LAYER": "LP64"},
                        str(mkl))
    else:
        print(f"mkl: skipped (no libmkl_rt.so.* under {mkl_dir or '--mkl DIR'}/lib: the "
              "mkl wheel's data/lib)")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", nargs="+", default=["sgemm", "lenet", "cifar10_quick"],
                        choices=["sgemm", "lenet", "cifar10_quick"])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved, each")
    parser.add_argument("--mkl", default="",
                        help="a folder whose lib/ holds the mkl wheel's data/lib files")
    args = parser.parse_args()
    found = libraries(args.mkl)
    rows = []
    for net in args.nets:
        runs = {f"{name} {threads}t": (lambda env=env, lib=lib, t=threads: step_ms(
                    net, ITERATIONS[net], t, blas_env=env, library=lib))
                for name, (env, lib) in found.items() for threads in (1, 2)}
        samples = interleave(runs, args.repeats)
        for name, values in samples.items():
            print(f"{net} {name}: {summarize(values)}", flush=True)
        medians = {name: statistics.median(values) for name, values in samples.items()}
        best = min(medians, key=medians.get)
        print(f"{net}: fastest {best} ({medians[best]:.1f} ms)", flush=True)
        rows.append({"net": net, "batch": BATCH[net], "iterations": ITERATIONS[net],
                     "samples": samples})
    record("cpu_blas", rows=rows, extra={"libraries": sorted(found)})


if __name__ == "__main__":
    main()
