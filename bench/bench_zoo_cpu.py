"""AlexNet and GoogLeNet forward-backward on the CPU: this build against the Caffe
before its CPU patches, and against PyTorch running the same graph, on the same
cores.

Each net is Caffe's own train_val prototxt (batch 8 by default) over an LMDB of
random 256x256 images through its Data layer (crop, mirror, mean), as in
bench_zoo_forward_backward.py. The variants, each in a fresh process, interleaved
(A B C D, A B C D, ...), every one on --threads threads:

  caffe time, unpatched   `caffe time` of Caffe built with patches 0001-0012 only
                          (before 0013/0014's CPU convolution and OpenMP layers),
                          on Debian's OpenBLAS pthreads build, as it ran before
  caffe time              `caffe time` of this build
  Net.forward_backward    this build through pysparknet (the product)
  PyTorch                 the same TRAIN-phase layers, built from the same prototxt
                          (bench/torch_caffe_graph.py), torch.set_num_threads
                          (--torch-python: a Python with torch; skipped, saying so,
                          without one)

The unpatched build is made once by build_caffe.py over a copy of native/ that
holds only patches 0001-0012, into the same cache (its own key).

    python bench/bench_zoo_cpu.py [--nets alexnet googlenet] [--batch 8] [--threads 2]
        [--iterations 3] [--repeats 3] [--torch-python /path/to/python]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from pysparknet import Net
from pysparknet.build_info import caffe_tool
from pysparknet.proto import caffe_pb2

from bench_cpu_threads import openblas  # bench/, beside this script
from bench_zoo_forward_backward import forward_backward_ms, timing_net  # bench/
from results_io import interleave, record, summarize  # bench/

ROOT = Path(__file__).resolve().parent.parent
LAST_UPSTREAM_ERA_PATCH = "0012"  # the patches after it are the CPU work being measured
TIMEOUT_S = 1800
NET_PASSES = """
import time, numpy as np, warnings
from pysparknet import Net, zoo
warnings.simplefilter("ignore")
model = zoo.load({name!r}, batch_size={batch}, test_batch_size={batch})
fed = np.load({data!r})  # the images and labels timing_net wrote for `caffe time`
net = Net(model.net, model.solver, seed=0, threads={threads})
net.set_training_data((fed["images"], fed["labels"]))
net.forward_backward(1)  # warm-up, as `caffe time` has one
tic = time.perf_counter()
net.forward_backward({iterations})
print(1e3 * (time.perf_counter() - tic) / {iterations})
"""


def unpatched_caffe(work: Path) -> Path:
    """The install prefix of Caffe built with patches up to 0012 (cached by its key)."""
    native = work / "native"
    shutil.copytree(ROOT / "native" / "caffe", native / "caffe")
    (native / "patches").mkdir()
    for patch in sorted((ROOT / "native" / "patches").glob("*.patch")):
        if patch.name[:4] <= LAST_UPSTREAM_ERA_PATCH:
            shutil.copy(patch, native / "patches")
    done = subprocess.run([sys.executable, str(native / "caffe" / "build_caffe.py")],
                          capture_output=True, text=True, timeout=3 * 3600)
    if done.returncode:
        raise RuntimeError(f"the unpatched Caffe did not build: {done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def threads_env(threads: int, **extra) -> dict:
    env = dict(os.environ, GLOG_logtostderr="1", **extra,
               **{f"{lib}_NUM_THREADS": str(threads) for lib in ("OPENBLAS", "OMP")})
    env.pop("OMP_WAIT_POLICY", None)
    return env


def caffe_time(tool: Path, prototxt: Path, iterations: int, env: dict) -> float:
    done = subprocess.run([str(tool), "time", "-model", str(prototxt), "-iterations",
                           str(iterations)], capture_output=True, text=True, env=env,
                          timeout=TIMEOUT_S)
    if done.returncode:
        raise RuntimeError(f"{tool} time failed: {done.stderr[-2000:]}")
    return forward_backward_ms(done.stderr)


def learnable_floats(model) -> int:
    """How many learnable floats Caffe's net holds (the torch graph must hold as many)."""
    net = Net(model.net, model.solver, seed=0)
    try:
        return sum(blob.size for blob in net.layout)
    finally:
        net.close()


def torch_spec(net: caffe_pb2.NetParameter, batch: int, floats: int) -> dict:
    """The TRAIN-phase layers torch_caffe_graph.py builds, with what each needs."""
    layers, crop = [], None
    for layer in net.layer:
        if any(rule.phase == caffe_pb2.TEST for rule in layer.include):
            continue
        entry = {"type": layer.type, "name": layer.name, "bottom": list(layer.bottom),
                 "top": list(layer.top)}
        if layer.type == "Data":
            crop = layer.transform_param.crop_size
        entry.update(_layer_params(layer))
        layers.append(entry)
    return {"layers": layers, "crop": crop, "classes": 1000, "batch": batch,
            "learnable_floats": floats}


def _layer_params(layer) -> dict:
    if layer.type == "Convolution":
        p = layer.convolution_param
        return {"num_output": p.num_output, "kernel": p.kernel_size[0],
                "stride": p.stride[0] if p.stride else 1, "pad": p.pad[0] if p.pad else 0,
                "group": p.group, "bias_term": p.bias_term}
    if layer.type == "Pooling":
        p = layer.pooling_param
        return {"pool": caffe_pb2.PoolingParameter.PoolMethod.Name(p.pool),
                "kernel": p.kernel_size, "stride": p.stride, "pad": p.pad,
                "global_pooling": p.global_pooling}
    if layer.type == "LRN":
        p = layer.lrn_param
        if p.norm_region != caffe_pb2.LRNParameter.ACROSS_CHANNELS:
            raise ValueError(f"{layer.name}: only LRN across channels is written in torch")
        return {"local_size": p.local_size, "alpha": p.alpha, "beta": p.beta, "k": p.k}
    if layer.type == "InnerProduct":
        p = layer.inner_product_param
        return {"num_output": p.num_output, "bias_term": p.bias_term}
    if layer.type == "Dropout":
        return {"ratio": layer.dropout_param.dropout_ratio}
    if layer.type == "Concat":
        return {"axis": layer.concat_param.axis}
    if layer.type == "SoftmaxWithLoss":
        return {"loss_weight": layer.loss_weight[0] if layer.loss_weight else 1.0}
    return {}


def variants(name: str, args, work: Path, unpatched: Path, torch_python: str) -> dict:
    prototxt, model, (images, labels), net = timing_net(name, args.batch, work)
    spec = work / f"{name}_torch.json"
    spec.write_text(json.dumps(torch_spec(net, args.batch, learnable_floats(model))))
    data = work / f"{name}_fed.npz"
    np.savez(data, images=images, labels=labels)
    code = NET_PASSES.format(name=name, batch=args.batch, threads=args.threads,
                             iterations=args.iterations, data=str(data))
    runs = {
        "caffe time, unpatched": lambda: caffe_time(
            unpatched / "bin" / "caffe", prototxt, args.iterations,
            threads_env(args.threads, **openblas("pthread"))),
        "caffe time": lambda: caffe_time(caffe_tool("caffe"), prototxt, args.iterations,
                                         threads_env(args.threads)),
        "Net.forward_backward": lambda: _ms_of([sys.executable, "-c", code], work,
                                               args.threads),
    }
    if torch_python:
        runs["PyTorch"] = lambda: _ms_of(
            [torch_python, str(ROOT / "bench" / "torch_caffe_graph.py"), str(spec), "--batch",
             str(args.batch), "--iterations", str(args.iterations), "--threads",
             str(args.threads)], work, args.threads)
    return runs


def _ms_of(command: list, work: Path, threads: int) -> float:
    """The last line a timing process prints (ms), run in a fresh process."""
    done = subprocess.run(command, capture_output=True, text=True, cwd=work,
                          env=threads_env(threads), timeout=TIMEOUT_S)
    if done.returncode:
        raise RuntimeError(f"a timing process failed: {done.stderr.strip()[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", nargs="+", default=["alexnet", "googlenet"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=3, help="timed passes a process")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved, each variant")
    parser.add_argument("--torch-python", default="",
                        help="a Python with torch for the PyTorch runs (default: skipped)")
    args = parser.parse_args()
    if not args.torch_python:
        print("PyTorch not run: give --torch-python", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        unpatched = unpatched_caffe(work / "unpatched")
        for name in args.nets:
            samples = interleave(variants(name, args, work, unpatched, args.torch_python),
                                 args.repeats)
            for variant, values in samples.items():
                print(f"{name} {variant}: {summarize(values)}", flush=True)
            medians = {variant: statistics.median(v) for variant, v in samples.items()}
            for variant, ms in medians.items():
                print(f"{name} {variant}: {ms / medians['caffe time, unpatched']:.2f} of the "
                      "unpatched caffe time", flush=True)
            rows.append({"net": name, "batch": args.batch, "threads": args.threads,
                         "iterations": args.iterations, "samples": samples})
    record("zoo_cpu", rows=rows, extra={"unpatched_caffe": str(unpatched),
                                        "torch": bool(args.torch_python)})


if __name__ == "__main__":
    main()
