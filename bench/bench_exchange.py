"""One round's sync through the trainer, for each exchange: the driver's star and the
workers' ring, TLS or clear, float32 or a 16-bit wire.

Runs SparkNetTrainer on bench/sized_net.py's net (N learnable floats, a training
step of a few passes over them) for each variant, interleaved (A B C A B C ...),
and reports per variant the sync of every round but the first (which builds the
solvers and sends the first weights) and the last (which ends the stage): sync
= round time - the slowest worker's training time, as the trainer records it.
Prints one JSON document (every round of every repeat) on stdout's last line.

    python bench/bench_exchange.py --workers 4 --floats 60965224 \\
        --variants driver-tls,driver-plain,ring-tls,ring-plain,ring-tls-bfloat16 \\
        [--master spark://198.18.0.2:7077 --conf-json FILE] [--rounds 4] [--repeats 2] \\
        [--tau 1]

bench/bench_exchange_lab.py runs it on the network lab (scripts/netlab.py), where
each host's link is shaped, against the bounds K·M/R (star) and 2(K-1)/K·M/R (ring).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sized_net import SOLVER, sized_net, sized_records  # noqa: E402

from pysparknet.spark import Exchange, SparkNetTrainer, local_spark  # noqa: E402


def exchange_of(variant: str) -> Exchange:
    """'ring-tls-bfloat16' -> Exchange(kind='ring', tls=True, dtype='bfloat16')."""
    kind, link, *dtype = variant.split("-")
    if kind not in ("driver", "ring") or link not in ("tls", "plain"):
        raise ValueError(f"a variant is driver|ring-tls|plain[-bfloat16|-float16], "
                         f"got {variant!r}")
    return Exchange(kind=kind, tls=link == "tls", dtype=dtype[0] if dtype else "float32")


def syncs(spark, floats: int, workers: int, rounds: int, variant: str, tau: int) -> list:
    trainer = SparkNetTrainer(spark, sized_net(floats), SOLVER, num_workers=workers, tau=tau,
                              seed=1, exchange=exchange_of(variant))
    result = trainer.fit(sized_records(spark.sparkContext, workers), rounds=rounds,
                         progress=False)
    trainer.driver_net.close()
    return [{"sync_s": r["sync_s"], "round_s": r["round_s"], "compute_s": r["compute_s"]}
            for r in result.history[1:-1]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="K")
    parser.add_argument("--floats", type=int, default=60_965_224, help="M, a multiple of 8")
    parser.add_argument("--variants", default="driver-tls,ring-tls")
    parser.add_argument("--rounds", type=int, default=4, help="per fit (first, last dropped)")
    parser.add_argument("--repeats", type=int, default=2, help="fits per variant, interleaved")
    parser.add_argument("--tau", type=int, default=1,
                        help="steps a round: the compute the ring's chunks to the driver "
                             "travel behind")
    parser.add_argument("--executor-memory", type=int, default=1024, help="MB (JVM)")
    parser.add_argument("--master", help="default: local-cluster[K,1,MB]")
    parser.add_argument("--conf-json", help="a JSON file of Spark settings for the session")
    args = parser.parse_args()
    variants = args.variants.split(",")
    for variant in variants:
        exchange_of(variant)  # a bad name fails before any work
    conf = json.loads(Path(args.conf_json).read_text()) if args.conf_json else {}
    master = args.master or f"local-cluster[{args.workers},1,{args.executor_memory}]"
    spark = local_spark(master, conf={"spark.executor.memory": f"{args.executor_memory}m",
                                      "spark.driver.memory": "2g",
                                      "spark.cores.max": str(args.workers),
                                      "spark.executor.cores": "1", **conf})
    runs: dict = {variant: [] for variant in variants}
    try:
        for repeat in range(args.repeats):
            for variant in variants:
                rounds = syncs(spark, args.floats, args.workers, args.rounds, variant,
                               args.tau)
                runs[variant].append(rounds)
                median = statistics.median(r["sync_s"] for r in rounds)
                print(f"repeat {repeat + 1} {variant}: sync {median:.3f} s", flush=True)
    finally:
        spark.stop()
    print(json.dumps({"workers": args.workers, "floats": args.floats, "master": master,
                      "tau": args.tau, "runs": runs}))


if __name__ == "__main__":
    main()
