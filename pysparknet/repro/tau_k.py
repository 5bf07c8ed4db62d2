"""The tau/K study: test accuracy for K workers and tau steps a round, at one image budget.

Every cell of K x tau sees the same number of training images in all (K
workers x batch x iterations per worker), LeNet on Fashion-MNIST with Caffe's
own solver. The grid runs in-process (repro/averaging.py: the trainer's
statistics without Spark); its wall-clock is modeled from C and S measured in
the same run (repro/costs.py): rounds x (tau x C_K + S_K). A subset runs on
real Spark (repro/tau_k_spark.py) for measured wall-clock and to show both
agree. Averaging one net is the identity, so K=1 is one run (one Net, no
sync) that serves every tau.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

from ..zoo import lenet, lenet_solver
from .averaging import AveragedWorkers, DivergedError


@dataclass
class Settings:
    workers: tuple = (1, 2, 4, 8)
    taus: tuple = (1, 5, 20, 50, 100)
    budget_images: int = 51_200  # training images seen by all workers together
    batch: int = 64  # per worker (Caffe's LeNet)
    tests: int = 6  # test points per cell, evenly over its rounds
    seed: int = 1

    def rounds(self, workers: int, tau: int) -> int:
        """Rounds that see the budget (rounded up to whole rounds)."""
        return max(1, math.ceil(self.budget_images / (workers * self.batch * tau)))

    def test_every(self, workers: int, tau: int) -> int:
        """Rounds between tests: every cell is tested at about the same images seen."""
        return max(1, self.rounds(workers, tau) // self.tests)

    def check(self) -> None:
        for name in ("workers", "taus"):
            values = getattr(self, name)
            if not values or any(not isinstance(v, int) or v < 1 for v in values):
                raise ValueError(f"{name} must be whole numbers >= 1, got {values!r}")
        if self.budget_images < max(self.workers) * self.batch * max(self.taus):
            raise ValueError(f"budget_images={self.budget_images} is less than one round of "
                             f"K={max(self.workers)} x batch {self.batch} x tau="
                             f"{max(self.taus)}: raise it")


@dataclass
class Cell:
    workers: int
    tau: int
    points: list = field(default_factory=list)  # round, iterations, images, accuracy, loss
    compute_s: float = 0.0  # in-process training, the K nets one after another
    diverged: bool = False

    def final_accuracy(self):
        return None if self.diverged or not self.points else self.points[-1]["accuracy"]

    def first_reaching(self, target: float):
        """The first test point at or above target (None: not reached)."""
        return next((p for p in self.points if p["accuracy"] >= target), None)


def run_cell(settings: Settings, train, test, workers: int, tau: int, progress=print) -> Cell:
    """One cell of the grid: its rounds, tested every settings.test_every rounds."""
    rounds, every = settings.rounds(workers, tau), settings.test_every(workers, tau)
    cell = Cell(workers, tau)
    run = AveragedWorkers(lenet(batch_size=settings.batch), lenet_solver(), train, workers,
                          validation=test, seed=settings.seed)
    tic = time.perf_counter()
    try:
        for r in range(1, rounds + 1):
            run.run_round(tau)
            if r % every == 0 or r == rounds:
                scores = run.test()
                cell.points.append({"round": r, "iterations": run.iterations,
                                    "images": r * tau * workers * settings.batch,
                                    "accuracy": scores["accuracy"], "loss": scores["loss"]})
    except DivergedError:
        cell.diverged = True
    finally:
        cell.compute_s = run.compute_s
        run.close()
    reached = "diverged" if cell.diverged else f"accuracy {cell.final_accuracy():.4f}"
    progress(f"  K={workers} tau={tau}: {rounds} rounds, {reached} "
             f"({time.perf_counter() - tic:.0f} s)")
    return cell


def run_grid(settings: Settings, train, test, progress=print) -> list[Cell]:
    """Every (K, tau) cell; K=1 once, copied to every tau (one net averaged is itself)."""
    settings.check()
    cells = []
    if 1 in settings.workers:
        one = run_cell(settings, train, test, 1, min(settings.taus), progress)
        cells += [Cell(1, tau, one.points, one.compute_s, one.diverged) for tau in settings.taus]
    for workers in (k for k in settings.workers if k != 1):
        cells += [run_cell(settings, train, test, workers, tau, progress)
                  for tau in settings.taus]
    return cells


def cells_as_json(cells: list[Cell]) -> list[dict]:
    return [asdict(cell) for cell in cells]


def cells_from_json(rows: list[dict]) -> list[Cell]:
    return [Cell(**row) for row in rows]
