"""Training data read from its source on every pass: partitions larger than memory."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pysparknet import DataError
from pysparknet.data import (decode_image, encode_image, image_folder_rdd, image_folder_stream,
                             image_list_stream, lmdb_rdd, lmdb_stream, write_datum_lmdb)
from pysparknet.spark import SparkNetTrainer
from pysparknet.zoo import lenet, lenet_solver


@pytest.fixture(scope="module")
def small_lmdb(tmp_path_factory, fmnist_train):
    """1,000 Fashion-MNIST records as a pysparknet-written LMDB: 500 a partition at
    K=2, under 8 LeNet minibatches, so a few rounds wrap around several passes."""
    db = tmp_path_factory.mktemp("stream") / "train_lmdb"
    x, y = fmnist_train
    write_datum_lmdb(db, zip(x[:1000, None], y[:1000].tolist()))
    return db


def test_lmdb_stream_trains_exactly_like_the_cached_lmdb(spark, small_lmdb, fmnist_test):
    """Streamed (each worker re-reads its key range every pass, batches assembled on
    the prefetch thread) and cached (arrays) give the same weights, bit for bit,
    through passes that wrap around mid-minibatch."""
    def fit(data):
        trainer = SparkNetTrainer(spark, lenet(), lenet_solver(), num_workers=2, tau=10, seed=4)
        return trainer.fit(data, (fmnist_test[0][:500], fmnist_test[1][:500]), rounds=3,
                           progress=False)

    cached = fit(lmdb_rdd(spark.sparkContext, small_lmdb, num_partitions=2))
    streamed = fit(lmdb_stream(small_lmdb, 2))
    np.testing.assert_array_equal(streamed.weights.flat, cached.weights.flat)
    assert [r["loss"] for r in streamed.history] == [r["loss"] for r in cached.history]
    assert [r["skipped_records"] for r in streamed.history] == [0, 0, 0]
    # Each partition's task stays with the executor that holds its solver.
    assert [r["rebuilt_solvers"] for r in streamed.history] == [2, 0, 0]
    assert streamed.history[-1]["val_accuracy"] > 0.5


def test_image_folder_stream_shuffles_deals_and_rereads(jpeg_folder, tmp_path):
    root, listfile = jpeg_folder
    source, classes = image_folder_stream(root, 2, size=(32, 32))
    assert classes == ["cat", "dog", "grey"] and source.counts == [12, 12]
    parts = [list(part) for part in source.parts]
    names = [name for part in source.parts for name in part.names]
    assert sorted(names) == sorted(str(p.relative_to(root)) for p in root.glob("*/*.jpg"))
    for part, records in zip(source.parts, parts):
        assert len({label for _, label in records}) == 3  # every worker sees every class
        for name, (image, label) in zip(part.names, records):
            assert label == classes.index(name.split("/")[0])
            np.testing.assert_array_equal(image, decode_image((root / name).read_bytes(),
                                                              True, (32, 32)))
    listed = image_list_stream(root, listfile, 2, size=None, seed=None)
    assert listed.parts[0].names == listfile.read_text().split()[0:24:2]
    # Every pass reads the files again: a file spoiled after the first pass fails
    # the next one, naming it.
    copy = tmp_path / "copy"
    for path in root.glob("*/*.jpg"):
        (copy / path.parent.name).mkdir(parents=True, exist_ok=True)
        (copy / path.parent.name / path.name).write_bytes(path.read_bytes())
    part = image_folder_stream(copy, 1)[0].parts[0]
    assert len(list(part)) == 24
    (copy / part.names[5]).write_bytes(b"\xff\xd8 no longer a jpeg")
    with pytest.raises(DataError, match=part.names[5]):
        list(part)


def test_image_folder_rdd_partitions_mix_the_classes(spark, jpeg_folder):
    root, _ = jpeg_folder
    rdd, _ = image_folder_rdd(spark.sparkContext, root, size=(8, 8), num_partitions=2)
    per_partition = rdd.glom().map(lambda part: sorted({label for _, label in part})).collect()
    assert per_partition == [[0, 1, 2], [0, 1, 2]]
    ordered, _ = image_folder_rdd(spark.sparkContext, root, size=(8, 8), num_partitions=1,
                                  seed=None)
    assert [label for _, label in ordered.collect()] == sorted(i % 3 for i in range(24))


def test_streamed_images_train_and_bad_files_are_skipped_and_counted(spark, tmp_path):
    """An image folder streamed by the workers (decoded on the fly, resized) trains
    through the trainer; a corrupt file is skipped (on every pass) and reported once."""
    from conftest import smooth_images

    root = tmp_path / "folder"
    for i, image in enumerate(smooth_images(40, shape=(3, 30, 34), seed=7)):
        cls = root / ["bright", "dark"][i % 2]
        cls.mkdir(parents=True, exist_ok=True)
        shifted = np.clip(image.astype(int) + (60 if i % 2 == 0 else -60), 0, 255)
        (cls / f"{i:03d}.jpg").write_bytes(encode_image(shifted.astype(np.uint8), "JPEG"))
    (root / "dark" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    source, classes = image_folder_stream(root, 2, size=(28, 28), color=False,
                                          on_bad_record="skip")
    trainer = SparkNetTrainer(spark, lenet(batch_size=8), lenet_solver(), num_workers=2,
                              tau=10, seed=1)
    with pytest.warns(UserWarning, match="skipped 1 bad record"):
        result = trainer.fit(source, rounds=3, progress=False)
    # 4 passes a round (20 files a worker, 10 x 8 records): each bad file counts once.
    assert [r["skipped_records"] for r in result.history] == [1, 1, 1]
    assert np.isfinite(result.history[-1]["loss"])
    with pytest.raises(DataError, match="broken.jpg"):  # the default: stop, naming it
        SparkNetTrainer(spark, lenet(batch_size=8), lenet_solver(), num_workers=2, tau=10) \
            .fit(image_folder_stream(root, 2, size=(28, 28), color=False)[0], rounds=1,
                 progress=False)


def test_stream_mistakes_are_clear_errors(spark, small_lmdb, tmp_path):
    trainer = SparkNetTrainer(spark, lenet(), lenet_solver(), num_workers=2, tau=5)
    with pytest.raises(DataError, match="3 partitions; the trainer has 2 workers"):
        trainer.fit(lmdb_stream(small_lmdb, 3), rounds=1, progress=False)
    with pytest.raises(DataError, match="1000 records cannot fill 1001 partitions"):
        lmdb_stream(small_lmdb, 1001)
    with pytest.raises(DataError, match="is not a folder"):
        image_folder_stream(tmp_path / "nowhere", 2)
    with pytest.raises(DataError, match="local filesystem"):
        image_folder_stream("hdfs://namenode/imagenet/train", 2)
    (tmp_path / "one" / "cls").mkdir(parents=True)
    (tmp_path / "one" / "cls" / "a.png").write_bytes(encode_image(np.zeros((1, 4, 4), np.uint8)))
    with pytest.raises(DataError, match="1 image files cannot fill 2 partitions"):
        image_folder_stream(tmp_path / "one", 2)
    # A record the net cannot take fails the round on the worker, naming the record.
    one_worker = SparkNetTrainer(spark, lenet(batch_size=1), lenet_solver(), num_workers=1,
                                 tau=1)
    wrong_size = image_folder_stream(tmp_path / "one", 1, size=(5, 5), color=False)[0]
    with pytest.raises(DataError, match="record 0 has shape"):
        one_worker.fit(wrong_size, rounds=1, progress=False)
    assert spark.sparkContext.parallelize([1, 2], 2).sum() == 3  # the cluster lives on


# Runs in a process whose private writable memory (RLIMIT_DATA: heap, anonymous
# maps - not LMDB's read-only file map) is capped below the data's size.
_UNDER_LIMIT = textwrap.dedent("""
    import resource, sys
    limit = int(sys.argv[2]) << 20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    import numpy as np
    from pysparknet import Net
    from pysparknet.data import lmdb_stream
    net = Net('''
      layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 50 dim: 3 dim: 256 dim: 256 } shape { dim: 50 } }
        transform_param { scale: 0.00390625 } }
      layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
        pooling_param { pool: AVE kernel_size: 8 stride: 8 } }
      layer { name: "ip" type: "InnerProduct" bottom: "pool" top: "ip"
        inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
      layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
    ''', 'base_lr: 0.01 momentum: 0.9 lr_policy: "fixed" type: "SGD"', seed=1)
    if sys.argv[3] == "stream":
        part = lmdb_stream(sys.argv[1], 1).parts[0]
        net.set_training_data(part)
        steps = 2 * part.count // 50 + 7  # two passes and a bit: wraps around twice
        loss = net.train(steps)["loss"]
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        print(f"trained {steps} steps, loss {loss:.3f}; private {status['RssAnon'].strip()}, "
              f"LMDB pages mapped {status['RssFile'].strip()}")
    else:  # what caching the partition needs: one array of all its records
        count = lmdb_stream(sys.argv[1], 1).parts[0].count
        np.empty((count, 3, 256, 256), np.uint8).fill(0)
        print("cached")
""")


def test_streamed_partition_larger_than_the_memory_limit_trains(tmp_path):
    """600 MB of 3x256x256 records under a 450 MB cap on the process's private memory:
    the array that caching them needs cannot be had; streamed they train two passes."""
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 255, (3, 256, 256), dtype=np.uint8)
    db = tmp_path / "big_lmdb"
    count = 3200
    write_datum_lmdb(db, ((np.roll(tile, i, axis=2), i % 10) for i in range(count)))
    assert count * tile.nbytes >= 600 << 20
    script = tmp_path / "under_limit.py"
    script.write_text(_UNDER_LIMIT)
    env = {"OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}

    def run(mode):
        return subprocess.run([sys.executable, str(script), str(db), "450", mode],
                              capture_output=True, text=True, timeout=300, env=env, cwd="/")
    cached = run("cached")
    assert cached.returncode != 0 and "MemoryError" in cached.stderr, cached.stderr[-2000:]
    streamed = run("stream")
    assert streamed.returncode == 0, streamed.stderr[-3000:]
    print(streamed.stdout.strip())
    assert "trained 135 steps" in streamed.stdout
