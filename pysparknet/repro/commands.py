"""`sparknet repro NAME`: the subcommands that redo SparkNet's experiments."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_OUT = Path("repro-results")


def cmd_tau_k(args) -> int:
    from .study import run_study, write_outputs
    from .tau_k import Settings

    settings = Settings(tuple(args.workers), tuple(args.tau), args.budget_images, args.batch,
                        args.tests, args.seed)
    if args.replot:
        results = json.loads((args.out / "tau_k.json").read_text())
    else:
        results = run_study(args.out, settings, tuple(args.spark_workers),
                            tuple(args.spark_tau), args.target)
    print("\n" + write_outputs(results, args.out, args.target))
    print(f"wrote {args.out}/: tau_k.json, tau_k.md, tau_k_accuracy.csv, accuracy_vs_time.png, "
          "accuracy_vs_iterations.png, accuracy_vs_rounds.png, accuracy_heat_map.png")
    return 0


def _rounded(by_k: dict, scale: float) -> dict:
    return {k: round(v * scale, 1) for k, v in sorted(by_k.items())}


def cmd_speedup_model(args) -> int:
    from .speedup_model import RECORDED_GPU_LENET_MS, iterations_to_target
    from .speedup_report import (check_markdown, curves_png, given_costs, measured_costs,
                                 prediction_markdown)
    from .tau_k import cells_from_json

    path = args.results / "tau_k.json"
    if not path.is_file():
        raise SystemExit(f"{path} is not there: run `sparknet repro tau-k --out "
                         f"{args.results}` first (the model's rounds and costs come from it)")
    results = json.loads(path.read_text())
    cells = cells_from_json(results["cells"])
    table = iterations_to_target(cells, args.target)
    measured = measured_costs(results)
    compute = RECORDED_GPU_LENET_MS if args.gpu_recorded else args.compute_ms
    sync = [ms / 1e3 for ms in args.sync_ms] if args.sync_ms else None
    workers = args.workers or sorted({c.workers for c in cells if c.workers > 1})
    taus = args.tau or sorted({c.tau for c in cells})
    print(f"inputs: rounds to {args.target:.1%} from {path} (LeNet, Fashion-MNIST, batch "
          f"{results['settings']['batch']} per worker; iterations per worker to the target "
          f"by (K, tau): {dict(sorted(table.items()))}); C and S: "
          + (f"the H100's LeNet Net.train, {RECORDED_GPU_LENET_MS} ms at batch 64, recorded "
             "in BENCHMARKS.md; " if args.gpu_recorded else "")
          + f"measured: C_K ms {_rounded(measured.compute_ms, 1)}, S_K ms "
          f"{_rounded(measured.sync_s, 1e3)} ({results['machine']})\n")
    costs_list = given_costs(workers, compute, sync, measured)
    for costs in costs_list:
        print(prediction_markdown(table, costs, workers, taus))
    png = curves_png(table, costs_list, workers, taus, args.output, args.target)
    check, within, reached = check_markdown(results, args.target)
    print(f"check against the measured Spark runs (measured C and S): {within} of {reached} "
          f"that reached {args.target:.1%} predicted within 25%\n\n{check}\nwrote {png}")
    return 0


def cmd_exchange_model(args) -> int:
    from .exchange_model import Link, table_markdown

    print(f"inputs: {args.floats:,} floats, tau={args.tau}, a step of {args.step_ms} ms on "
          f"each worker, links of {args.gbit} Gbit/s each way\n")
    print(table_markdown(args.workers, args.tau, args.step_ms, args.floats, Link(args.gbit)))
    return 0


def _add_exchange_model(sub) -> None:
    from .exchange_model import ALEXNET_FLOATS, RECORDED_GPU_ALEXNET_MS

    p = sub.add_parser("exchange-model", help="a round's sync and the throughput speedup "
                                              "under the driver's star and the ring",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[2, 5, 8, 16], help="K values")
    p.add_argument("--tau", type=int, default=50)
    p.add_argument("--step-ms", type=float, default=RECORDED_GPU_ALEXNET_MS,
                   help="a worker's training step (default: AlexNet's on an H100, recorded "
                        "in BENCHMARKS.md)")
    p.add_argument("--floats", type=int, default=ALEXNET_FLOATS, help="the model's floats")
    p.add_argument("--gbit", type=float, default=10.0, help="each link, Gbit/s each way")
    p.set_defaults(run=cmd_exchange_model)


def _add_tau_k(sub) -> None:
    p = sub.add_parser("tau-k", help="the tau/K study: LeNet on Fashion-MNIST, K workers x "
                                     "tau, one image budget; tables and PNGs",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8], help="K values")
    p.add_argument("--tau", type=int, nargs="+", default=[1, 5, 20, 50, 100])
    p.add_argument("--budget-images", type=int, default=51_200,
                   help="training images every cell sees (all workers together)")
    p.add_argument("--batch", type=int, default=64, help="minibatch per worker")
    p.add_argument("--tests", type=int, default=6, help="test points per cell (all 10,000 "
                                                        "test images each)")
    p.add_argument("--spark-workers", type=int, nargs="*", default=[2, 4],
                   help="K of the real Spark runs (local-cluster[K,1,MB]; K above the cores "
                        "shares them)")
    p.add_argument("--spark-tau", type=int, nargs="*", default=[20, 50])
    p.add_argument("--target", type=float, default=0.80,
                   help="test accuracy for the speedup model's check")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--replot", action="store_true",
                   help="redraw the tables and PNGs from OUT/tau_k.json, run nothing")
    p.set_defaults(run=cmd_tau_k)


def _add_speedup_model(sub) -> None:
    from .speedup_model import RECORDED_GPU_LENET_MS  # small: math and dataclasses

    p = sub.add_parser("speedup-model", help="SparkNet's speedup model fitted from the tau/K "
                                             "study: predicted table and curves, and its check",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--results", type=Path, default=DEFAULT_OUT,
                   help="the tau-k results folder (its tau_k.json)")
    p.add_argument("--target", type=float, default=0.80, help="test accuracy to reach")
    p.add_argument("--workers", type=int, nargs="+", help="K values (default: the study's); "
                   "others are interpolated between the study's")
    p.add_argument("--tau", type=int, nargs="+", help="tau values (default: the study's)")
    p.add_argument("--sync-ms", type=float, nargs="+",
                   help="S values to predict for, ms a round (default: S_K measured here)")
    device = p.add_mutually_exclusive_group()
    device.add_argument("--compute-ms", type=float,
                        help="C, ms per step for every K (one device per worker; default: "
                             "C_K measured here)")
    device.add_argument("--gpu-recorded", action="store_true",
                        help=f"C = the H100 LeNet step recorded in BENCHMARKS.md "
                             f"({RECORDED_GPU_LENET_MS} ms)")
    p.add_argument("-o", "--output", type=Path, default=Path("speedup_model.png"))
    p.set_defaults(run=cmd_speedup_model)


def add_repro(sub) -> None:
    """`sparknet repro NAME`: one subcommand per experiment."""
    repro = sub.add_parser("repro", help="redo SparkNet's experiments (REPRODUCTION.md)",
                           description="SparkNet's experiments (Moritz et al., ICLR 2016): "
                                       "the model-zoo ImageNet runs, the tau/K study and the "
                                       "speedup model. REPRODUCTION.md has the results.")
    names = repro.add_subparsers(dest="experiment", required=True, metavar="NAME")
    from .imagenet_run import add_parser
    for net in ("alexnet", "googlenet"):
        add_parser(names, net)
    _add_tau_k(names)
    _add_speedup_model(names)
    _add_exchange_model(names)
