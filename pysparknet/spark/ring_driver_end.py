"""The driver's side of a stage's ring rounds (exchange='ring'; the protocol:
link_protocol.py).

The workers sum among themselves (ring_reduce.py). Each then reports its
round's stats and owes the driver one chunk of the sum, which it sends only
after the driver's next header: the next round's, sent as soon as the
worker's stats are in when the stage runs another round, or END after its
last. So the chunks cross the workers' uplinks while the next round trains,
not during the all-gather, and the driver's copy of the mean stays off the
workers' critical path. A round's mean is whole before round() returns it, so
validation, checkpoints and a rerun see only whole means; a link lost while
the chunks come fails the round at hand, which reruns from the mean before it.
"""
from __future__ import annotations

import time
from concurrent.futures import FIRST_EXCEPTION, wait
from typing import Callable, Optional

import numpy as np

from ..errors import RoundTimeoutError
from .link_protocol import END, RESULT, ROUND, LinkBroken, RoundStats, round_header
from .ring_reduce import chunk_bounds
from .sockets import Deadline
from .transport import TRANSFER_S
from .wire_types import WireCast


class RingRounds:
    """One stage's ring rounds, over its DriverLinks."""

    def __init__(self, links):
        self.links = links
        self.started = False  # the stage's first round, which carries the weights, went out
        self.ahead: Optional[int] = None  # a round whose header went out before round()
        self.ended = False  # END sent: the workers' tasks end once their chunks are in
        self.deadline_s = TRANSFER_S  # the last round's, for draining a round sent ahead
        self.began = 0.0  # when the round sent ahead began: its first header (perf_counter)

    def round(self, round_no: int, tau: int, start: np.ndarray, deadline: Deadline,
              wire, next_tau: Optional[int]):
        """Round round_no from `start` (sent only in the stage's first round): (the sum
        of the workers' chunks, the number that divides it for the mean, their
        RoundStats). next_tau: the stage's next round, whose header goes out as each
        worker's stats arrive (None: END, the stage's last round)."""
        self.deadline_s = deadline.seconds
        first, self.started = not self.started, True
        header = None if self.ahead == round_no else round_header(
            ROUND, round_no, tau, start.nbytes if first else 0)
        compressed, cast = wire != np.float32, WireCast(wire, 0)
        total = np.empty(start.size + (0 if compressed else 1), np.float32)
        bounds = chunk_bounds(total.size, self.links.partitions)
        after = round_header(ROUND, round_no + 1, next_tau) if next_tau else round_header(END)
        began = self.began if header is None else time.perf_counter()

        def exchange(part: int) -> RoundStats:
            if header is not None:  # later rounds carry no weights: the workers hold the mean
                self.links.send(part, header, start if first else None)
            stats, nbytes = self._stats(part, deadline)
            stats.began, stats.reported = began, time.perf_counter()  # the round's record
            self.links.send(part, after)  # the worker's chunk follows it
            chunk = total[slice(*bounds[stats.chunk])]
            into = np.empty(chunk.size, wire) if compressed else chunk
            self.links.weights_into(part, self.links.conn(part), deadline, into, nbytes)
            if compressed:  # float32 landed in place
                cast.from_wire(into, chunk)
            return stats
        self.ahead, self.ended = (round_no + 1, False) if next_tau else (None, True)
        stats = self._all_of(exchange)
        # the next round's header went out to each worker as its stats came in
        self.began = min(s.reported for s in stats) if next_tau else 0.0
        if sorted(s.chunk for s in stats) != list(range(self.links.partitions)):
            raise LinkBroken(-1, f"the ring's chunks were {[s.chunk for s in stats]}")
        if not compressed:
            return total[:start.size], float(total[start.size]), stats
        np.divide(total, np.float32(self.links.partitions), out=total)  # as the workers do
        return np.add(start, total, out=total), 1.0, stats

    def _stats(self, part: int, deadline: Deadline) -> tuple:
        _, stats, nbytes = self.links.read_result(part, deadline, (RESULT,))
        if not 0 <= stats.chunk < self.links.partitions:
            raise self.links.broken(part, f"sent chunk {stats.chunk} of "
                                    f"{self.links.partitions}")
        return stats, nbytes

    def finish(self) -> None:
        """Before the links close: a round whose header went out ahead but which the
        fit did not ask for (it stopped, or diverged) is let finish and dropped, and
        the workers told the stage is over."""
        if self.ahead is None:
            return
        deadline, self.ahead = Deadline(self.deadline_s), None

        def drain(part: int) -> None:
            _, nbytes = self._stats(part, deadline)
            self.links.send(part, round_header(END))
            self.links.weights_into(part, self.links.conn(part), deadline,
                                    np.empty(nbytes, np.uint8), nbytes)
        self._all_of(drain)
        self.ended = True

    def _all_of(self, job: Callable) -> list:
        """job(part) for every partition at once (one thread per link, which reads and
        writes it); their results; the first failure raised."""
        links = self.links
        jobs = [links.pool.submit(job, part) for part in range(links.partitions)]
        done, _ = wait(jobs, return_when=FIRST_EXCEPTION)
        for finished in done:  # the first failure is the cause, whichever link it was
            error = finished.exception()
            if isinstance(error, RoundTimeoutError):
                raise self._stalled(jobs, error) from None
            if error is not None:
                raise error
        return [finished.result() for finished in jobs]

    def _stalled(self, jobs: list, error: RoundTimeoutError) -> RoundTimeoutError:
        """In a ring one lost or cut host stalls its neighbours too: name every
        partition the round still waited for, with its host."""
        waiting = [f"{part} ({self.links.hosts.get(part, '?')})" for part, job in
                   enumerate(jobs) if not job.done() or job.exception() is not None]
        return RoundTimeoutError(f"{error}; the ring still waited for partition(s) "
                                 f"{', '.join(waiting)}: a host lost or cut off among them "
                                 "stalls the others")
