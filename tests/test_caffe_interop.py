"""pysparknet and Caffe's own command-line tool, built from the same source,
read each other's files and compute the same numbers."""
from __future__ import annotations

import numpy as np

from conftest import caffe_test_scores, lenet_lmdb_prototxt, run_caffe
from pysparknet import Net, zoo
from pysparknet.prototxt import to_text


def write_lenet_for_tool(tmp_path, fmnist_lmdb, **solver_fields):
    train_db, test_db = fmnist_lmdb
    model = tmp_path / "lenet_train_test.prototxt"
    model.write_text(to_text(lenet_lmdb_prototxt(train_db, test_db)))
    solver = zoo.lenet_solver()
    solver.net = str(model)
    solver.snapshot_prefix = str(tmp_path / "lenet")
    solver.test_initialization = False
    for name, value in solver_fields.items():
        if isinstance(value, list):
            getattr(solver, name)[:] = value
        else:
            setattr(solver, name, value)
    solver_path = tmp_path / "lenet_solver.prototxt"
    solver_path.write_text(to_text(solver))
    return model, solver_path


def test_net_caffemodel_scores_the_same_in_caffe_test(tmp_path, fmnist_train, fmnist_test,
                                                      fmnist_lmdb):
    net = Net(zoo.lenet(), zoo.lenet_solver(), seed=4)
    net.set_training_data(fmnist_train)
    net.train(300)
    net.set_validation_data(fmnist_test)
    ours = net.test(100)  # all 10,000 test images
    net.save(tmp_path / "ours.caffemodel")
    model, _ = write_lenet_for_tool(tmp_path, fmnist_lmdb)
    log = run_caffe(["test", "-model", str(model), "-weights",
                     str(tmp_path / "ours.caffemodel"), "-iterations", "100"])
    theirs = caffe_test_scores(log)
    print(f"Net.test: {ours}; caffe test: {theirs}")
    assert abs(theirs["accuracy"] - ours["accuracy"]) < 1e-6
    assert abs(theirs["loss"] - ours["loss"]) < 1e-5


def test_caffe_train_caffemodel_loads_into_net(tmp_path, fmnist_test, fmnist_lmdb):
    model, solver = write_lenet_for_tool(tmp_path, fmnist_lmdb, max_iter=200,
                                         test_interval=200, test_iter=[100])
    log = run_caffe(["train", "-solver", str(solver)])
    tool_accuracy = float(
        [l for l in log.splitlines() if "Test net output #0: accuracy" in l][-1].split("= ")[-1])
    net = Net(zoo.lenet())
    net.load(tmp_path / "lenet_iter_200.caffemodel")
    net.set_validation_data(fmnist_test)
    ours = net.test(100)
    print(f"caffe train's own test: {tool_accuracy}; Net.test: {ours['accuracy']}")
    assert abs(ours["accuracy"] - tool_accuracy) < 1e-4  # caffe prints 4 digits


def test_training_matches_caffe_train_exactly(tmp_path, fmnist_train, fmnist_lmdb):
    """Same start, same seed, same data order: the same weights after 200 iterations."""
    iters = 200
    start = Net(zoo.lenet(), zoo.lenet_solver(), seed=21)
    start.save(tmp_path / "start.caffemodel")
    _, solver = write_lenet_for_tool(tmp_path, fmnist_lmdb, max_iter=iters, random_seed=21,
                                     test_interval=10**9, test_iter=[1])
    run_caffe(["train", "-solver", str(solver), "-weights", str(tmp_path / "start.caffemodel")])
    tool = Net(zoo.lenet())
    tool.load(tmp_path / f"lenet_iter_{iters}.caffemodel")

    ours = Net(zoo.lenet(), zoo.lenet_solver(), seed=21)
    ours.load(tmp_path / "start.caffemodel")
    ours.set_training_data(fmnist_train)  # the LMDB holds the same records in order
    ours.train(iters)
    a, b = ours.get_weights().flat, tool.get_weights().flat
    rel = np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))
    moved = np.max(np.abs(a - start.get_weights().flat))
    print(f"max relative difference to caffe train after {iters} iterations: {rel:.3g}")
    assert moved > 1e-3  # training did move the weights
    assert rel <= 1e-6
