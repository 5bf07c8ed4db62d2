"""Workers in threads driving WorkerLinks as worker_task.py does, for the link tests."""
from __future__ import annotations

import secrets
import threading
import time

import numpy as np

from pysparknet.errors import DataError
from pysparknet.spark.link_driver_end import DriverLinks
from pysparknet.spark.link_protocol import RoundStats
from pysparknet.spark.link_worker_end import WorkerLink


class FakeSolver:
    """Trains by adding `step` per iteration; `pace` seconds an iteration."""

    def __init__(self, step: float, pace: float = 0.0, fail_in_round=None, iterations=None):
        self.step, self.pace, self.fail_in_round = step, pace, fail_in_round
        self.iterations = iterations  # stop after this many (a timed round), if given

    def train(self, part, round_no, tau, flat, stopped):
        if round_no == self.fail_in_round:
            raise DataError("record 7 is bad")
        done = 0
        while done < min(tau, self.iterations or tau):
            time.sleep(self.pace)
            done += 1
            if stopped():
                return None, RoundStats(part, {"loss": 1.0}, iterations=done, dropped=True)
        flat += np.float32(self.step * done)
        return flat, RoundStats(part, {"loss": 1.0}, iterations=done)


def work(ticket, part, solver, ends):
    """A worker's task as worker_task.py drives its link."""
    rounds = 0
    with WorkerLink.open(ticket, part) as link:
        link.ready()
        try:
            for round_no, tau, weights in link.rounds(lambda n: np.empty(n // 4, np.float32)):
                try:
                    trained, stats = solver.train(part, round_no, tau, weights, link.stopped)
                except DataError as error:
                    link.error(error)
                    break
                link.send(stats, trained)
                rounds += 1
        except OSError:
            pass
    ends[part] = rounds


def stage(listener, solvers, deadline_s=30.0):
    """A stage's links with one worker thread per solver: (links, threads, ends)."""
    links = DriverLinks(secrets.randbits(63), len(solvers))
    listener.expect(links.attach)
    ticket = listener.ticket(links.serial, deadline_s)
    ends: dict = {}
    threads = [threading.Thread(target=work, args=(ticket, p, s, ends), daemon=True)
               for p, s in enumerate(solvers)]
    for thread in threads:
        thread.start()
    return links, threads, ends
