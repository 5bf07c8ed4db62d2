"""Shared fixtures: real Fashion-MNIST, LMDBs made by Caffe's own tool, small nets."""
from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from pysparknet import zoo
from pysparknet.build_info import run_tool
from pysparknet.data import encode_image, fashion_mnist
from pysparknet.data.mnist import FASHION_MNIST_DIR
from pysparknet.proto import caffe_pb2
from pysparknet.prototxt import to_text


@pytest.fixture(scope="module")
def spark():
    """A module's local-cluster: two executor JVMs of one core, the default 1 GB driver
    (what a new user has), no task retries. Modules that need another one override it."""
    from pysparknet.spark import local_spark

    session = local_spark("local-cluster[2,1,1024]", conf={"spark.task.maxFailures": "1"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def fmnist_train():
    return fashion_mnist("train")


@pytest.fixture(scope="session")
def fmnist_test():
    return fashion_mnist("test")


def _convert_mnist(tmp: Path, prefix: str) -> Path:
    """An LMDB of Datum records written by Caffe's own convert_mnist_data."""
    raw = {}
    for kind in ("images-idx3", "labels-idx1"):
        src = FASHION_MNIST_DIR / f"{prefix}-{kind}-ubyte.gz"
        raw[kind] = tmp / f"{prefix}-{kind}-ubyte"
        with gzip.open(src) as fin, open(raw[kind], "wb") as fout:
            shutil.copyfileobj(fin, fout)
    db = tmp / f"{prefix}_lmdb"
    run_tool("convert_mnist_data", [raw["images-idx3"], raw["labels-idx1"], db,
                                    "--backend=lmdb"])
    return db


@pytest.fixture(scope="session")
def fmnist_lmdb(tmp_path_factory):
    """(train LMDB, test LMDB) of Fashion-MNIST made by convert_mnist_data."""
    tmp = tmp_path_factory.mktemp("fmnist_lmdb")
    return _convert_mnist(tmp, "train"), _convert_mnist(tmp, "t10k")


def lenet_lmdb_prototxt(train_db: Path, test_db: Path) -> caffe_pb2.NetParameter:
    """Caffe's lenet_train_test.prototxt reading the given LMDBs (for the caffe tool)."""
    return zoo.load("lenet", feed=False,
                    sources={caffe_pb2.TRAIN: train_db, caffe_pb2.TEST: test_db}).net


def write_lenet_for_tool(tmp_path, fmnist_lmdb, **solver_fields):
    train_db, test_db = fmnist_lmdb
    model = tmp_path / "lenet_train_test.prototxt"
    model.write_text(to_text(lenet_lmdb_prototxt(train_db, test_db)))
    solver = zoo.lenet_solver()
    solver.net = str(model)
    solver.snapshot_prefix = str(tmp_path / "lenet")
    solver.test_initialization = False
    for name, value in solver_fields.items():
        if isinstance(value, list):
            getattr(solver, name)[:] = value
        else:
            setattr(solver, name, value)
    solver_path = tmp_path / "lenet_solver.prototxt"
    solver_path.write_text(to_text(solver))
    return model, solver_path


def run_caffe(args: list[str], cwd=None) -> str:
    return run_tool("caffe", args, cwd=cwd)


def caffe_test_scores(log: str) -> dict[str, float]:
    """The final '<output> = <value>' lines of `caffe test`."""
    scores = {}
    for name, value in re.findall(r"\] (\w+) = ([-\d.e+]+)", log):
        scores[name] = float(value)
    return scores


TINY_NET = """
name: "tiny"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 8 dim: 1 dim: 4 dim: 4 } shape { dim: 8 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "accuracy" }
"""
TINY_SOLVER = 'base_lr: 0.1 lr_policy: "fixed" momentum: 0.9 type: "SGD"'


@pytest.fixture
def tiny_data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=64)
    images = rng.normal(size=(64, 1, 4, 4)).astype(np.float32) + labels[:, None, None, None]
    return images, labels


def smooth_images(n, shape=(3, 36, 44), seed=0):
    """Photo-like (smooth) uint8 images, so JPEG has something real to code."""
    rng = np.random.default_rng(seed)
    c, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    images = []
    for _ in range(n):
        fx, fy, phase = rng.uniform(0.05, 0.3, 3)
        base = np.sin(fx * xx + phase) * np.cos(fy * yy) * 100 + 128
        noise = rng.normal(0, 8, (c, h, w))
        images.append(np.clip(base[None] + noise + rng.uniform(-40, 40, (c, 1, 1)), 0, 255)
                      .astype(np.uint8))
    return images


@pytest.fixture(scope="session")
def jpeg_folder(tmp_path_factory):
    """root/<class>/<i>.jpg (colour, and one grey class), plus convert_imageset's list."""
    root = tmp_path_factory.mktemp("jpegs")
    lines = []
    for i, image in enumerate(smooth_images(24)):
        cls = ["cat", "dog", "grey"][i % 3]
        (root / cls).mkdir(exist_ok=True)
        pixels = image[:1] if cls == "grey" else image
        (root / cls / f"{i:03d}.jpg").write_bytes(encode_image(pixels, "JPEG", quality=90))
        lines.append(f"{cls}/{i:03d}.jpg {i % 3}")
    listfile = root.parent / f"{root.name}_list.txt"
    listfile.write_text("\n".join(lines) + "\n")
    return root, listfile
