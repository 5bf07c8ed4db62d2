"""pysparknet and Caffe's own command-line tool, built from the same source,
read each other's files and compute the same numbers."""
from __future__ import annotations

import numpy as np

from conftest import caffe_test_scores, lenet_lmdb_prototxt, run_caffe, write_lenet_for_tool
from pysparknet import Net, zoo
from pysparknet.prototxt import to_text


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
    """Same seed, same data order, same iterations: the same weights as `caffe train`,
    from the seeded initialisation on (the feed layer draws Caffe's RNG as its Data
    layer does, so even the fillers agree)."""
    iters = 200
    _, solver = write_lenet_for_tool(tmp_path, fmnist_lmdb, max_iter=iters, random_seed=21,
                                     test_interval=10**9, test_iter=[1], snapshot=100)
    run_caffe(["train", "-solver", str(solver)])
    tool_at = {}
    for it in (100, iters):
        tool_at[it] = Net(zoo.lenet())
        tool_at[it].load(tmp_path / f"lenet_iter_{it}.caffemodel")

    ours = Net(zoo.lenet(), zoo.lenet_solver(), seed=21)
    start = ours.get_weights()
    ours.set_training_data(fmnist_train)  # the LMDB holds the same records in order
    ours.train(100)
    assert ours.get_weights() == tool_at[100].get_weights()
    ours.train(iters - 100)
    a, b = ours.get_weights().flat, tool_at[iters].get_weights().flat
    rel = np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))
    print(f"max relative difference to caffe train after {iters} iterations: {rel:.3g}")
    assert np.max(np.abs(a - start.flat)) > 1e-3  # training did move the weights
    assert rel <= 1e-6


def test_random_crop_and_mirror_match_caffes_data_layer(tmp_path, fmnist_train, fmnist_lmdb):
    """With crop_size and mirror, the feed layer draws the same per-image crops and
    flips as Caffe's Data layer: caffe train from the LMDB gives the same weights."""
    from pysparknet.prototxt import parse_net

    def with_augmentation(net):
        for layer in net.layer:
            if layer.type in ("Data", "Input"):
                layer.transform_param.crop_size = 24
                layer.transform_param.mirror = True
        return net

    iters = 60
    train_db, test_db = fmnist_lmdb
    ours_net = with_augmentation(zoo.data_layers_to_inputs(
        parse_net(zoo.caffe_file("examples/mnist/lenet_train_test.prototxt")), (1, 24, 24)))
    start = Net(ours_net, zoo.lenet_solver(), seed=5)
    start.save(tmp_path / "start.caffemodel")
    model = tmp_path / "aug.prototxt"
    model.write_text(to_text(with_augmentation(lenet_lmdb_prototxt(train_db, test_db))))
    solver = zoo.lenet_solver()
    solver.net, solver.snapshot_prefix = str(model), str(tmp_path / "aug")
    solver.max_iter, solver.random_seed = iters, 5
    solver.test_interval, solver.test_initialization = 10**9, False
    solver.test_iter[:] = [1]
    (tmp_path / "solver.prototxt").write_text(to_text(solver))
    run_caffe(["train", "-solver", str(tmp_path / "solver.prototxt"),
               "-weights", str(tmp_path / "start.caffemodel")])
    tool = Net(ours_net)
    tool.load(tmp_path / f"aug_iter_{iters}.caffemodel")

    ours = Net(ours_net, zoo.lenet_solver(), seed=5)
    ours.load(tmp_path / "start.caffemodel")
    ours.set_training_data(fmnist_train)
    ours.train(iters)
    assert ours.get_weights() == tool.get_weights()
    # The augmented run is not the plain one.
    plain = Net(ours_net, zoo.lenet_solver(), seed=5)
    plain.load(tmp_path / "start.caffemodel")
    plain.set_training_data((fmnist_train[0][:, 2:26, 2:26], fmnist_train[1]))
    plain.train(iters)
    assert plain.get_weights() != ours.get_weights()
