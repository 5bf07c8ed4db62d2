"""The worker's end of a link (the protocol: link_protocol.py), driven top-down
by the task that owns it (worker_task.py):

    with WorkerLink.open(ticket, part) as link:
        link.ready()
        for round_no, tau, weights in link.rounds(buffer_for):
            ...train, asking link.stopped() between steps when rounds may close early
            link.send(stats, trained)
"""
from __future__ import annotations

import json
from typing import Callable, Iterator, Optional

import numpy as np

from ..errors import TransportError
from .link_protocol import (DROPPED, END, ERROR, MAX_PEERS_BYTES, NEEDS_DATA, PEERS, READY,
                            RESULT, ROUND, ROUND_HEADER, STOP, RoundStats, error_body, frame)
from .sockets import Deadline, byte_view, readable, recv_exactly, recv_struct
from .transport import TRANSFER_S, Ticket, connect


class WorkerLink:
    """One task's connection to the driver, for its stage."""

    def __init__(self, conn, ticket: Ticket):
        self.conn, self.ticket = conn, ticket
        self.round_no: Optional[int] = None  # the round being trained
        self._stopped = False
        self._owed: Optional[np.ndarray] = None  # a ring's chunk, due after the next header

    @classmethod
    def open(cls, ticket: Ticket, part: int) -> "WorkerLink":
        """Connect and be taken as the partition's link (TransportError: no driver)."""
        return cls(connect(ticket, part), ticket)

    def __enter__(self) -> "WorkerLink":
        return self

    def __exit__(self, *exc) -> None:
        self.conn.close()

    def ready(self) -> None:
        self._send(frame(READY))

    def ready_in_ring(self, address: tuple) -> None:
        """Ready, and reachable by the ring's other workers at address (host, port)."""
        self._send(frame(READY, json.dumps({"ring": list(address)}).encode()))

    def peers(self) -> Optional[list]:
        """The ring's addresses in rank order, once every worker is ready (None: the
        driver ended the stage instead)."""
        kind, _, _, nbytes = recv_struct(self.conn, ROUND_HEADER,
                                         Deadline(self.ticket.deadline_s))
        if kind == END:
            return None
        if kind != PEERS or nbytes > MAX_PEERS_BYTES:
            raise TransportError(f"the driver sent a header of kind {kind} where the ring's "
                                 "addresses belong")
        body = bytearray(nbytes)
        recv_exactly(self.conn, memoryview(body), Deadline(TRANSFER_S))
        return json.loads(body)["peers"]

    def needs_data(self) -> None:
        self._send(frame(NEEDS_DATA))

    def error(self, error: BaseException) -> None:
        self._send(frame(ERROR, error_body(error)))

    def rounds(self, buffer_for: Callable[[int], np.ndarray]) -> Iterator[tuple]:
        """(round, tau, weights) for each round the driver sends, until it ends the
        stage; buffer_for(nbytes) gives the array the weights are received into
        (weights None: the driver sent none, as in a ring's later rounds)."""
        while True:
            # Between rounds the driver validates and checkpoints: the round's deadline.
            kind, round_no, tau, nbytes = recv_struct(self.conn, ROUND_HEADER,
                                                      Deadline(self.ticket.deadline_s))
            if kind == STOP:  # for a round this worker has answered already
                continue
            if kind == END:
                self._pay_last()
                return
            if kind != ROUND:
                raise TransportError(f"the driver sent a round header of kind {kind}")
            weights = None  # none sent: the ring's workers go on from their own mean
            if nbytes:
                weights = buffer_for(nbytes)
                self.conn.settimeout(TRANSFER_S)
                recv_exactly(self.conn, byte_view(weights))
            self.round_no, self._stopped = round_no, False
            yield round_no, tau, weights

    def stopped(self) -> bool:
        """Between solver steps: has the driver closed this round without us
        (min_workers)? Nothing else comes mid-round, so anything readable is STOP."""
        if not self._stopped and readable(self.conn, 0.0):
            kind, round_no, _, _ = recv_struct(self.conn, ROUND_HEADER, Deadline(TRANSFER_S))
            if kind != STOP or round_no != self.round_no:
                raise TransportError(f"the driver sent a header of kind {kind} for round "
                                     f"{round_no} in the middle of round {self.round_no}")
            self._stopped = True
        return self._stopped

    def send(self, stats: RoundStats, trained: Optional[np.ndarray]) -> None:
        """The round's result: its stats and weights, or (trained None) DROPPED."""
        nbytes = 0 if trained is None else trained.nbytes
        self._send(frame(RESULT if trained is not None else DROPPED, stats.to_json(), nbytes))
        if nbytes:
            self.conn.sendall(byte_view(trained))

    def owe(self, stats: RoundStats, chunk: np.ndarray) -> None:
        """exchange='ring': the round's stats now, and its chunk of the sum after the
        driver's next header (pay()), so the chunk travels while the next round trains."""
        self._send(frame(RESULT, stats.to_json(), chunk.nbytes))
        self._owed = chunk

    def owes(self) -> bool:
        return self._owed is not None

    def pay(self) -> None:
        """The chunk owe() held back (nothing when none is owed)."""
        if self._owed is not None:
            owed, self._owed = self._owed, None
            self.conn.settimeout(TRANSFER_S)
            self.conn.sendall(byte_view(owed))

    def _pay_last(self) -> None:
        """A ring's last chunk follows the END; the task then ends only once the driver
        hangs up: a task that ended with the chunk still in the network would end the
        stage's Spark job, and the driver would close the link under it."""
        if self._owed is None:
            return
        self.pay()
        try:
            self.conn.settimeout(TRANSFER_S)
            self.conn.recv(1)  # b"" when the driver closes; nothing else comes after END
        except OSError:
            pass

    def _send(self, data: bytes) -> None:
        self.conn.settimeout(TRANSFER_S)
        self.conn.sendall(data)
