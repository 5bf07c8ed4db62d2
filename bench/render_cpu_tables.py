"""BENCHMARKS.md's CPU tables (the batched convolution and its threads), from stored output."""
from __future__ import annotations

import math

from render_tables import header, median, row, spread, stored, table

NET_NAMES = {"lenet": "LeNet b64", "cifar10_quick": "CIFAR-10 quick b100"}


@table
def cpu_threads():
    data, src = stored("cpu_threads")
    first = next(r for r in data["rows"] if r["net"] != "sgemm")["samples"]
    base_name = "unpatched 1t" if "unpatched 1t" in first else "per-image 1t"
    lines = header("net", "variant", "ms a training step, median (min-max)",
                   "vs. its 1-thread variant", f"vs. {base_name.replace('1t', '1 thread')}",
                   text_columns=2)
    ceiling = ""
    for r in data["rows"]:
        s = r["samples"]
        if r["net"] == "sgemm":
            ceiling = (f" The ceiling, same run: one {r['batch']}^3 sgemm on 2 threads ran "
                       f"{median(s['1t']) / median(s['2t']):.2f}x as fast as on one "
                       f"({spread(s['1t'], 1)} vs {spread(s['2t'], 1)} ms).")
            continue
        base = median(s[base_name]) if base_name in s else math.nan
        for name, values in s.items():
            # the images split has no 1-thread form: one thread runs per image
            one = "per-image 1t" if name == "images 2t" else name.replace("2t", "1t")
            single = s.get(one.split(",")[0])
            gain = f"{median(single) / median(values):.2f}x" if "2t" in name and single else ""
            lines.append(row(NET_NAMES.get(r["net"], r["net"]), name, spread(values, 1),
                             gain, f"{base / median(values):.2f}x"))
    return lines, src + [
        "Net.train (forward, backward, SGD update) in fresh processes, random inputs, "
        "variants interleaved; `unpatched` is the build before patch 0013 on Debian's "
        "default OpenBLAS (pthreads), the others this build on OpenBLAS built on OpenMP "
        "unless the row says pthreads; `images 2t` gains over per-image 1t." + ceiling]


@table
def cpu_to_target():
    data, src = stored("cpu_to_target")
    e = data["extra"]
    times = {r["variant"]: r["seconds"] for r in data["rows"]}
    torch = median(times["PyTorch 2t"]) if "PyTorch 2t" in times else math.nan
    lines = header("system", f"seconds to {e['target']:.1%}, median (min-max)",
                   "/ PyTorch 2 threads")
    for name, seconds in times.items():
        lines.append(row(name, spread(seconds, 1), f"{median(seconds) / torch:.2f}"))
    return lines, src + [
        f"LeNet on Fashion-MNIST (zoo.lenet, zoo.lenet_solver; PyTorch: the same net, "
        f"fillers and solver), a test of all 10,000 test images every {e['test_every']} "
        "iterations (a worker's, for SparkNet) counted in the clock; systems interleaved."
    ] + _fit_parts(e.get("sparknet_parts", []))


def _fit_parts(runs: list) -> list:
    """The SparkNet runs' seconds by part, in run order (records that kept them)."""
    if not runs:
        return []
    names = {"compute_s": "training", "sync_s": "sync", "validation_s": "driver's tests",
             "start_end_s": "fit start and end"}
    parts = "; ".join(f"{label} " + "/".join(f"{run[key]:.1f}" for run in runs)
                      for key, label in names.items())
    return [f"SparkNet's seconds by part, run by run: {parts}."]


@table
def cpu_blas():
    data, src = stored("cpu_blas")
    lines = header("net", "BLAS, threads", "ms, median (min-max)", "/ OpenBLAS, same threads",
                   text_columns=2)
    for r in data["rows"]:
        s = r["samples"]
        for name, values in s.items():
            base = s[f"openblas {name.split()[-1]}"]
            lines.append(row(NET_NAMES.get(r["net"], f"{r['net']} {r['batch']}^3"), name,
                             spread(values, 1), f"{median(values) / median(base):.2f}"))
    return lines, src + [
        "The same Caffe build; BLIS and oneMKL stand in for OpenBLAS's CBLAS functions "
        "through LD_PRELOAD; variants interleaved in fresh processes (sgemm: ms a call; "
        "nets: a Net.train step, the convolution at its default)."]


@table
def conv_batch_sizes():
    data, src = stored("conv_batch_sizes")
    lines = header("net", "SPARKNET_CONV_BATCH_MB, threads",
                   "ms a training step, median (min-max)", "/ per image, same threads",
                   text_columns=2)
    for r in data["rows"]:
        s = r["samples"]
        for name, values in s.items():
            per_image = s[f"0 MB {name.split()[-1]}"]
            lines.append(row(NET_NAMES.get(r["net"], r["net"]), name, spread(values, 1),
                             f"{median(values) / median(per_image):.2f}"))
    return lines, src + [
        "Net.train in fresh processes, random inputs, OpenBLAS on OpenMP, variants "
        "interleaved; 0 MB: upstream's per-image path."]
