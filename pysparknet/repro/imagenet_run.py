"""`sparknet repro alexnet|googlenet`: one SparkNet ImageNet run, its metrics and plot."""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from ..data import open_data
from ..fit_options import add_fit_options
from .imagenet import Scores, check_same_classes, validation_arrays, with_top5

# SparkNet's ImageNet apps: each worker runs the train_val's own minibatch.
PAPER = {"alexnet": {"batch": 256}, "googlenet": {"batch": 32}}
EXECUTOR_MB = 6144


def spark_conf(args) -> dict:
    """Spark settings: --conf pairs, and one GPU per executor and per task for gpu."""
    from ..spark.session import conf_pairs

    conf = {"spark.executor.memory": f"{args.executor_mb}m",
            "spark.driver.maxResultSize": "4g"}
    if args.device == "gpu":
        conf.update({"spark.executor.resource.gpu.amount": "1",
                     "spark.task.resource.gpu.amount": "1"})
        if args.gpu_discovery_script:  # a standalone / local-cluster worker's GPUs
            conf.update({"spark.worker.resource.gpu.amount": str(args.gpus_per_worker),
                         "spark.worker.resource.gpu.discoveryScript":
                             str(args.gpu_discovery_script)})
    try:
        conf.update(conf_pairs(args.conf))
    except ValueError as error:
        raise SystemExit(f"sparknet repro {args.net}: {error}") from None
    return conf


def load_model(args):
    from .. import zoo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the per-channel mean fallback, said in --help
        model = zoo.load(args.net, batch_size=args.batch, test_batch_size=args.test_batch,
                         mean_file=args.mean_file)
    if args.base_lr is not None:
        model.solver.base_lr = args.base_lr
    net, scores = with_top5(model.net)
    return net, model.solver, scores


def reporter(scores: Scores, started: float):
    """The fit's `until`: a line per validated round (top-1, top-5); never stops it."""
    def report(record: dict) -> bool:
        if f"val_{scores.top1}" in record:
            print(f"round {record['round']}, {record['iterations']} iterations per worker, "
                  f"{time.perf_counter() - started:.0f} s: top-1 "
                  f"{100 * record[f'val_{scores.top1}']:.2f}%, top-5 "
                  f"{100 * record[f'val_{scores.top5}']:.2f}%", flush=True)
        return False
    return report


def run(args) -> int:
    from ..spark import SparkNetTrainer, local_spark

    check_same_classes(args.train, args.val)
    net, solver, scores = load_model(args)
    # the local workers' memory leaves room for the executor's overhead
    master = args.master or f"local-cluster[{args.workers},1,{args.executor_mb + 1024}]"
    spark = local_spark(master, app_name=f"sparknet repro {args.net}", conf=spark_conf(args))
    started = time.perf_counter()
    try:
        size = tuple(args.resize)
        train = open_data(spark, str(args.train), "train", num_partitions=args.workers,
                          stream=args.stream, size=size)
        val = validation_arrays(spark, args.val, args.val_limit, size)
        trainer = SparkNetTrainer(spark, net, solver, num_workers=args.workers, tau=args.tau,
                                  device=args.device, seed=args.seed,
                                  slots_timeout=args.slots_timeout)
        result = trainer.fit(train, val, rounds=args.rounds, checkpoint_dir=args.checkpoint_dir,
                             resume=args.resume, validate_every=args.validate_every,
                             checkpoint_every=args.checkpoint_every, metrics_path=args.metrics,
                             progress=not args.quiet, until=reporter(scores, started),
                             mlflow=args.mlflow)
        trainer.driver_net.close()
    finally:
        spark.stop()
    history = result.history
    if args.plot:
        from .figures import top_k_curves
        print(f"wrote {top_k_curves(history, scores, args.plot, args.net)}")
    last = next((r for r in reversed(history) if f"val_{scores.top1}" in r), None)
    print(f"SparkNet {args.net}: K={args.workers} x tau={args.tau}, batch {args.batch} per "
          f"worker, {history[-1]['round']} rounds in {history[-1]['elapsed_s']:.1f} s"
          + (f"; top-1 {100 * last[f'val_{scores.top1}']:.2f}%, top-5 "
             f"{100 * last[f'val_{scores.top5}']:.2f}% on {len(val[1])} val images"
             if last else ""))
    return 0


def add_parser(sub, net: str) -> None:
    p = sub.add_parser(net, help=f"train Caffe's {net} on ImageNet with SparkNet (the "
                                 "paper's settings by default)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--train", type=Path, required=True,
                   help="ImageNet train folder (train/<wnid>/*.JPEG) or Caffe LMDB")
    p.add_argument("--val", type=Path, required=True,
                   help="val folder (the same <wnid> folders) or Caffe LMDB")
    p.add_argument("--workers", type=int, default=5, help="K (the paper ran 3 and 5)")
    p.add_argument("--tau", type=int, default=50, help="iterations per worker per round")
    p.add_argument("--rounds", type=int, default=1000)
    p.add_argument("--batch", type=int, default=PAPER[net]["batch"], help="per worker")
    p.add_argument("--test-batch", type=int, default=50)
    p.add_argument("--base-lr", type=float, help="unset: Caffe's solver's")
    p.add_argument("--resize", type=int, nargs=2, default=[256, 256], metavar=("H", "W"),
                   help="image folders: resize to (the net crops from it)")
    p.add_argument("--mean-file", help="ImageNet mean .binaryproto; unset: Caffe's "
                                       "per-channel mean (104, 117, 123)")
    p.add_argument("--val-limit", type=int, default=5000,
                   help="val images held on the driver for validation")
    p.add_argument("--stream", action="store_true",
                   help="workers read their part of --train on every pass (no caching)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="gpu: one GPU per executor and per task, from Spark's scheduling")
    p.add_argument("--gpu-discovery-script", type=Path,
                   help="standalone/local-cluster workers: Spark's GPU discovery script")
    p.add_argument("--gpus-per-worker", type=int, default=1)
    p.add_argument("--master", help="Spark master (default local-cluster[K,1,MB])")
    p.add_argument("--executor-mb", type=int, default=EXECUTOR_MB)
    p.add_argument("--conf", action="append", metavar="KEY=VALUE", help="a Spark setting")
    p.add_argument("--slots-timeout", type=float, default=300.0)
    add_fit_options(p)
    p.add_argument("--plot", type=Path, help="top-1/top-5 vs time and iterations PNG")
    p.set_defaults(run=run, net=net)
