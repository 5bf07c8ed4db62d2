"""A Caffe train net's graph run in PyTorch on the CPU: the same layers, shapes and
losses as `caffe time` runs, for a like-for-like forward-backward.

The spec is the TRAIN-phase layer list that bench_zoo_cpu.py writes from the
prototxt (pysparknet's side reads the protobuf; this side needs only torch):
  [{"type": "Convolution", "name", "bottom": [...], "top": [...], ...params}, ...]
the Data layer's crop, and how many learnable floats Caffe's net holds (the
graph built here must hold as many). One step: zero the gradients, forward, the losses
(each SoftmaxWithLoss times its loss_weight) summed, backward; no update, as
`caffe time` has none.

    python torch_caffe_graph.py SPEC.json --batch 8 --iterations 3 --threads 2
prints the mean ms of a step.
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(layer: dict) -> nn.Module:
    return nn.LazyConv2d(layer["num_output"], layer["kernel"], layer["stride"],
                         layer["pad"], groups=layer["group"], bias=layer["bias_term"])


def pool(layer: dict) -> nn.Module:
    if layer["global_pooling"]:
        return nn.AdaptiveMaxPool2d(1) if layer["pool"] == "MAX" else nn.AdaptiveAvgPool2d(1)
    if layer["pool"] == "MAX":  # Caffe's pooled size rounds up, as ceil_mode does
        return nn.MaxPool2d(layer["kernel"], layer["stride"], layer["pad"], ceil_mode=True)
    return nn.AvgPool2d(layer["kernel"], layer["stride"], layer["pad"], ceil_mode=True)


MODULES = {
    "Convolution": conv,
    "Pooling": pool,
    "LRN": lambda layer: nn.LocalResponseNorm(layer["local_size"], layer["alpha"],
                                              layer["beta"], layer["k"]),
    "ReLU": lambda layer: nn.ReLU(),
    "InnerProduct": lambda layer: nn.Sequential(
        nn.Flatten(), nn.LazyLinear(layer["num_output"], bias=layer["bias_term"])),
    "Dropout": lambda layer: nn.Dropout(layer["ratio"]),
}


class CaffeGraph(nn.Module):
    """The layers in prototxt order over a dict of named blobs."""

    def __init__(self, layers: list):
        super().__init__()
        self.layers = [layer for layer in layers if layer["type"] != "Data"]
        unknown = {layer["type"] for layer in self.layers} - set(MODULES) - {
            "Concat", "SoftmaxWithLoss"}
        if unknown:
            raise ValueError(f"no torch counterpart written for layer types {sorted(unknown)}")
        self.modules_by_name = nn.ModuleDict({
            layer["name"].replace(".", "_"): MODULES[layer["type"]](layer)
            for layer in self.layers if layer["type"] in MODULES})

    def forward(self, data: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        blobs, loss = {"data": data, "label": label}, data.new_zeros(())
        for layer in self.layers:
            inputs = [blobs[name] for name in layer["bottom"]]
            if layer["type"] == "Concat":
                blobs[layer["top"][0]] = torch.cat(inputs, layer["axis"])
            elif layer["type"] == "SoftmaxWithLoss":
                loss = loss + layer["loss_weight"] * F.cross_entropy(*inputs)
            else:
                blobs[layer["top"][0]] = self.modules_by_name[
                    layer["name"].replace(".", "_")](inputs[0])
        return loss


def step_ms(spec: dict, batch: int, iterations: int) -> float:
    model = CaffeGraph(spec["layers"]).train()
    crop = spec["crop"]
    data = torch.rand(batch, 3, crop, crop) * 255 - 128
    label = torch.randint(0, spec["classes"], (batch,))
    model(data, label)  # the lazy layers take their input sizes
    floats = sum(p.numel() for p in model.parameters())
    if floats != spec["learnable_floats"]:
        raise ValueError(f"the torch graph holds {floats:,} learnable floats, Caffe's "
                         f"{spec['learnable_floats']:,}: not the same net")

    def one_step():
        model.zero_grad(set_to_none=True)
        model(data, label).backward()
    one_step()  # warm-up, as `caffe time` has one
    tic = time.perf_counter()
    for _ in range(iterations):
        one_step()
    return (time.perf_counter() - tic) * 1e3 / iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec")
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.spec) as spec:
        print(step_ms(json.load(spec), args.batch, args.iterations))


if __name__ == "__main__":
    main()
