"""MLflow tracking (spark/tracking.py): real fits on a local-cluster log into a
file store (mlruns/ under the test's folder), read back with MLflow's own client."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pysparknet import Net, zoo
from pysparknet.spark import SparkNetTrainer

mlflow = pytest.importorskip("mlflow", reason='needs pip install "pysparknet[mlflow]"')
from mlflow import MlflowClient  # noqa: E402

ROUNDS = 3


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A tracking URI of a fresh file store. MLflow 3.x keeps the file store in
    maintenance (a database by default) and refuses it unless allowed; the client and
    the store work the same over either."""
    uri = f"file:{tmp_path / 'mlruns'}"
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def records(spark, data, n):
    images, labels = data
    return spark.sparkContext.parallelize(list(zip(images[:n], labels[:n].tolist())), 2)


def lenet_trainer(spark, tau=5):
    return SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2, tau=tau,
                           seed=1)


def every_run(uri):
    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments) if experiments else []


def test_cli_train_mlflow(store, tmp_path):
    """`sparknet train --mlflow`: a run in the experiment MLFLOW_EXPERIMENT_NAME names
    (first in the module: no other cluster up yet)."""
    command = [sys.executable, "-m", "pysparknet.cli", "train", "--workers", "2", "--tau",
               "2", "--rounds", "2", "--validate-every", "100", "--quiet", "--mlflow",
               "--master", "local-cluster[2,1,1024]"]
    env = {**os.environ, "MLFLOW_EXPERIMENT_NAME": "cli"}
    out = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(store)
    [run] = client.search_runs([client.get_experiment_by_name("cli").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["tau"] == "2"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2]
    assert "model/weights.caffemodel" in {
        f.path for f in client.list_artifacts(run.info.run_id, "model")}


def test_a_fit_in_an_active_run_logs_params_rounds_checkpoint_and_model(
        spark, fmnist_train, fmnist_test, store, tmp_path):
    trainer = lenet_trainer(spark)
    validation = (fmnist_test[0][:200], fmnist_test[1][:200])
    with mlflow.start_run() as active:
        result = trainer.fit(records(spark, fmnist_train, 1000), validation, rounds=ROUNDS,
                             checkpoint_dir=tmp_path / "ckpt", checkpoint_every=2,
                             metrics_path=tmp_path / "rounds.jsonl", progress=False)
        assert mlflow.active_run().info.run_id == active.info.run_id  # still the caller's
    client = MlflowClient(store)
    run = client.get_run(active.info.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert {key: params[key] for key in ("net", "num_workers", "tau", "rounds", "exchange",
                                         "base_lr", "momentum", "batch_size")} == {
        "net": "LeNet", "num_workers": "2", "tau": "5", "rounds": "3", "exchange": "driver",
        "base_lr": "0.01", "momentum": "0.9", "batch_size": "64"}

    loss = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in loss] == [
        (h["round"], pytest.approx(h["loss"])) for h in result.history]
    for name in ("val_accuracy", "images_per_s", "sync_s", "iterations"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [1, 2, 3]
    stamps = [m.timestamp for m in loss]  # each round's wall clock, inside the run's
    assert run.info.start_time <= stamps[0] <= stamps[-1] <= run.info.end_time
    assert stamps == sorted(stamps)

    def files(path):
        return sorted(f.path for f in client.list_artifacts(run.info.run_id, path))
    assert files("model") == ["model/deploy.prototxt", "model/net.prototxt",
                              "model/solver.prototxt", "model/weights.caffemodel"]
    assert files("checkpoint") == ["checkpoint/checkpoint.json",
                                   "checkpoint/round_000003.caffemodel",
                                   "checkpoint/round_000003.solverstate"]
    assert "rounds.jsonl" in files(None)

    model = Path(client.download_artifacts(run.info.run_id, "model", str(tmp_path / "back")))
    with Net(model / "net.prototxt", model / "solver.prototxt") as net:
        net.load(model / "weights.caffemodel")
        assert np.array_equal(net.get_weights().flat, result.weights.flat)


def test_no_active_run_logs_nothing_and_mlflow_true_starts_one(spark, fmnist_train, store):
    trainer = lenet_trainer(spark, tau=2)
    data = records(spark, fmnist_train, 400)
    trainer.fit(data, rounds=1, progress=False)  # mlflow imported, no run active
    assert every_run(store) == []

    result = trainer.fit(data, rounds=1, progress=False, mlflow=True)
    [run] = every_run(store)
    assert mlflow.active_run() is None  # the run the fit started, it ended
    assert run.info.status == "FINISHED" and run.data.params["rounds"] == "1"
    assert run.data.metrics["loss"] == pytest.approx(result.history[-1]["loss"])


def test_a_second_fit_with_other_settings_gets_a_nested_run(spark, fmnist_train, store):
    """MLflow's params cannot change: a run holding one fit's settings takes another
    fit's as a child run."""
    trainer = lenet_trainer(spark, tau=2)
    data = records(spark, fmnist_train, 400)
    with mlflow.start_run() as parent:
        trainer.fit(data, rounds=1, progress=False)
        trainer.fit(data, rounds=2, progress=False)
    client = MlflowClient(store)
    [child] = [r for r in every_run(store) if r.info.run_id != parent.info.run_id]
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert client.get_run(parent.info.run_id).data.params["rounds"] == "1"
    assert child.data.params["rounds"] == "2"
    assert [m.step for m in client.get_metric_history(child.info.run_id, "loss")] == [1, 2]


def test_the_classifier_passes_mlflow_on(spark, fmnist_train, store):
    from pysparknet.ml import SparkNetClassifier

    x, y = fmnist_train[0][:400], fmnist_train[1][:400]
    frame = spark.createDataFrame(pd.DataFrame({"image": [im.ravel().tolist() for im in x],
                                                "label": y.astype(float)}))
    SparkNetClassifier(zooModel="lenet", featuresCol="image", numWorkers=2, tau=2,
                       rounds=2, seed=1, mlflow=True).fit(frame)
    [run] = every_run(store)
    assert run.data.params["num_workers"] == "2" and run.data.params["rounds"] == "2"
    assert {f.path for f in MlflowClient(store).list_artifacts(run.info.run_id, "model")} \
        >= {"model/net.prototxt", "model/weights.caffemodel"}


def test_mlflow_true_without_mlflow_names_the_extra(spark, monkeypatch):
    trainer = lenet_trainer(spark)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` fails, as uninstalled
    with pytest.raises(ImportError, match=r'pip install "pysparknet\[mlflow\]"'):
        trainer.fit((np.zeros((1, 1, 28, 28), np.float32), np.zeros(1)), mlflow=True)
    with pytest.raises(ValueError, match="mlflow must be None"):
        trainer.fit((np.zeros((1, 1, 28, 28), np.float32), np.zeros(1)), mlflow="yes")


def test_pysparknet_never_imports_mlflow_itself(tmp_path):
    """Without mlflow=True nothing imports it: a fit without MLflow is as before."""
    code = ("import sys, pysparknet, pysparknet.spark, pysparknet.ml, pysparknet.cli\n"
            "assert 'mlflow' not in sys.modules, 'imported mlflow'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
