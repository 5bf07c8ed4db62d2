"""Single-worker training throughput: Net vs. Caffe's own `caffe train` and `caffe time`.

Both run the same net and solver on the same Caffe build in the same run, with
the same OpenBLAS thread count. `caffe train` reads an LMDB through Caffe's
prefetching Data layer; Net is fed the same records from Python. Throughput is
taken over the steady state (after a warm-up) on both sides:
  - caffe train: images/s between its first and last display line (glog stamps);
  - Net: images/s of one train(n) call after a warm-up train call;
  - caffe time: its average forward-backward ms (no solver update) as a reference.
LeNet runs on the real Fashion-MNIST; CIFAR-10 quick on generated 32x32x3 images
(no registry ships CIFAR-10), with a mean file made by compute_image_mean.

    python bench/bench_train_throughput.py [--iterations 600]
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from results_io import record  # bench/, beside this script
from pysparknet import Net, zoo
from pysparknet.build_info import run_tool
from pysparknet.data import fashion_mnist
from pysparknet.data.datum import write_datum_lmdb
from pysparknet.data.mnist import FASHION_MNIST_DIR
from pysparknet.proto import caffe_pb2
from pysparknet.prototxt import to_text

STAMP = re.compile(r"^I(\d{4}|\d{8}) (\d\d:\d\d:\d\d\.\d{6}) .*Iteration (\d+) \(.*\), loss")


def display_throughput(log: str, batch: int) -> float:
    """images/s between the first and last 'Iteration N (...), loss' lines of caffe train."""
    points = []
    for line in log.splitlines():
        m = STAMP.match(line)
        if m:
            t = dt.datetime.strptime(m.group(2), "%H:%M:%S.%f")
            points.append((int(m.group(3)), t))
    (i0, t0), (i1, t1) = points[0], points[-1]
    return (i1 - i0) * batch / (t1 - t0).total_seconds()


def measure(name, net_lmdb, solver, net_fed, train_data, batch, iterations, workdir):
    model = workdir / f"{name}.prototxt"
    model.write_text(to_text(net_lmdb))
    solver = caffe_pb2.SolverParameter.FromString(solver.SerializeToString())
    solver.net = str(model)
    solver.max_iter = iterations
    solver.display = 50
    solver.test_interval = 10**9
    solver.test_initialization = False
    solver.snapshot = 0
    solver.snapshot_after_train = False
    solver.solver_mode = caffe_pb2.SolverParameter.CPU
    solver_path = workdir / f"{name}_solver.prototxt"
    solver_path.write_text(to_text(solver))

    tool_ips = display_throughput(run_tool("caffe", ["train", "-solver", solver_path]), batch)
    time_log = run_tool("caffe", ["time", "-model", model, "-iterations", "20"])
    fb_ms = float(re.search(r"Average Forward-Backward: ([\d.]+) ms", time_log).group(1))

    net = Net(net_fed, solver, seed=1)
    net.set_training_data(train_data)
    net.train(50)  # warm-up, as the tool's first display interval is left out
    tic = time.perf_counter()
    net.train(iterations - 50)
    ours_ips = (iterations - 50) * batch / (time.perf_counter() - tic)
    return tool_ips, 1000.0 * batch / fb_ms, ours_ips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=600)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    rows = []
    try:
        # LeNet, batch 64, real Fashion-MNIST, LMDB by Caffe's convert_mnist_data.
        raw = {}
        for kind in ("images-idx3", "labels-idx1"):
            raw[kind] = work / f"train-{kind}-ubyte"
            with gzip.open(FASHION_MNIST_DIR / f"train-{kind}-ubyte.gz") as f, \
                    open(raw[kind], "wb") as out:
                shutil.copyfileobj(f, out)
        run_tool("convert_mnist_data", [raw["images-idx3"], raw["labels-idx1"],
                                        work / "fm_lmdb", "--backend=lmdb"])
        lenet = zoo.load("lenet", feed=False, sources={caffe_pb2.TRAIN: work / "fm_lmdb",
                                                       caffe_pb2.TEST: work / "fm_lmdb"}).net
        rows.append(("LeNet", 64, *measure("lenet", lenet, zoo.lenet_solver(), zoo.lenet(64),
                                           fashion_mnist("train"), 64, args.iterations, work)))

        # CIFAR-10 quick, batch 100, generated images, mean by compute_image_mean.
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, size=(5000, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, size=5000)
        write_datum_lmdb(work / "c10_lmdb", zip(images, labels))
        run_tool("compute_image_mean", [work / "c10_lmdb", work / "mean.binaryproto"])
        mean = str(work / "mean.binaryproto")
        c10 = zoo.load("cifar10_quick", feed=False, mean_file=mean,
                       sources={caffe_pb2.TRAIN: work / "c10_lmdb",
                                caffe_pb2.TEST: work / "c10_lmdb"}).net
        fed = zoo.load("cifar10_quick", mean_file=mean)
        rows.append(("CIFAR-10 quick", 100, *measure("cifar10_quick", c10, fed.solver, fed.net,
                                                     (images, labels), 100,
                                                     args.iterations, work)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n| net | batch | caffe train img/s | caffe time (fwd+bwd only) img/s | "
          f"Net.train img/s | Net / caffe train |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, batch, tool, fb, ours in rows:
        print(f"| {name} | {batch} | {tool:.0f} | {fb:.0f} | {ours:.0f} | {ours / tool:.3f} |")
    record("train_throughput", rows=[dict(zip(("net", "batch", "caffe_train_ips", "caffe_time_ips",
                                              "net_train_ips"), r)) for r in rows],
           extra={"iterations": args.iterations, "repeats": 1})


if __name__ == "__main__":
    main()
