"""How long CaffeNet's solver waits for data, and the feed's copy cost vs. memcpy.

CaffeNet (Caffe's bvlc_reference_caffenet train_val, 227x227x3 crops) trains
from uint8 256x256x3 images in memory. The feed hands Caffe pointers to the
caller's batch and the native feed layer applies transform_param (random
227 crop, mirror, mean) per image on the solver's thread: that pass is all the
solver waits for. Measured in the same run:

- train: Net.train(n) per iteration (feed + forward + backward + update);
- feed: the same Input layer and transform_param alone (a net of the feed
  and a Silence layer), per batch;
- memcpy: np.copyto of the bytes the feed writes (batch x 3 x 227 x 227
  float32) between preallocated buffers.

- records: Net.train(n) again, fed the same images as a list of (ndarray,
  label) records, whose batches the prefetch thread stacks while Caffe
  computes.
- JPEG stream: Net.train(n) fed by image_folder_stream over generated 500x375
  JPEG files on disk (the page cache): the prefetch thread reads, decodes and
  resizes each to 256x256 while Caffe computes; and that decoding alone, per
  batch, on one thread.

Waiting fraction = feed / train (arrays), (records - arrays) / records and
(stream - arrays) / stream; copy cost = feed / memcpy.

    python bench/bench_feed_wait.py [--batch 32] [--iterations 3]
"""
from __future__ import annotations

import argparse
import itertools
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from bench_jpeg_decode import generated_jpegs
from results_io import record  # bench/, beside this script
from pysparknet import Net, zoo
from pysparknet.data import image_folder_stream
from pysparknet.proto import caffe_pb2


def feed_only(net_param: caffe_pb2.NetParameter) -> caffe_pb2.NetParameter:
    """The TRAIN-phase Input layer of `net_param` with its transform, then Silence."""
    feed = caffe_pb2.NetParameter(name="feed_only")
    for layer in net_param.layer:
        if layer.type == "Input" and all(rule.phase == caffe_pb2.TRAIN for rule in layer.include):
            copy = feed.layer.add()
            copy.CopyFrom(layer)
            del copy.include[:]
            feed.layer.add(name="silence", type="Silence", bottom=list(layer.top))
            return feed
    raise ValueError("no TRAIN-phase Input layer")


def per_call(fn, calls: int) -> float:
    fn()  # warm-up
    tic = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - tic) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=3, help="timed training iterations")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4 * args.batch, 3, 256, 256), np.uint8)
    labels = rng.integers(0, 1000, 4 * args.batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the ImageNet mean-file fallback
        model = zoo.load("caffenet", batch_size=args.batch, test_batch_size=args.batch)

    net = Net(model.net, model.solver, seed=1)
    net.set_training_data((images, labels))
    train_s = per_call(lambda: net.train(1), args.iterations)
    net.close()

    # The same images as a list of (ndarray, label) records: batches are stacked
    # in Python on the prefetch thread while Caffe computes.
    net = Net(model.net, model.solver, seed=1)
    net.set_training_data([(image, int(label)) for image, label in zip(images, labels)])
    records_s = per_call(lambda: net.train(1), args.iterations)
    net.close()

    # JPEG files decoded and resized on the fly by a stream, on the prefetch thread.
    with tempfile.TemporaryDirectory() as folder:
        for i, data in enumerate(generated_jpegs(4 * args.batch, 500, 375)):
            (Path(folder) / f"class{i % 10}").mkdir(exist_ok=True)
            (Path(folder) / f"class{i % 10}" / f"{i}.jpg").write_bytes(data)
        part = image_folder_stream(folder, 1, size=(256, 256))[0].parts[0]
        net = Net(model.net, model.solver, seed=1)
        net.set_training_data(part)
        stream_s = per_call(lambda: net.train(1), args.iterations)
        net.close()
        decode_s = per_call(lambda: list(itertools.islice(iter(part), args.batch)), 3)

    feeder = Net(feed_only(model.net))
    feeder.set_validation_data((images, labels))
    feed_s = per_call(lambda: feeder.test(1), 20)
    feeder.close()

    out_bytes = args.batch * 3 * 227 * 227 * 4
    src, dst = np.ones(out_bytes // 4, np.float32), np.empty(out_bytes // 4, np.float32)
    memcpy_s = per_call(lambda: np.copyto(dst, src), 50)

    print(f"\nCaffeNet, batch {args.batch} of 227x227x3 crops from 256x256 uint8 images\n")
    print("| step | ms per batch | ratio |")
    print("|---|---:|---:|")
    print(f"| training iteration (feed + forward + backward + update) | {train_s * 1e3:.0f} | "
          f"1.000 |")
    print(f"| feed + transform alone | {feed_s * 1e3:.2f} | {feed_s / train_s:.4f} of an "
          f"iteration |")
    print(f"| memcpy of the feed's output bytes ({out_bytes / 1e6:.1f} MB) | "
          f"{memcpy_s * 1e3:.2f} | feed / memcpy = {feed_s / memcpy_s:.2f} |")
    print(f"| training iteration from a list of records (prefetch on) | {records_s * 1e3:.0f} | "
          f"waiting (records - arrays) / records = "
          f"{max(records_s - train_s, 0) / records_s:.4f} |")
    print(f"| training iteration from JPEG files, decoded on the fly (stream, prefetch on) | "
          f"{stream_s * 1e3:.0f} | waiting (stream - arrays) / stream = "
          f"{max(stream_s - train_s, 0) / stream_s:.4f} |")
    print(f"| read + decode + resize of one batch of those JPEGs alone, one thread | "
          f"{decode_s * 1e3:.0f} | {decode_s / train_s:.3f} of an iteration |")
    record("feed_wait", extra={"batch": args.batch, "iterations": args.iterations,
                               "mean_s": {"arrays": train_s, "records": records_s,
                                          "stream": stream_s, "feed": feed_s,
                                          "memcpy": memcpy_s, "decode": decode_s},
                               "feed_bytes": out_bytes, "interleaved": False})


if __name__ == "__main__":
    main()
