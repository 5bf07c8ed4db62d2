"""PyTorch training steps on the same GPU: the baseline SparkNet's GPU users
would pick instead. torchvision's AlexNet and GoogLeNet (same families as
Caffe's zoo nets: no LRN or groups in AlexNet, batch norm in GoogLeNet) and
Caffe's LeNet written in torch. One step = forward, cross-entropy, backward,
SGD update, timed with torch.cuda.synchronize around the loop.
"""
from __future__ import annotations

import time

CROP = {"lenet": (1, 28), "alexnet": (3, 227), "googlenet": (3, 224),
        "caffe_alexnet": (3, 227)}


def available() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def build(name: str):
    import torch.nn as nn
    if name in ("alexnet", "googlenet"):  # torchvision only where needed: LeNet runs without
        import torchvision
        return torchvision.models.alexnet(num_classes=1000) if name == "alexnet" else \
            torchvision.models.googlenet(num_classes=1000, aux_logits=False, init_weights=True)
    if name == "caffe_alexnet":
        return caffe_alexnet()
    return nn.Sequential(  # Caffe's examples/mnist/lenet_train_test.prototxt
        nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


def caffe_alexnet():
    """Caffe's models/bvlc_alexnet graph in torch: LRN and two-group convolutions."""
    import torch.nn as nn

    def conv(c_in, c_out, kernel, stride=1, pad=0, groups=1):
        return [nn.Conv2d(c_in, c_out, kernel, stride, pad, groups=groups), nn.ReLU(True)]
    lrn = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
    return nn.Sequential(
        *conv(3, 96, 11, 4), lrn, nn.MaxPool2d(3, 2, ceil_mode=True),
        *conv(96, 256, 5, pad=2, groups=2), lrn, nn.MaxPool2d(3, 2, ceil_mode=True),
        *conv(256, 384, 3, pad=1), *conv(384, 384, 3, pad=1, groups=2),
        *conv(384, 256, 3, pad=1, groups=2), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Flatten(), nn.Linear(9216, 4096), nn.ReLU(True), nn.Dropout(),
        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, 1000))


def step_ms(name: str, batch: int, tf32: bool, iterations: int = 20,
            benchmark: bool = False) -> float:
    """Mean ms of one training step; tf32=False is true FP32 (convolutions too).
    benchmark=False: cuDNN's heuristic picks; True: measured picks
    (cudnn.benchmark), as Caffe's cuDNN layers make by default here."""
    import torch
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = benchmark
    channels, size = CROP[name]
    model = build(name).cuda().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    images = torch.randn(batch, channels, size, size, device="cuda")
    labels = torch.randint(0, 10 if name == "lenet" else 1000, (batch,), device="cuda")

    def one_step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), labels).backward()
        optimizer.step()

    for _ in range(5):
        one_step()
    torch.cuda.synchronize()
    tic = time.perf_counter()
    for _ in range(iterations):
        one_step()
    torch.cuda.synchronize()
    return (time.perf_counter() - tic) * 1e3 / iterations
