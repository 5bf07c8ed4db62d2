"""The `sparknet` command."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


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
    metrics = open(args.metrics, "w") if args.metrics else None
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

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
