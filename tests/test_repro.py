"""repro/: SparkNet's ImageNet runs on a real JPEG set, the tau/K study, the speedup model.

The AlexNet and GoogLeNet runs are the real model-zoo nets (real forward and
backward at a small batch) on an ImageNet folder layout built from the real
photos PyPI's foolbox ships (plus variants of them); the study runs real Spark
beside the in-process grid at a small image budget.
"""
from __future__ import annotations

import json
import math

import pytest

from pysparknet.cli import main
from pysparknet.errors import DataError
from pysparknet.repro import jpeg_set, speedup_model, tau_k_spark
from pysparknet.repro.imagenet import check_same_classes, with_top5
from pysparknet.repro.study import write_outputs
from pysparknet.repro.tau_k import Cell, Settings, cells_as_json, run_grid
from pysparknet.zoo import load


@pytest.fixture(scope="module")
def imagenet_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    classes = jpeg_set.build(root, train_per_class=4, val_per_class=2)
    return root, classes


def _run_net(net, root, tmp_path, rounds, resume=False):
    return main(["repro", net, "--train", str(root / "train"), "--val", str(root / "val"),
                 "--workers", "2", "--tau", "2", "--rounds", str(rounds), "--batch", "2",
                 "--test-batch", "4", "--validate-every", "1", "--checkpoint-every", "1",
                 "--executor-mb", "2048", "--checkpoint-dir", str(tmp_path / "ckpt"),
                 "--metrics", str(tmp_path / "metrics.jsonl"), "--plot",
                 str(tmp_path / "top_k.png"), "--quiet"] + (["--resume"] if resume else []))


@pytest.mark.parametrize("net, top1, top5", [
    ("alexnet", "val_accuracy", "val_accuracy_top5"),
    ("googlenet", "val_loss3/top-1", "val_loss3/top-5")])
def test_imagenet_run_trains_checkpoints_and_resumes(net, top1, top5, imagenet_folder,
                                                     tmp_path, capsys):
    root, classes = imagenet_folder
    assert len(classes) >= 10 and all(c.startswith("n") and len(c) == 9 for c in classes)
    assert _run_net(net, root, tmp_path, rounds=2) == 0
    assert _run_net(net, root, tmp_path, rounds=3, resume=True) == 0
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == [1, 2, 3]  # the second run went on from round 2
    assert rows[-1]["iterations"] == 6
    for row in rows:
        assert 0.0 <= row[top1] <= row[top5] <= 1.0
        assert math.isfinite(row["val_loss"] if "val_loss" in row else row["val_loss3/loss3"])
    assert (tmp_path / "top_k.png").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "top-5" in out and f"{2 * len(classes)} val images" in out


def test_alexnet_gets_a_top5_layer_googlenet_keeps_its_own():
    alexnet, scores = with_top5(load("alexnet", batch_size=2, test_batch_size=2).net)
    added = [layer for layer in alexnet.layer if layer.name == scores.top5]
    assert scores.top1 == "accuracy" and added[0].accuracy_param.top_k == 5
    assert list(added[0].bottom) == ["fc8", "label"]
    googlenet = load("googlenet", batch_size=2, test_batch_size=2).net
    same, scores = with_top5(googlenet)
    assert same is googlenet and (scores.top1, scores.top5) == ("loss3/top-1", "loss3/top-5")


def test_train_and_val_must_hold_the_same_classes(tmp_path):
    for split, classes in (("train", ["n01", "n02"]), ("val", ["n01", "n03"])):
        for cls in classes:
            (tmp_path / split / cls).mkdir(parents=True)
    with pytest.raises(DataError, match=r"only in train \['n02'\], only in val \['n03'\]"):
        check_same_classes(tmp_path / "train", tmp_path / "val")


SMALL = Settings(workers=(1, 2), taus=(5, 10), budget_images=10_240, batch=32, tests=4)


@pytest.fixture(scope="module")
def small_study(fmnist_train, fmnist_test, tmp_path_factory):
    """The study at a small budget: the grid in-process, K=2 tau=10 on real Spark."""
    out = tmp_path_factory.mktemp("tau_k")
    computes, syncs, runs = tau_k_spark.spark_runs(SMALL, (2,), (10,))
    computes.update(tau_k_spark.measure_costs(SMALL, (1,))[0])
    cells = run_grid(SMALL, fmnist_train, fmnist_test)
    results = {"settings": SMALL.__dict__, "target": 0.6, "machine": "test",
               "started": "now", "load_before": [0.0], "compute_ms": computes,
               "sync_s": syncs, "spark_runs": runs, "cells": cells_as_json(cells)}
    (out / "tau_k.json").write_text(json.dumps(results))
    return out, results, cells


def test_spark_rounds_agree_with_the_in_process_grid(small_study):
    _, results, cells = small_study
    (run,) = results["spark_runs"]
    cell = next(c for c in cells if (c.workers, c.tau) == (2, 10))
    assert [p["round"] for p in run["points"]] == [p["round"] for p in cell.points] == \
        [4, 8, 12, 16]
    for spark_point, grid_point in zip(run["points"], cell.points):
        # Same slices, seeds and averaging; only OpenBLAS's thread count differs.
        assert abs(spark_point["accuracy"] - grid_point["accuracy"]) < 0.02
    assert cell.points[-1]["images"] == SMALL.budget_images
    assert cell.points[-1]["accuracy"] > 0.6  # ten classes: chance is 0.1
    assert results["compute_ms"][2] > 0 and results["sync_s"][2] > 0


def test_every_cell_sees_the_same_images_and_k1_serves_every_tau(small_study):
    _, _, cells = small_study
    assert {c.points[-1]["images"] for c in cells} == {SMALL.budget_images}
    one = [c for c in cells if c.workers == 1]
    assert len(one) == 2 and one[0].points == one[1].points


def test_tables_and_figures_are_written(small_study):
    out, results, _ = small_study
    text = write_outputs(results, out, 0.6)
    assert "| tau \\ K | 1 | 2 |" in text and "within 25%" in text
    for name in ("accuracy_vs_time.png", "accuracy_vs_iterations.png", "accuracy_vs_rounds.png",
                 "accuracy_heat_map.png"):
        assert (out / name).stat().st_size > 10_000
    assert (out / "tau_k_accuracy.csv").read_text().count("\n") == 5


def test_speedup_model_command_prints_its_inputs_and_check(small_study, tmp_path, capsys):
    out, _, _ = small_study
    assert main(["repro", "speedup-model", "--results", str(out), "--target", "0.6",
                 "--sync-ms", "10", "1000", "-o", str(tmp_path / "s.png")]) == 0
    printed = capsys.readouterr().out
    assert "inputs: rounds to 60.0%" in printed and "S=1000 ms" in printed
    assert "check against the measured Spark runs" in printed
    assert (tmp_path / "s.png").stat().st_size > 10_000


def _cell(workers, tau, reached_at):
    return Cell(workers, tau, [{"round": reached_at // tau, "iterations": reached_at,
                                "images": 0, "accuracy": 0.9, "loss": 0.3}])


def test_speedup_model_arithmetic():
    table = speedup_model.iterations_to_target(
        [_cell(1, 10, 1000), _cell(2, 10, 800), _cell(2, 100, 1000), _cell(4, 10, 600),
         _cell(4, 100, 900), _cell(1, 100, 1000)], 0.85)
    costs = speedup_model.Costs({1: 10.0, 2: 10.0, 4: 10.0}, {2: 0.5, 4: 1.0}, "given")
    # 80 rounds x (10 x 10 ms + 0.5 s) = 48 s; one net: 1,000 x 10 ms = 10 s
    assert speedup_model.predicted_s(table, costs, 2, 10) == pytest.approx(48.0)
    assert speedup_model.speedup(table, costs, 2, 10) == pytest.approx(10 / 48)
    # between K=2 and K=4 at tau=10: log-linear in K, so sqrt(800 x 600) at K=sqrt(8)
    assert speedup_model.interpolated_iterations(table, 2, 10) == 800
    costs_3 = speedup_model.Costs({1: 10.0, 3: 10.0}, {3: 0.0}, "given")
    middle = speedup_model.interpolated_iterations(table, 3, 10)
    assert 600 < middle < 800
    assert speedup_model.speedup(table, costs_3, 3, 10) == pytest.approx(
        1000 / (math.ceil(middle / 10) * 10))
    with pytest.raises(speedup_model.NoRoundsError, match="outside what reached the target"):
        speedup_model.interpolated_iterations(table, 8, 10)


def test_repro_help_names_every_experiment(capsys):
    with pytest.raises(SystemExit):
        main(["repro", "--help"])
    printed = capsys.readouterr().out
    for name in ("alexnet", "googlenet", "tau-k", "speedup-model"):
        assert name in printed
