"""Iterations to a test accuracy, for one Net and for K model-averaged Nets, over
learning rates and tau: which settings to time in bench_sparknet_speedup.py.

No Spark and no clock: the K Nets run one after another in this process and are
averaged every tau iterations exactly as SparkNet's rounds do
(pysparknet/repro/averaging.py: the trainer's slices and seeds), so only the
statistics of model averaging are measured. Tests on all 10,000 Fashion-MNIST test images
every --test-every iterations (per worker).

    python bench/sweep_lr_tau.py --lr 0.01 0.02 0.04 --tau 50 100 [--workers 2] [--batch 64]
        [--outer plain bmuf nesterov] [--outer-momentum 0.875] [--outer-lr 1.0] [--no-single]
        [--solver-state local reset average]

--outer runs the averaged workers with each outer optimizer (pysparknet/outer.py:
the driver's step with the round's averaged update; the kind's defaults unless
--outer-momentum / --outer-lr say otherwise).
"""
from __future__ import annotations

import argparse

from results_io import record  # bench/, beside this script

from pysparknet import zoo
from pysparknet.data import fashion_mnist
from pysparknet.outer import OuterOptimizer
from pysparknet.repro.averaging import AveragedWorkers, DivergedError


def solver(base_lr):
    params = zoo.lenet_solver()
    params.base_lr = base_lr
    return params


def iterations_to(target, workers, base_lr, tau, test_every, iterations, train, test, batch,
                  outer=None, solver_state="local"):
    """The first tested iteration at or above target, with its accuracy (or None)."""
    run = AveragedWorkers(zoo.lenet(batch_size=batch), solver(base_lr), train, workers,
                          validation=test, seed=1, outer=outer, solver_state=solver_state)
    try:
        while run.iterations < iterations:
            run.run_round(tau)
            if run.iterations % test_every == 0:
                accuracy = run.test()["accuracy"]
                if accuracy >= target:
                    return run.iterations, accuracy
    except DivergedError:
        return "diverged"
    finally:
        run.close()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lr", type=float, nargs="+", default=[0.01, 0.02, 0.04])
    parser.add_argument("--tau", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--workers", type=int, default=2, help="K for the averaged runs")
    parser.add_argument("--batch", type=int, default=64, help="minibatch per net")
    parser.add_argument("--target", type=float, default=0.895)
    parser.add_argument("--test-every", type=int, default=200)
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--outer", nargs="+", default=["plain"], help="outer optimizers")
    parser.add_argument("--outer-momentum", type=float, nargs="+", default=[None])
    parser.add_argument("--outer-lr", type=float, nargs="+", default=[None])
    parser.add_argument("--no-single", action="store_true", help="skip the one-Net rows")
    parser.add_argument("--solver-state", nargs="+", default=["local"],
                        choices=["local", "reset", "average"],
                        help="the workers' solver history between rounds")
    parser.add_argument("--record-name", default="sweep_lr_tau",
                        help="the raw output's file name under bench/results/<date>-<machine>/")
    args = parser.parse_args()
    train, test = fashion_mnist("train"), fashion_mnist("test")
    print(f"minibatch {args.batch} per net\n")
    print(f"| run | outer | base_lr | tau | iterations (per worker) to {args.target:.1%} | "
          "accuracy then |")
    print("|---|---|---:|---:|---:|---:|")
    outers = [OuterOptimizer(kind, mu, lr) for kind in args.outer
              for mu in (args.outer_momentum if kind != "plain" else [None])
              for lr in (args.outer_lr if kind != "plain" else [None])]
    runs = [] if args.no_single else [(1, lr, args.test_every, None) for lr in args.lr]
    runs = [run + ("local",) for run in runs]
    runs += [(args.workers, lr, tau, outer, state) for outer in outers for lr in args.lr
             for tau in args.tau for state in args.solver_state]
    rows = []
    for workers, lr, tau, outer, state in runs:
        hit = iterations_to(args.target, workers, lr, tau,
                            max(args.test_every, tau) // tau * tau, args.iterations, train, test,
                            args.batch, outer, state)
        name = "one Net" if workers == 1 else f"K={workers} averaged"
        outer_text = "-" if outer is None else (
            outer.kind if outer.kind == "plain" else f"{outer.kind} mu={outer.momentum} "
                                                     f"eta={outer.lr}")
        if state != "local":
            outer_text += f", history {state}"
        if hit == "diverged":
            reached, accuracy = "diverged (NaN loss)", "-"
        elif hit is None:
            reached, accuracy = f"> {args.iterations}", "-"
        else:
            reached, accuracy = hit[0], f"{hit[1]:.4f}"
        print(f"| {name} | {outer_text} | {lr} | {tau if workers > 1 else '-'} | {reached} | "
              f"{accuracy} |", flush=True)
        rows.append({"workers": workers, "base_lr": lr, "tau": tau, "outer": outer_text,
                     "solver_state": state, "reached": hit})
    record(args.record_name, rows=rows, extra=vars(args))


if __name__ == "__main__":
    main()
