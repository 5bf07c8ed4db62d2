"""Caffe's LeNet and its solver in PyTorch on the CPU, trained to a test accuracy.

Run by bench_cpu_to_target.py under a Python that has torch (its --torch-python):
the same net (torch_baselines.build("lenet")), Caffe's xavier/constant fillers,
the solver of zoo.lenet_solver() (SGD, momentum 0.9, weight decay 5e-4, the
biases at twice the rate, lr 0.01 * (1 + 1e-4 * iter) ^ -0.75), batches of 64 in
the data's order, inputs scaled by 1/256, and a test of all 10,000 test images
every --test-every iterations, its time counted. Prints one JSON line.

    python bench/torch_lenet_cpu.py DATA.npz --threads 2 [--target 0.895]
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from torch_baselines import build  # bench/, beside this script


def caffe_fillers(model) -> None:
    """xavier: uniform(+-sqrt(3 / fan_in)) for weights, 0 for biases (LeNet's prototxt)."""
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in = module.weight[0].numel()
            torch.nn.init.uniform_(module.weight, -math.sqrt(3 / fan_in), math.sqrt(3 / fan_in))
            torch.nn.init.zeros_(module.bias)


def caffe_solver(model):
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    optimizer = torch.optim.SGD([{"params": weights}, {"params": biases, "lr": 0.02}],
                                lr=0.01, momentum=0.9, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: (1 + 1e-4 * it) ** -0.75)
    return optimizer, schedule


def accuracy(model, images, labels) -> float:
    model.eval()
    with torch.no_grad():
        right = sum(int((model(images[i:i + 100]).argmax(1) == labels[i:i + 100]).sum())
                    for i in range(0, len(images), 100))
    model.train()
    return right / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--target", type=float, default=0.895)
    parser.add_argument("--test-every", type=int, default=500)
    parser.add_argument("--max-iterations", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = np.load(args.data)
    train_x = torch.from_numpy(data["train_x"]).float().div_(256).unsqueeze(1)
    train_y = torch.from_numpy(data["train_y"]).long()
    test_x = torch.from_numpy(data["test_x"]).float().div_(256).unsqueeze(1)
    test_y = torch.from_numpy(data["test_y"]).long()
    model = build("lenet")
    caffe_fillers(model)
    optimizer, schedule = caffe_solver(model)
    loss_fn = torch.nn.CrossEntropyLoss()
    clock, done, score, at = 0.0, 0, 0.0, 0
    while done < args.max_iterations and score < args.target:
        tic = time.perf_counter()
        for _ in range(args.test_every):
            batch = (torch.arange(64) + at) % len(train_x)  # wraps as Net's feed does
            at = (at + 64) % len(train_x)
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(train_x[batch]), train_y[batch]).backward()
            optimizer.step()
            schedule.step()
        done += args.test_every
        score = accuracy(model, test_x, test_y)
        clock += time.perf_counter() - tic
    print(json.dumps({"seconds": clock if score >= args.target else None, "iterations": done,
                      "accuracy": score, "torch": torch.__version__, "threads": args.threads}))


if __name__ == "__main__":
    main()
