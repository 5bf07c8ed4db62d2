"""Run inside the bare container by tests/test_wheel.py, with the installed wheel:
decodes the given images (to compare with the default build's pixels), trains
LeNet on Fashion-MNIST through Net, and prints what it saw as one JSON line.

    python wheel_check.py IMAGES_DIR OUT_DIR ITERATIONS
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import pysparknet
from pysparknet import Net, zoo
from pysparknet._native import CAFFE_DIR
from pysparknet.data import decode_image, fashion_mnist

# (color, size) for decode_image: the file's own colours, forced BGR, forced
# grey, and Caffe's resize.
DECODE_MODES = {"own": (None, None), "bgr": (True, None), "grey": (False, None),
                "resized": (True, (23, 37))}


def decode_all(images: Path, out: Path) -> int:
    decoded = {}
    for path in sorted(images.iterdir()):
        for mode, (color, size) in DECODE_MODES.items():
            decoded[f"{path.name}:{mode}"] = decode_image(path.read_bytes(), color, size)
    np.savez(out / "decoded.npz", **decoded)
    return len(decoded)


def train(iterations: int) -> dict:
    train_set, test_set = fashion_mnist("train"), fashion_mnist("test")
    net = Net(zoo.lenet(batch_size=64), zoo.lenet_solver(), seed=1)
    net.set_training_data(train_set)
    net.set_validation_data((test_set[0][:2000], test_set[1][:2000]))
    tic = time.monotonic()
    first = net.train(10)["loss"]
    last = net.train(iterations - 10)["loss"]
    return {"iterations": net.iteration, "first_loss": first, "last_loss": last,
            "train_s": time.monotonic() - tic, **net.test()}


def main() -> None:
    images, out, iterations = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    tool = subprocess.run([str(CAFFE_DIR / "bin" / "caffe"), "--version"],
                          capture_output=True, text=True, timeout=60)
    report = {"package": pysparknet.__file__, "caffe_tool": (tool.stdout + tool.stderr).strip(),
              "caffe_tool_rc": tool.returncode, "decoded": decode_all(images, out),
              **train(iterations)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
