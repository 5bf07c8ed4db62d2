"""Training on a Structured Streaming DataFrame (fit_stream): parquet files landing in
a folder, read by Spark's file source on a real local-cluster; the driver killed
mid-stream and restarted; bad records in a stream."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pysparknet import zoo
from pysparknet.errors import DataError
from pysparknet.spark import SparkNetTrainer
from pysparknet.spark.stream_buffer import BatchShare, RecentRecords
from pysparknet.spark.streaming import EXIT_AFTER_CHECKPOINT, StreamCheckpointError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))
from landing import RECORD_SHAPE, SCHEMA_DDL, land, land_in_background, stage_files  # noqa: E402


def _trainer(spark, tau: int) -> SparkNetTrainer:
    return SparkNetTrainer(spark, zoo.lenet(batch_size=64), zoo.lenet_solver(), num_workers=2,
                           tau=tau, seed=3)


def _file_stream(spark, folder: Path):
    return spark.readStream.schema(SCHEMA_DDL).option("maxFilesPerTrigger", 1).parquet(
        str(folder))


def _wait_for_records(training, records: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while training.records_seen < records:
        assert not training.await_termination(0.5), "the query ended early"
        assert time.monotonic() < deadline, f"{training.records_seen} of {records} records"


def test_recent_records_keep_the_newest_and_take_each_batch_once():
    def share(batch_id, first, n):
        labels = np.arange(first, first + n)
        return BatchShare(batch_id, labels.reshape(n, 1).astype(np.float32), labels)

    buffer = RecentRecords(limit=5)
    assert buffer.add(share(0, 0, 3)) and buffer.add(share(1, 3, 3))
    assert not buffer.add(share(1, 3, 3)), "a share that came again was added twice"
    assert not buffer.add(share(2, 9, 0)), "an empty share changed the buffer"
    images, labels = buffer.arrays()
    assert labels.tolist() == [3, 4, 5, 1, 2], "not the newest 5, newest batch first"
    assert images[:, 0].tolist() == labels.tolist()
    assert buffer.add(share(3, 6, 7)) and buffer.arrays()[1].tolist() == [8, 9, 10, 11, 12]


def test_files_landing_while_training_match_training_on_them_as_a_batch(spark, tmp_path,
                                                                        fmnist_train,
                                                                        fmnist_test):
    """12 files of 2,500 records land one a second while the stream trains (a round of
    tau=20 a file: each worker reads its 1,250 records of the file about once); the same
    records as one batch fit for as many iterations (one pass over them)."""
    files, per_file, tau, rounds_per_batch = 12, 2500, 20, 1
    images, labels = (a[:files * per_file] for a in fmnist_train)
    staged = stage_files(spark, images, labels, tmp_path / "staging", per_file)
    assert len(staged) == files
    landing = land_in_background(staged, tmp_path / "in", every_s=1.0)
    (tmp_path / "in").mkdir(exist_ok=True)
    training = _trainer(spark, tau).fit_stream(
        _file_stream(spark, tmp_path / "in"), validation_data=fmnist_test,
        checkpoint_dir=tmp_path / "checkpoint", rounds_per_batch=rounds_per_batch,
        validate_every=files, shape=RECORD_SHAPE, progress=False)
    try:
        landing.join(60)
        _wait_for_records(training, files * per_file, 600)
    finally:
        training.stop()
    streamed = training.history[-1]["val_accuracy"]
    assert training.batch_records == [[b, per_file] for b in range(files)]
    assert [r["rebuilt_solvers"] for r in training.history[1:]] == [0] * (files - 1)
    assert training.history[-1]["iterations"] == files * rounds_per_batch * tau

    batch = _trainer(spark, tau).fit((images, labels), fmnist_test,
                                     rounds=files * rounds_per_batch,
                                     validate_every=files * rounds_per_batch, progress=False)
    as_batch = batch.history[-1]["val_accuracy"]
    print(f"streamed {streamed:.4f}, as a batch {as_batch:.4f}")
    assert streamed > 0.75
    assert abs(streamed - as_batch) <= 0.01


def _run_example(folder, out, checkpoint, env=None, wait=True):
    command = [sys.executable, str(EXAMPLES / "stream_parquet.py"), "--files", "0",
               "--available-now", "--folder", str(folder), "--out", str(out), "--checkpoint",
               str(checkpoint), "--tau", "8", "--rounds-per-batch", "2", "--timeout", "400"]
    environment = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", **(env or {})}
    if wait:
        return subprocess.run(command, cwd="/", capture_output=True, text=True, timeout=600,
                              env=environment)
    return subprocess.Popen(command, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=environment, start_new_session=True)


def _kill_mid_batch(driver, metrics: Path, batch_id: int, timeout_s: float = 300) -> str:
    """SIGKILL the driver once the batch's first round is reported (its second runs);
    what the driver wrote to stderr."""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and driver.poll() is None:
            lines = metrics.read_text().splitlines() if metrics.exists() else []
            if any(json.loads(line).get("batch_id") == batch_id for line in lines):
                break
            time.sleep(0.05)
        assert driver.poll() is None, f"the driver ended before batch {batch_id}"
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        return driver.communicate(timeout=60)[1]


def test_driver_lost_mid_stream_resumes_training_each_batch_exactly_once(spark, tmp_path,
                                                                         fmnist_train):
    """Run 1 exits right after batch 1's checkpoint, before Spark commits the batch;
    run 2 is SIGKILLed in the middle of batch 3; run 3 finishes the stream."""
    files, per_file = 6, 1000
    images, labels = (a[:files * per_file] for a in fmnist_train)
    land(stage_files(spark, images, labels, tmp_path / "staging", per_file), tmp_path / "in")
    out, checkpoint = tmp_path / "out", tmp_path / "checkpoint"

    first = _run_example(tmp_path / "in", out, checkpoint, {EXIT_AFTER_CHECKPOINT: "1"})
    assert first.returncode == 3, first.stderr[-3000:]
    second = _run_example(tmp_path / "in", out, checkpoint, wait=False)
    said = _kill_mid_batch(second, out / "metrics.jsonl", batch_id=3)
    assert "micro-batch 1: the model's checkpoint covers it already" in said, said[-3000:]
    meta = json.loads((checkpoint / "model" / "checkpoint.json").read_text())
    assert meta["stream"]["last_batch"] == 2, "run 2 was not killed in batch 3"
    third = _run_example(tmp_path / "in", out, checkpoint)
    assert third.returncode == 0, third.stderr[-3000:]

    summary = json.loads(third.stdout.strip().splitlines()[-2])
    print(summary)
    assert summary["batch_records"] == [[b, per_file] for b in range(files)]
    meta = json.loads((checkpoint / "model" / "checkpoint.json").read_text())
    assert meta["stream"]["batch_records"] == summary["batch_records"]
    assert meta["round"] == files * 2 and [r["batch_id"] for r in meta["history"]] == [
        b for b in range(files) for _ in range(2)], "a batch trained twice or skipped"
    assert summary["val_accuracy"] > 0.6
    assert (out / "metrics.png").stat().st_size > 0


def _write_rows(spark, rows, folder: Path, name: str) -> None:
    staging = folder.parent / f".{name}"
    spark.createDataFrame(rows, SCHEMA_DDL).coalesce(1).write.parquet(str(staging))
    folder.mkdir(parents=True, exist_ok=True)
    next(staging.glob("part-*.parquet")).rename(folder / f"{name}.parquet")
    shutil.rmtree(staging)


@pytest.fixture(scope="module")
def bad_stream_folder(spark, fmnist_train, tmp_path_factory):
    """Two files of 600 records; the second holds 3 records of 700 bytes (not 28x28)."""
    folder = tmp_path_factory.mktemp("bad_stream") / "in"
    images, labels = fmnist_train
    rows = [(bytearray(images[i].tobytes()), int(labels[i])) for i in range(1200)]
    for i in (650, 900, 1100):
        rows[i] = (bytearray(700), rows[i][1])
    _write_rows(spark, rows[:600], folder, "good")
    _write_rows(spark, rows[600:], folder, "with-bad")
    return folder


def _bad_stream_fit(spark, folder, checkpoint, on_bad_record):
    return _trainer(spark, tau=4).fit_stream(
        _file_stream(spark, folder), checkpoint_dir=checkpoint, shape=RECORD_SHAPE,
        on_bad_record=on_bad_record, trigger={"availableNow": True}, progress=False)


def test_bad_records_in_a_stream_are_counted_and_skipped(spark, tmp_path, bad_stream_folder):
    training = _bad_stream_fit(spark, bad_stream_folder, tmp_path / "checkpoint", "skip")
    with pytest.warns(UserWarning, match="micro-batch 1: skipped 3 bad record"):
        assert training.await_termination(300)
    assert training.batch_records == [[0, 600], [1, 597]]
    assert training.history[-1]["skipped_records"] == 3

    # The stream's checkpoint without the model's: its batches would be lost, so refused.
    shutil.rmtree(tmp_path / "checkpoint" / "model")
    with pytest.raises(StreamCheckpointError, match="committed micro-batches 0..1"):
        _bad_stream_fit(spark, bad_stream_folder, tmp_path / "checkpoint", "skip")


def test_a_bad_record_stops_the_stream_naming_it(spark, tmp_path, bad_stream_folder):
    training = _bad_stream_fit(spark, bad_stream_folder, tmp_path / "checkpoint", "error")
    with pytest.raises(DataError, match=r"micro-batch 1: .*700 values cannot be shaped"):
        training.await_termination(300)
    assert not training.query.isActive
    assert training.batch_records == [[0, 600]], "the good batch before it was not kept"
    meta = json.loads((tmp_path / "checkpoint" / "model" / "checkpoint.json").read_text())
    assert meta["stream"]["last_batch"] == 0


def test_fit_stream_refuses_what_it_cannot_train_on(spark, fmnist_train):
    trainer = _trainer(spark, tau=4)
    batch_df = spark.createDataFrame([(bytearray(784), 1)], SCHEMA_DDL)
    with pytest.raises(ValueError, match="takes a streaming DataFrame"):
        trainer.fit_stream(batch_df)
    stream = spark.readStream.format("rate").load()
    with pytest.raises(ValueError, match="rounds_per_batch must be a whole number >= 1"):
        trainer.fit_stream(stream, rounds_per_batch=0)
    with pytest.raises(ValueError, match="on_bad_record must be one of"):
        trainer.fit_stream(stream, on_bad_record="ignore")


def test_image_files_and_the_rate_source_stream_in(spark, tmp_path, fmnist_train):
    """PNG files read by Spark's binaryFile source (labels from their folders); and the
    rate source joined with a table of records (records arriving at a fixed rate)."""
    from pyspark.sql import functions as F

    from pysparknet.data import encode_image

    images, labels = fmnist_train
    for i in range(400):
        folder = tmp_path / "png" / f"class-{labels[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.png").write_bytes(encode_image(images[i], "PNG"))
    binary_file = "path STRING, modificationTime TIMESTAMP, length LONG, content BINARY"
    files = (spark.readStream.format("binaryFile").schema(binary_file)
             .option("pathGlobFilter", "*.png")
             .option("recursiveFileLookup", "true").load(str(tmp_path / "png"))
             .select(F.col("content").alias("image"),
                     F.regexp_extract("path", r"/class-(\d+)/", 1).cast("int").alias("label")))
    training = _trainer(spark, tau=4).fit_stream(files, color=False, progress=False,
                                                 trigger={"availableNow": True})
    assert training.await_termination(300)
    assert training.records_seen == 400 and training.history[-1]["iterations"] == 4

    table = spark.createDataFrame([(i, bytearray(images[i].tobytes()), int(labels[i]))
                                   for i in range(1000)], "id LONG, image BINARY, label INT")
    arriving = (spark.readStream.format("rate").option("rowsPerSecond", 500).load()
                .select((F.col("value") % 1000).alias("id")).join(table, "id"))
    training = _trainer(spark, tau=4).fit_stream(
        arriving.select("image", "label"), shape=RECORD_SHAPE, progress=False,
        trigger={"processingTime": "2 seconds"})
    try:
        _wait_for_records(training, 1500, 120)
    finally:
        training.stop()
    assert not training.query.isActive
    assert training.history and all(r["batch_records"] > 0 for r in training.history)
    assert sum(n for _, n in training.batch_records) == training.records_seen >= 1500
