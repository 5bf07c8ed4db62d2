"""The sync a round costs under each exchange, from the bytes through the busiest link.

- driver (SparkNet's star): the driver sends the weights to K workers at the
  round's start and takes K trained copies back at its end: 2·K·M bytes through
  its one link, one direction after the other.
- ring: every worker sends (and receives) 2(K-1)/K·M in a reduce-scatter and
  an all-gather, whatever K; each also sends the driver M/K during the
  all-gather, which the driver's link takes in as the ring runs.
- ring with a 16-bit wire: the same over half the bytes.

With tau steps of C each on every worker, a round is tau·C + S; K workers then
process K·tau·C / (tau·C + S) times one device's images a second (the
throughput speedup; the tau/K study's sample efficiency, `sparknet repro
speedup-model`, multiplies it).
"""
from __future__ import annotations

from dataclasses import dataclass

# AlexNet's Net.train step on one NVIDIA H100, BENCHMARKS.md ("On one GPU",
# bench/bench_zoo_forward_backward.py): a recorded figure, not measured here.
RECORDED_GPU_ALEXNET_MS = 24.0
ALEXNET_FLOATS = 60_965_224
EXCHANGES = ("driver", "ring", "ring-bfloat16")


@dataclass(frozen=True)
class Link:
    gbit_per_s: float  # each host's, each way

    @property
    def bytes_per_s(self) -> float:
        return self.gbit_per_s * 1e9 / 8


def sync_s(exchange: str, workers: int, floats: int, link: Link) -> float:
    """Seconds a round's exchange takes on links of `link`'s rate (bandwidth-bound)."""
    if exchange not in EXCHANGES:
        raise ValueError(f"exchange is one of {EXCHANGES}, got {exchange!r}")
    model_bytes = floats * (2 if exchange.endswith("bfloat16") else 4)
    if exchange == "driver":
        return 2 * workers * model_bytes / link.bytes_per_s
    return 2 * (workers - 1) / workers * model_bytes / link.bytes_per_s


def throughput_speedup(workers: int, tau: int, step_s: float, sync: float) -> float:
    return workers * tau * step_s / (tau * step_s + sync)


def table_markdown(ks: list, tau: int, step_ms: float, floats: int, link: Link) -> str:
    lines = ["| K | " + " | ".join(f"{e}: sync s, speedup" for e in EXCHANGES) + " |",
             "|---:|" + "---:|" * len(EXCHANGES)]
    for k in ks:
        cells = []
        for exchange in EXCHANGES:
            sync = sync_s(exchange, k, floats, link)
            cells.append(f"{sync:.2f}, {throughput_speedup(k, tau, step_ms / 1e3, sync):.2f}x")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
