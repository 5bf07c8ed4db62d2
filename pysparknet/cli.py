"""The `sparknet` command."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .fit_options import add_fit_options

from .repro.commands import add_repro


def cmd_info(args) -> int:
    from .build_info import build_info
    info = build_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"caffe:      {info['caffe']} ({'CUDA' if info['cuda'] else 'CPU only'})")
    print(f"build key:  {info['key']}  (built {info['built_at']})")
    print(f"source:     {info['source_dir']}")
    print(f"library:    {info['library']}")
    for name, path in info["tools"].items():
        print(f"tool:       {name:26s} {path}")
    return 0


def cmd_models(args) -> int:
    """List the zoo nets with their learnable-parameter counts and input shapes."""
    import warnings

    from .net import Net
    from .zoo import ZOO, load

    print(f"{'name':15s} {'parameters':>12s}  {'input (C, H, W)':16s} description")
    for name, entry in ZOO.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the ImageNet mean-file fallback
            model = load(name, batch_size=1, test_batch_size=1)
        net = Net(model.net)  # a test-only net is enough to count
        params = sum(b.size for b in net.layout)
        net.close()
        print(f"{name:15s} {params:12,d}  {str(entry.record_shape):16s} {entry.description}")
    return 0


def cmd_demo(args) -> int:
    """Train Caffe's LeNet on Fashion-MNIST through Net, testing as it goes."""
    from tqdm import tqdm

    from .data import fashion_mnist
    from .net import Net
    from .zoo import lenet, lenet_solver

    train_x, train_y = fashion_mnist("train")
    test_x, test_y = fashion_mnist("test")
    solver = lenet_solver()
    net = Net(lenet(args.batch_size), solver, device=args.device, seed=args.seed)
    net.set_training_data((train_x, train_y))
    net.set_validation_data((test_x, test_y))
    metrics = None
    if args.metrics:
        Path(args.metrics).parent.mkdir(parents=True, exist_ok=True)
        metrics = open(args.metrics, "w")
    started, done = time.perf_counter(), 0
    with tqdm(total=args.iterations, unit="it", file=sys.stderr, disable=args.quiet) as bar:
        while done < args.iterations:
            steps = min(args.test_every, args.iterations - done)
            tic = time.perf_counter()
            train = net.train(steps)
            train_s = time.perf_counter() - tic
            done += steps
            test = net.test()
            record = {"iteration": done, "train_loss": train.get("loss"),
                      "test_accuracy": test.get("accuracy"), "test_loss": test.get("loss"),
                      "images_per_s": steps * net.batch_size() / train_s,
                      "elapsed_s": time.perf_counter() - started}
            if metrics:
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
            bar.update(steps)
            bar.set_postfix(loss=f"{record['train_loss']:.3f}",
                            acc=f"{record['test_accuracy']:.4f}",
                            img_s=f"{record['images_per_s']:.0f}")
    if metrics:
        metrics.close()
    if args.save:
        net.save(args.save)
    print(f"LeNet on Fashion-MNIST: {args.iterations} iterations (batch {args.batch_size}) in "
          f"{time.perf_counter() - started:.1f} s; test accuracy "
          f"{record['test_accuracy'] * 100:.2f}% on {len(test_x)} images")
    return 0


def _load_model(spec: str, batch_size: int, record_shape):
    """A zoo name, a 'module:attribute' NetParams, or a train_val prototxt path."""
    import importlib

    from . import zoo
    if spec in zoo.ZOO or spec.endswith(".prototxt"):
        model = zoo.load(spec, batch_size=batch_size, test_batch_size=100,
                         record_shape=record_shape)
        return model.net, model.solver
    module, _, attribute = spec.partition(":")
    if not attribute:
        raise SystemExit(f"--model {spec!r}: a zoo name ({', '.join(zoo.ZOO)}), a "
                         "train_val .prototxt, or module:attribute of a NetParams")
    net = getattr(importlib.import_module(module), attribute)
    return net, zoo.load("lenet").solver


def _load_data(spark, spec: str, split: str, args):
    """The data `--data`/`--test-data` names (pysparknet.data.open_data)."""
    from .data import UnknownSourceError, open_data

    try:
        return open_data(spark, spec, split, num_partitions=args.workers,
                         stream=args.stream and split == "train",
                         size=tuple(args.resize) if args.resize else None,
                         image_col=args.image_col, label_col=args.label_col,
                         on_bad_record=args.on_bad_record)
    except UnknownSourceError as error:
        raise SystemExit(f"--data {error}") from None


def _spark_conf(pairs: list) -> dict:
    """--conf KEY=VALUE settings (spark-submit's convention) as a dict."""
    from .spark.session import conf_pairs

    try:
        return conf_pairs(pairs)
    except ValueError as error:
        raise SystemExit(f"sparknet train: {error}") from None


def cmd_train(args) -> int:
    """SparkNet: K workers, tau local iterations per round, the mean of their weights."""
    from .data import has_test_split
    from .spark import Exchange, Faults, SparkNetTrainer, local_spark

    net, solver = _load_model(args.model, args.batch_size, args.record_shape)
    if args.base_lr is not None:
        solver.base_lr = args.base_lr
    master = args.master or f"local-cluster[{args.workers},1,2048]"
    spark = local_spark(master, app_name=f"sparknet train {args.model}",
                        conf=_spark_conf(args.conf), secure=not args.insecure_spark)
    try:
        train = _load_data(spark, args.data, "train", args)  # arrays go to fit as they are
        test_spec = args.test_data or (args.data if has_test_split(args.data) else None)
        test = _load_data(spark, test_spec, "test", args) if test_spec else None
        trainer = SparkNetTrainer(spark, net, solver, num_workers=args.workers, tau=args.tau,
                                  seed=args.seed, schedule=args.schedule,
                                  device=args.device,
                                  exchange=Exchange(args.exchange, dtype=args.exchange_dtype,
                                                    tls=not args.insecure_exchange),
                                  faults=Faults(slots_timeout=args.slots_timeout))
        result = trainer.fit(train, test, rounds=args.rounds, checkpoint_dir=args.checkpoint_dir,
                             resume=args.resume, validate_every=args.validate_every,
                             checkpoint_every=args.checkpoint_every,
                             metrics_path=args.metrics, progress=not args.quiet,
                             mlflow=args.mlflow)
    finally:
        spark.stop()
    last = result.history[-1]
    if args.save:
        trainer.driver_net.save(args.save)
    accuracy = last.get("val_accuracy")
    tested = f" on {len(test[0])} images" if isinstance(test, tuple) else ""
    print(f"SparkNet {args.model}: K={args.workers} workers x tau={args.tau}, "
          f"{last['round']} rounds in {last['elapsed_s']:.1f} s"
          + (f"; test accuracy {accuracy * 100:.2f}%{tested}" if accuracy is not None else ""))
    return 0


def metrics_figure(metrics: Path):
    """Accuracy vs. wall-clock time and vs. iterations: one labelled curve per run the
    file holds (runs appended to one file stay apart by their records' `run`)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(metrics).read_text().splitlines() if line]
    rows = [r for r in rows if "val_accuracy" in r]
    if not rows:
        raise SystemExit(f"{metrics} holds no rounds with val_accuracy")
    fig, (by_time, by_iter) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    runs: dict = {}
    for row in rows:
        runs.setdefault(row.get("run", "run"), []).append(row)
    for run, its_rows in runs.items():
        accuracy = [100 * r["val_accuracy"] for r in its_rows]
        label = f"run {run}" if len(runs) > 1 else None
        by_time.plot([r["elapsed_s"] for r in its_rows], accuracy, marker="o", label=label)
        by_iter.plot([r["iterations"] for r in its_rows], accuracy, marker="o", label=label)
    by_time.set(xlabel="wall-clock time (s)", ylabel="test accuracy (%)")
    by_iter.set(xlabel="iterations per worker")
    for ax in (by_time, by_iter):
        ax.grid(True, alpha=0.3)
    if len(runs) > 1:
        by_time.legend()
    fig.suptitle(Path(metrics).name)
    fig.tight_layout()
    return fig


def cmd_plot(args) -> int:
    """Accuracy vs. wall-clock time and vs. iterations, from a metrics file, to PNG."""
    fig = metrics_figure(args.metrics)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=100)
    print(f"wrote {args.output}")
    return 0


def _add_train(sub) -> None:
    """The train command: its data options, then its run options."""
    train = sub.add_parser("train", help="SparkNet: train a net data-parallel on Spark",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--model", default="lenet",
                       help="zoo name, train_val .prototxt, or module:attribute (NetParams)")
    train.add_argument("--data", default="fashion-mnist",
                       help="fashion-mnist, a folder of MNIST IDX files, a Caffe LMDB of "
                            "Datums, a parquet table (image + label columns), or an image "
                            "folder (root/<class>/<image>)")
    train.add_argument("--test-data", help="validation data, same kinds as --data; unset: "
                                           "the test split of fashion-mnist / IDX folders")
    train.add_argument("--image-col", help="parquet: the image column; unset: 'image', else "
                                           "the first column")
    train.add_argument("--label-col", help="parquet: the label column; unset: 'label', else "
                                           "the second column")
    train.add_argument("--resize", type=int, nargs=2, metavar=("H", "W"),
                       help="image folders: resize every image (e.g. 256 256)")
    train.add_argument("--stream", action="store_true",
                       help="LMDBs and image folders: each worker reads its part from the "
                            "source on every pass instead of caching it (data larger than "
                            "the workers' memory; paths readable on every worker)")
    train.add_argument("--on-bad-record", choices=("error", "skip"), default="error",
                       help="a record that cannot be decoded or has no label")
    _add_train_run_options(train)


def _add_train_run_options(train) -> None:
    train.add_argument("--workers", type=int, default=2, help="K: workers (partitions)")
    train.add_argument("--tau", type=int, default=50, help="iterations per worker per round")
    train.add_argument("--rounds", type=int, default=60)
    train.add_argument("--master", help="Spark master (default local-cluster[K,1,2048])")
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--base-lr", type=float,
                       help="override the solver's base_lr (with K workers, K x the single "
                            "net's rate often converges faster: bench/sweep_lr_tau.py)")
    train.add_argument("--device", default="cpu",
                       help="cpu; gpu (the GPU Spark assigns each task: set "
                            "spark.task.resource.gpu.amount); or gpu:N")
    train.add_argument("--slots-timeout", type=float, default=300.0,
                       help="seconds to wait for executors still starting to offer K task "
                            "slots (at the start, and when a lost worker is being "
                            "replaced); a cluster that can never offer K fails at once")
    train.add_argument("--insecure-spark", action="store_true",
                       help="leave Spark's authentication and RPC encryption off (on by "
                            "default for local and local-cluster masters, with a fresh "
                            "secret; a cluster's secret comes with --conf)")
    train.add_argument("--conf", action="append", metavar="KEY=VALUE",
                       help="a Spark setting, as spark-submit takes it (repeatable), e.g. "
                            "--conf spark.driver.host=driver")
    train.add_argument("--schedule", "--round-mode", choices=("segments", "jobs"),
                       default="segments",
                       help="segments: many rounds in one barrier stage (the default); jobs: "
                            "one Spark job a round (slots free between rounds)")
    train.add_argument("--exchange", choices=("driver", "ring"), default="driver",
                       help="driver: the driver sends the weights to each worker and sums "
                            "what comes back (SparkNet's star, the default); ring: the "
                            "workers sum among themselves, 2(K-1)/K of the model on each "
                            "link whatever K (README: which to pick)")
    train.add_argument("--insecure-exchange", action="store_true",
                       help="the workers' links without TLS: weights and the run secret "
                            "cross the network in clear (only where every host is trusted)")
    train.add_argument("--exchange-dtype", choices=("float32", "bfloat16", "float16"),
                       default="float32",
                       help="the ring's wire: float32, or half the bytes with each round's "
                            "update rounded to 16 bits (summed and applied in float32)")
    train.add_argument("--record-shape", type=int, nargs=3, metavar=("C", "H", "W"),
                       help="data top shape, for a .prototxt model")
    add_fit_options(train)
    train.add_argument("--save", type=Path, help="write the final .caffemodel here")
    train.set_defaults(run=cmd_train)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sparknet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="where Caffe and its tools are, and how it was built")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(run=cmd_info)

    models = sub.add_parser("models", help="list the Caffe model-zoo nets pysparknet loads")
    models.set_defaults(run=cmd_models)

    demo = sub.add_parser("demo", help="train LeNet on Fashion-MNIST through Net",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    demo.add_argument("--iterations", type=int, default=2000)
    demo.add_argument("--batch-size", type=int, default=64)
    demo.add_argument("--test-every", type=int, default=500, help="iterations between tests")
    demo.add_argument("--device", default="cpu", help="cpu, gpu or gpu:N")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--metrics", type=Path, help="write one JSON line per test here")
    demo.add_argument("--save", type=Path, help="write the final .caffemodel here")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(run=cmd_demo)

    _add_train(sub)
    add_repro(sub)

    plot = sub.add_parser("plot", help="plot a metrics file (accuracy vs. time, iterations)")
    plot.add_argument("metrics", type=Path)
    plot.add_argument("-o", "--output", type=Path, default=Path("accuracy.png"))
    plot.set_defaults(run=cmd_plot)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
