"""Outer optimizers: the step the driver takes with a round's averaged update.

A round starts its K workers from `sent` and ends with the mean of their
weights; delta = mean - sent is the round's update. SparkNet applies it as it
is (w = mean). The alternatives treat delta as a (pseudo-)gradient step:

    plain     w = w + delta                               (SparkNet; the default)
    bmuf      v = mu v + eta delta;  w = w + v            (block momentum, Chen &
              Huo 2016; nesterov=True starts the workers from w + mu v)
    nesterov  g = -delta;  v = mu v + g;  w = w - lr (g + mu v)
              (outer Nesterov momentum as in DiLoCo, Douillard et al. 2023)

With mu = 0 and eta (lr) = 1 every kind is plain averaging, and is computed
as w = mean exactly (w + (mean - w) would round differently in float32).
Operations run in float32 on the flat weight vector, in place where they can.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

KINDS = ("plain", "bmuf", "nesterov")
DEFAULTS = {"plain": (0.0, 1.0), "bmuf": (0.875, 1.0), "nesterov": (0.9, 0.7)}  # (mu, lr)


@dataclass
class OuterOptimizer:
    kind: str = "plain"
    momentum: Optional[float] = None  # mu; None: the kind's default (fairseq's, DiLoCo's)
    lr: Optional[float] = None  # eta; None: the kind's default
    nesterov: bool = False  # bmuf only: workers start from w + mu v
    velocity: Optional[np.ndarray] = None  # the driver's state, checkpointed

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"outer optimizer must be one of {KINDS}, got {self.kind!r}")
        mu, lr = DEFAULTS[self.kind]
        self.momentum = mu if self.momentum is None else float(self.momentum)
        self.lr = lr if self.lr is None else float(self.lr)
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"outer momentum must be in [0, 1), got {self.momentum}")
        if not self.lr > 0.0:
            raise ValueError(f"outer learning rate must be > 0, got {self.lr}")
        if self.kind == "plain" and (self.momentum, self.lr) != (0.0, 1.0):
            raise ValueError("the plain outer step takes no momentum or learning rate; "
                             "use 'bmuf' or 'nesterov'")
        if self.nesterov and self.kind != "bmuf":
            raise ValueError("nesterov=True is bmuf's Nesterov variant; the 'nesterov' kind "
                             "is outer Nesterov momentum already")

    @property
    def is_plain(self) -> bool:
        return self.momentum == 0.0 and self.lr == 1.0

    def config(self) -> dict:
        return {"kind": self.kind, "momentum": self.momentum, "lr": self.lr,
                "nesterov": self.nesterov}

    def to_workers(self, weights: np.ndarray) -> np.ndarray:
        """The weights a round's workers start from."""
        if self.kind == "bmuf" and self.nesterov and self.velocity is not None:
            return weights + np.float32(self.momentum) * self.velocity
        return weights

    def step(self, weights: np.ndarray, sent: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """The driver's new weights from its current ones, what the round started
        from and the workers' mean (`mean` may be reused as the result)."""
        if self.is_plain:
            return mean
        delta = mean - sent
        if self.velocity is None:
            self.velocity = np.zeros_like(weights)
        mu, lr = np.float32(self.momentum), np.float32(self.lr)
        if self.kind == "bmuf":
            self.velocity *= mu
            self.velocity += lr * delta
            return weights + self.velocity
        gradient = np.negative(delta, out=delta)  # DiLoCo's outer gradient: sent - mean
        self.velocity *= mu
        self.velocity += gradient
        return weights - lr * (gradient + mu * self.velocity)
