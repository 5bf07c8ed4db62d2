"""tau, the local iterations of a round: a number, or a schedule of the round.

A schedule is any callable round -> iterations (round counted from 0), e.g.
post-local SGD (Lin et al. 2020): frequent syncs first, longer local runs
after, `lambda r: 1 if r < 20 else 50`.
"""
from __future__ import annotations

from typing import Callable, Union

TauSpec = Union[int, Callable[[int], int]]


class TauSchedule:
    def __init__(self, tau: TauSpec):
        if not callable(tau) and not (isinstance(tau, int) and tau > 0):
            raise ValueError(f"tau must be a positive number of iterations or a function of "
                             f"the round, got {tau!r}")
        self.spec = tau
        self._taus: list[int] = []  # each round's, as asked for
        self._starts: list[int] = [0]  # iterations done by the start of each round

    def __call__(self, r: int) -> int:
        while len(self._taus) <= r:
            self._taus.append(self._evaluate(len(self._taus)))
            self._starts.append(self._starts[-1] + self._taus[-1])
        return self._taus[r]

    def _evaluate(self, r: int) -> int:
        if not callable(self.spec):
            return self.spec
        tau = self.spec(r)
        if not isinstance(tau, int) or isinstance(tau, bool) or tau <= 0:
            raise ValueError(f"the tau schedule gave {tau!r} for round {r + 1}: it must give "
                             "a positive number of iterations")
        return tau

    def iterations_before(self, r: int) -> int:
        """Solver iterations done by the start of round r (the LR schedule's clock)."""
        if r > 0:
            self(r - 1)
        return self._starts[r]

    def describe(self, rounds: int) -> dict:
        """What a checkpoint records, to check a resumed trainer against."""
        if not callable(self.spec):
            return {"tau": self.spec}
        return {"tau": "schedule", "taus": [self(i) for i in range(rounds)]}
