"""A net of a given number of learnable floats whose compute is negligible.

One InnerProduct layer (8 inputs -> n/8 outputs, no bias) over a batch of one
8-float record, with a softmax loss: the weight vector is n floats while a
training step costs a few passes over it. The sync and memory benches use it to
put LeNet-, GoogLeNet- and AlexNet-sized weight vectors through the trainer.
"""
from __future__ import annotations

import numpy as np

INPUTS = 8
SIZES = {"LeNet": 431_080, "GoogLeNet": 7_000_000, "AlexNet": 60_965_224}
SOLVER = 'base_lr: 0.01 lr_policy: "fixed" momentum: 0.9 type: "SGD"'


def sized_net(n_floats: int) -> str:
    if n_floats % INPUTS:
        raise ValueError(f"{n_floats} is not a multiple of {INPUTS}")
    return f"""
name: "sized_{n_floats}"
layer {{ name: "data" type: "Input" top: "data" top: "label"
        input_param {{ shape {{ dim: 1 dim: {INPUTS} }} shape {{ dim: 1 }} }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param {{ num_output: {n_floats // INPUTS} bias_term: false
                               weight_filler {{ type: "gaussian" std: 0.01 }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }}
"""


def sized_records(sc, workers: int, per_worker: int = 4):
    """An RDD of (8-float record, label 0) pairs, `per_worker` on each of `workers`."""
    rng = np.random.default_rng(0)
    records = [(rng.normal(size=INPUTS).astype(np.float32), 0)
               for _ in range(workers * per_worker)]
    return sc.parallelize(records, workers)
