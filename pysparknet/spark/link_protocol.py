"""The link protocol: one connection between the driver and each task of a stage.

A stage (stage.py) is one Spark stage of K tasks, one per partition: a barrier
stage running many rounds (rounds='segments'), or an ordinary job running one
(rounds='jobs'). Each task opens one connection to the driver's listener,
which authenticates it (transport.py: TLS with the run's certificate, the run
secret in the hello) and hands it to the stage as the partition's link.
Over it, every integer big-endian:

  worker -> driver  READY (a solver in hand), NEEDS_DATA (none, and the task
                    carried no data), or ERROR
  then, per round:
  driver -> worker  ROUND header: ROUND, round, tau, byte count; then the weights
  worker -> driver  RESULT with the round's stats (JSON), then its weights, or ERROR
  and to end:
  driver -> worker  ROUND header: END (the stage is over; the task ends)
With exchange='ring' (ring_links.py, ring_reduce.py) the workers sum among
themselves; READY's JSON names the worker's ring address, and the driver
answers every READY with the ring's addresses in rank order:
  driver -> worker  ROUND header: PEERS, 0, 0, byte count; then {"peers": [...]}
Only a stage's first ROUND carries weights (byte count 0 later: each worker
goes on from the mean it holds), and each RESULT's weight bytes are one chunk
of the sum (RoundStats.chunk), the K chunks making the whole. They follow the
driver's next header, not the RESULT: the next ROUND, which the driver sends
as soon as the stats are in when the stage runs another round, or END; so
the chunks travel while the next round trains (ring_driver_end.py).
With min_workers < K the driver may close a round before a worker is done:
  driver -> worker  ROUND header: STOP, the round     (stop at the next step)
  worker -> driver  DROPPED with its stats, no weights   (or RESULT, if it was
                    done first; a STOP that arrives after it is skipped)

Frames worker -> driver: kind (u8), JSON length (u32), weight bytes (u64), the
JSON, the weights. A worker's exceptions travel as ERROR frames (pysparknet's
nearest error kind and the message), so the task itself ends normally and its
Python worker, with every solver in it, lives on; a link that breaks means a
lost process (or network), which the driver answers by rerunning the stage.
"""
from __future__ import annotations

import dataclasses
import json
import struct
from dataclasses import dataclass

from .. import errors
from ..errors import TransportError
from .failures import own_error, own_error_name

ROUND_HEADER = struct.Struct("!BQIQ")  # kind, round, tau, weight bytes
ROUND, END, STOP, PEERS = 1, 2, 3, 4  # what a ROUND header says
MAX_PEERS_BYTES = 1 << 20  # the ring's address list
FRAME_HEADER = struct.Struct("!BIQ")  # kind, JSON bytes, weight bytes
READY, NEEDS_DATA, RESULT, ERROR, DROPPED = 1, 2, 3, 4, 5


@dataclass
class RoundStats:
    """What a worker's round reports to the driver (the weights travel apart)."""

    index: int  # the partition
    outputs: dict = dataclasses.field(default_factory=dict)  # mean train outputs
    compute_s: float = 0.0
    rebuilt: bool = False  # its solver was built for this round
    skipped: int = 0  # bad records a streamed partition skipped so far
    iterations: int = 0  # solver steps done (fewer than tau: a timed or stopped round)
    dropped: bool = False  # the driver closed the round without this result
    chunk: int = -1  # exchange='ring': the chunk of the sum its weight bytes are
    began: float = 0.0  # ring rounds, the driver's clock: when the round's header went out
    reported: float = 0.0  # and when this worker's stats came in (its chunk comes later)

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self)).encode()

    @classmethod
    def from_json(cls, body: bytes) -> "RoundStats":
        return cls(**json.loads(body))


class LinkBroken(TransportError):
    """A worker's link broke off: its process, or the network between, was lost."""

    def __init__(self, part: int, message: str, host: str = ""):
        where = f"partition {part}" + (f" on {host}" if host else "")
        super().__init__(f"{where}: {message}" if part >= 0 else message)
        self.part = part  # -1: the stage as a whole (its job ended before every link)


def error_body(error: BaseException) -> bytes:
    """An exception as an ERROR frame says it: the nearest pysparknet error kind."""
    return json.dumps({"type": own_error_name(error), "message": str(error)}).encode()


def worker_error(part: int, body: bytes) -> errors.SparkNetError:
    """A worker's ERROR frame as the exception it reports (pysparknet's own kind)."""
    meta = json.loads(body or b"{}")
    name, message = meta.get("type", "Exception"), meta.get("message", "")
    where = f"on a worker (partition {part})"
    return own_error(name, f"{where}: {message}") or \
        errors.WorkerError(f"{where}: {name}: {message}")


def frame(kind: int, body: bytes = b"", nbytes: int = 0) -> bytes:
    return FRAME_HEADER.pack(kind, len(body), nbytes) + body


def round_header(kind: int, round_no: int = 0, tau: int = 0, nbytes: int = 0) -> bytes:
    return ROUND_HEADER.pack(kind, round_no, tau, nbytes)
