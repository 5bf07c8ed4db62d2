"""The SparkNet trainer on a real local-cluster (separate executor JVMs; three, since
one test runs K=3 and a round needs its K tasks at once)."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from pysparknet import DataError, Net, WeightCollection, zoo
from pysparknet.spark import (Exchange, Faults, SparkNetTrainer, TrainingDivergedError,
                              local_spark)
from pysparknet.spark.checkpoint import CheckpointError


@pytest.fixture(scope="module")
def spark():
    session = local_spark("local-cluster[3,1,1024]", conf={"spark.task.maxFailures": "1"})
    yield session
    session.stop()


def records(images, labels):
    return list(zip(images, labels.tolist()))


def solver_dropper(part: int):
    """A partition function that frees this Python worker's solvers of `part` (made
    here, not at module level, so that it is pickled by value for the executors)."""
    def drop(records):
        from pysparknet.spark import solvers
        for _ in records:  # read it all, or this Python worker exits with its solvers
            pass
        lost = [key for key in list(solvers._SOLVERS) if key[1] == part]
        for key in lost:
            solvers._SOLVERS.pop(key).net.close()
        return [len(lost)]
    return drop


def on_executor(spark, fn):
    """Run fn on an executor: the reference Nets then use the executors' OpenBLAS
    thread count (1), whose rounding the trainer's workers share."""
    return spark.sparkContext.parallelize([0], 1).map(lambda _: fn()).collect()[0]


def test_one_worker_equals_net_train(spark, fmnist_train):
    """K=1: R rounds of tau are exactly Net.train(R * tau) on the same data."""
    x, y = fmnist_train[0][:2000], fmnist_train[1][:2000]
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=1, tau=20,
                              seed=3)
    result = trainer.fit(spark.sparkContext.parallelize(records(x, y), 1), rounds=3,
                         progress=False)
    def alone():
        net = Net(zoo.lenet(), zoo.lenet_solver(), seed=3)
        net.set_training_data((x, y))
        net.train(60)
        return net.get_weights().flat
    a, b = result.weights.flat, on_executor(spark, alone)
    assert np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)) <= 1e-6
    assert [h["round"] for h in result.history] == [1, 2, 3]
    assert result.history[-1]["rebuilt_solvers"] == 0  # the solver persisted


def test_three_workers_average_exactly(spark, fmnist_train):
    """K=3, one round: the mean of three Nets trained tau steps from the same start."""
    x, y = fmnist_train[0][:1500], fmnist_train[1][:1500]
    parts = [(x[i::3], y[i::3]) for i in range(3)]
    rdd = spark.sparkContext.parallelize(
        [rec for px, py in parts for rec in records(px, py)], 3)
    assert [len(p) for p in rdd.glom().collect()] == [500, 500, 500]
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=3, tau=10,
                              seed=4)
    start = trainer.driver_net.get_weights().copy()
    result = trainer.fit(rdd, rounds=1, progress=False)
    def three_nets():
        trained = []
        for px, py in parts:
            net = Net(zoo.lenet(), zoo.lenet_solver(), seed=4)
            net.set_weights(start)
            net.set_training_data((px, py))
            net.train(10)
            trained.append(net.get_weights())
        return WeightCollection.mean(trained)
    assert result.weights == on_executor(spark, three_nets)


def test_checkpoint_and_resume_continue_the_history(spark, tmp_path, fmnist_train, fmnist_test):
    x, y = fmnist_train[0][:3000], fmnist_train[1][:3000]
    rdd = spark.sparkContext.parallelize(records(x, y), 2)
    make = lambda: SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2,
                                   tau=10, seed=5)
    metrics = tmp_path / "metrics.jsonl"
    first = make().fit(rdd, (fmnist_test[0][:500], fmnist_test[1][:500]), rounds=2,
                       checkpoint_dir=tmp_path / "ckpt", metrics_path=metrics, progress=False)
    manifest = json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())
    assert manifest["round"] == 2 and len(manifest["history"]) == 2
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "checkpoint.json", "round_000002.caffemodel", "round_000002.solverstate"]
    resumed = make().fit(rdd, (fmnist_test[0][:500], fmnist_test[1][:500]), rounds=4,
                         checkpoint_dir=tmp_path / "ckpt", resume=True,
                         metrics_path=metrics, progress=False)
    assert [h["round"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.history[:2] == first.history  # not recomputed
    assert resumed.history[2]["iterations"] == 30
    lines = [json.loads(l) for l in metrics.read_text().splitlines()]
    assert [l["round"] for l in lines] == [1, 2, 3, 4]
    assert all("val_accuracy" in l and "images_per_s" in l and "sync_s" in l for l in lines)


def test_bad_input_gives_clear_errors(spark, tmp_path, fmnist_train):
    sc = spark.sparkContext
    x, y = fmnist_train[0][:400], fmnist_train[1][:400]
    make = lambda **kw: SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(),
                                        num_workers=2, **kw)
    with pytest.raises(ValueError, match="tau must be a positive"):
        make(tau=0)
    with pytest.raises(DataError, match=r"100 training records cannot fill a minibatch of 64 "
                                        r"on each of 2 workers"):
        make(tau=5).fit(sc.parallelize(records(x[:100], y[:100]), 2), rounds=1,
                        progress=False)
    mixed = records(x, y)
    mixed[7] = (np.zeros((29, 28), np.uint8), 1)
    with pytest.raises(DataError, match=r"record \d+: shape \(29, 28\) differs"):
        make(tau=5).fit(sc.parallelize(mixed, 2), rounds=1, progress=False)
    bad_labels = y.copy()
    bad_labels[3] = 12
    with pytest.raises(DataError, match="label 12; the net classifies into 10 classes"):
        make(tau=5).fit(sc.parallelize(records(x, bad_labels), 2), rounds=1, progress=False)
    not_a_checkpoint = tmp_path / "junk"
    not_a_checkpoint.mkdir()
    (not_a_checkpoint / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a pysparknet checkpoint"):
        make(tau=5).fit(sc.parallelize(records(x, y), 2), rounds=1,
                        checkpoint_dir=not_a_checkpoint, resume=True, progress=False)
    # The cluster still trains afterwards.
    assert make(tau=2).fit(sc.parallelize(records(x, y), 2), rounds=1,
                           progress=False).history[0]["loss"] > 0


def test_a_worker_that_lost_its_solver_gets_its_data_while_the_others_wait(
        spark, fmnist_train):
    """Rounds run data-free on the kept solvers. When partition 0's worker has lost
    its solver (a new Python worker, a moved task), its task of the next round's job
    says so over its link before any round starts, and the job is run again carrying
    the data: only that solver is rebuilt, and nothing waits on a task that cannot
    train (one round a job here; segments: below)."""
    sc = spark.sparkContext
    x, y = fmnist_train[0][:1000], fmnist_train[1][:1000]
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2, tau=5,
                              seed=5, rounds="jobs")
    dropped = []

    def after_round(record):
        if record["round"] == 2:  # one task per executor, on its one Python worker
            executors = 3  # the module's local-cluster: all three run one of these at once
            dropped.append(sum(sc.parallelize(range(executors), executors)
                               .mapPartitions(solver_dropper(0)).collect()))
        return False

    outcome = {}

    def fit():
        try:
            outcome["result"] = trainer.fit(sc.parallelize(records(x, y), 2), rounds=4,
                                            progress=False, until=after_round)
        except Exception as error:  # noqa: BLE001 - re-raised below
            outcome["error"] = error
    run = threading.Thread(target=fit)
    run.start()
    run.join(timeout=300)
    if run.is_alive():
        sc.cancelAllJobs()
        pytest.fail("the round hung waiting for the partition that lost its solver")
    if "error" in outcome:
        raise outcome["error"]
    history = outcome["result"].history
    assert dropped == [1]
    assert [h["rebuilt_solvers"] for h in history] == [2, 0, 1, 0]
    assert all(np.isfinite(h["loss"]) for h in history)


def test_a_segment_whose_worker_lost_its_solver_reruns_with_the_data(
        spark, fmnist_train, tmp_path):
    """Segments end at checkpoints (every 2 rounds here), freeing the slots. A worker
    that lost its solver meanwhile says so when the next segment (data-free) starts:
    the segment starts again carrying the data, and only that solver is rebuilt."""
    sc = spark.sparkContext
    x, y = fmnist_train[0][:1000], fmnist_train[1][:1000]
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2, tau=5,
                              seed=5)
    assert trainer.schedule == "segments"
    dropped = []

    def after_round(record):
        if record["round"] == 2:  # the segment of rounds 1-2 has ended: slots are free
            dropped.append(sum(sc.parallelize(range(3), 3)
                               .mapPartitions(solver_dropper(0)).collect()))
        return False

    result = trainer.fit(sc.parallelize(records(x, y), 2), rounds=4, progress=False,
                         until=after_round, checkpoint_dir=tmp_path, checkpoint_every=2)
    assert dropped == [1]
    assert [h["rebuilt_solvers"] for h in result.history] == [2, 0, 1, 0]
    assert all(np.isfinite(h["loss"]) for h in result.history)


def test_segments_and_jobs_give_the_same_weights(spark, fmnist_train, tmp_path):
    """Same seed, same data: stepping through rounds inside one stage changes where
    the rounds are scheduled, not one bit of what they compute (checkpoints every 2
    rounds: three segments)."""
    x, y = fmnist_train[0][:3000], fmnist_train[1][:3000]
    rdd = spark.sparkContext.parallelize(records(x, y), 2)
    runs = {mode: SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2,
                                  tau=5, seed=9, rounds=mode).fit(
        rdd, rounds=5, checkpoint_dir=tmp_path / mode, checkpoint_every=2, progress=False)
        for mode in ("segments", "jobs")}
    assert runs["segments"].weights == runs["jobs"].weights
    assert ([h["loss"] for h in runs["segments"].history]
            == [h["loss"] for h in runs["jobs"].history])


def test_schedule_and_option_groups(spark):
    make = lambda **kw: SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), **kw)
    with pytest.raises(ValueError, match="rounds must be 'segments'.*or 'jobs'"):
        make(rounds="stages")
    with pytest.raises(ValueError, match="sync='spark'.*was removed"):
        make(sync="spark")
    assert make(rounds="jobs").schedule == make(schedule="jobs").schedule == "jobs"
    assert make(sync="socket").schedule == "segments"
    # The grouped options and the flat keywords say the same thing, once.
    grouped = make(faults=Faults(round_timeout=30.0), exchange=Exchange(tls=False))
    flat = make(round_timeout=30.0, tls=False)
    assert grouped.faults == flat.faults and grouped.exchange == flat.exchange
    with pytest.raises(ValueError, match="either inside Faults"):
        make(faults=Faults(), round_timeout=5.0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        make(round_timout=5.0)


def test_a_workers_error_is_its_own_kind_in_jobs_too(spark, fmnist_train):
    """A worker's exception crosses its link typed, whatever the schedule."""
    x, y = fmnist_train[0][:400], fmnist_train[1][:400].copy()
    y[3] = 12
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2, tau=5,
                              schedule="jobs")
    with pytest.raises(DataError, match=r"on a worker \(partition 0\).*label 12; the net "
                                        r"classifies into 10 classes"):
        trainer.fit((x, y), rounds=1, progress=False)


def test_divergence_stops_and_keeps_the_last_good_weights(spark, tmp_path, fmnist_train):
    x, y = fmnist_train[0][:1000], fmnist_train[1][:1000]
    solver = zoo.lenet_solver()
    solver.base_lr, solver.lr_policy = 0.3, "fixed"
    trainer = SparkNetTrainer(spark, zoo.lenet(), solver, num_workers=2, tau=20, seed=6)
    start = trainer.driver_net.get_weights().copy()
    with pytest.raises(TrainingDivergedError, match=r"round 1: a worker's loss is \[nan"):
        trainer.fit(spark.sparkContext.parallelize(records(x, y), 2), rounds=20,
                    checkpoint_dir=tmp_path / "ckpt", progress=False)
    manifest = json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())
    assert manifest["round"] == 0
    kept = Net(zoo.lenet())
    kept.load(tmp_path / "ckpt" / manifest["model"])
    assert kept.get_weights() == start
    # The executors lived through it: the same cluster trains a sane net next.
    good = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2, tau=5)
    assert good.fit(spark.sparkContext.parallelize(records(x, y), 2), rounds=1,
                    progress=False).history[0]["rebuilt_solvers"] == 2


def test_lenet_two_workers_reach_90_percent(spark, fmnist_train, fmnist_test):
    """K=2, tau=50 on a local cluster; Caffe alone reaches 90.53% at 8,000 iterations.
    (Measured: 90.11% after 100 rounds, 90.64% after 120.)"""
    rdd = spark.sparkContext.parallelize(records(*fmnist_train), 2)
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2, tau=50,
                              seed=1)
    result = trainer.fit(rdd, fmnist_test, rounds=120, validate_every=1000, progress=False)
    final = result.history[-1]
    print(f"K=2, tau=50, 120 rounds: {final}")
    assert final["val_accuracy"] >= 0.90
    assert sum(h["rebuilt_solvers"] for h in result.history[1:]) == 0
