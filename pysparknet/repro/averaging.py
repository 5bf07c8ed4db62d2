"""SparkNet's rounds without Spark: K Nets in this process, averaged every tau steps.

The statistics of model averaging alone, exactly as the trainer computes them:
the same contiguous slices per worker (spark/array_source.slice_bounds), the same
seeds (seed + k; the driver's net, seed, gives the starting weights), the same
outer step and solver-history options. The K nets run one after another, so
the clock here measures nothing about a cluster: time is modeled from measured
costs (repro/costs.py, repro/speedup_model.py).
"""
from __future__ import annotations

import math
import time
from typing import Optional

import numpy as np

from ..net import Net
from ..outer import OuterOptimizer
from ..spark.array_source import slice_bounds
from ..weights import WeightCollection


class DivergedError(RuntimeError):
    """The averaged net's test loss is not finite."""


class AveragedWorkers:
    """K Nets on K slices of (x, y); run_round() trains each tau steps and averages."""

    def __init__(self, net_param, solver_param, train, workers: int, validation=None,
                 seed: int = 1, outer: Optional[OuterOptimizer] = None,
                 solver_state: str = "local"):
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
        x, y = train
        self.outer = outer or OuterOptimizer()
        self.solver_state = solver_state
        self.driver = Net(net_param, solver_param, seed=seed)  # weights and tests
        if validation is not None:
            self.driver.set_validation_data(validation)
        self.nets = []
        for k, (start, stop) in enumerate(slice_bounds(len(x), workers)):
            net = Net(net_param, solver_param, seed=seed + k)
            net.set_training_data((x[start:stop], y[start:stop]))
            self.nets.append(net)
        self.weights = self.driver.get_weights()
        self.rounds = self.iterations = 0
        self.compute_s = 0.0  # the K nets' training, one after another

    def run_round(self, tau: int) -> None:
        sent = WeightCollection(self.weights.layout, self.outer.to_workers(self.weights.flat))
        trained, histories = [], []
        for net in self.nets:
            net.set_weights(sent)
            if self.solver_state == "reset":
                net.set_history(np.zeros(net.history_size(), np.float32))
            tic = time.perf_counter()
            net.train(tau)
            self.compute_s += time.perf_counter() - tic
            trained.append(net.get_weights())
            histories.append(net.get_history())
        if self.solver_state == "average":  # as the trainer does: summed in order, divided
            history = np.sum(histories, axis=0, dtype=np.float32) / np.float32(len(self.nets))
            for net in self.nets:
                net.set_history(history)
        mean = WeightCollection.mean(trained)
        self.weights = WeightCollection(self.weights.layout,
                                        self.outer.step(self.weights.flat, sent.flat, mean.flat))
        self.rounds += 1
        self.iterations += tau

    def test(self) -> dict:
        """The averaged weights' scores on the validation data (DivergedError on a NaN
        loss: NaN scores make Caffe's Accuracy layer report 1.0)."""
        self.driver.set_weights(self.weights)
        scores = self.driver.test()
        if not math.isfinite(scores["loss"]):
            raise DivergedError(f"test loss {scores['loss']} after round {self.rounds}")
        return scores

    def close(self) -> None:
        for net in [self.driver, *self.nets]:
            net.close()
