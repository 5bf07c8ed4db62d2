"""LeNet trained through Net on the real Fashion-MNIST."""
from __future__ import annotations


from pysparknet import Net, zoo


def test_lenet_reaches_caffe_accuracy_in_2000_iterations(fmnist_train, fmnist_test):
    """Caffe's own tool reaches 88.07% here (shared/DATA.md); we ask >= 87.5%."""
    net = Net(zoo.lenet(batch_size=64), zoo.lenet_solver(), seed=1)
    net.set_training_data(fmnist_train)
    net.set_validation_data(fmnist_test)
    first = net.train(100)["loss"]
    last = net.train(1900)["loss"]
    assert net.iteration == 2000
    assert last < first
    scores = net.test()  # all 10,000 test images: 100 batches of 100
    print(f"LeNet/Fashion-MNIST, 2000 iterations: {scores}")
    assert scores["accuracy"] >= 0.875
    assert 0 < scores["loss"] < 0.5


def test_records_and_arrays_feed_the_same_batches(fmnist_train):
    """An iterable of (ndarray, label) records trains exactly like the arrays."""
    images, labels = fmnist_train[0][:300], fmnist_train[1][:300]
    from_arrays = Net(zoo.lenet(), zoo.lenet_solver(), seed=2)
    from_arrays.set_training_data((images, labels))
    from_arrays.train(6)  # 384 records: wraps around the 300
    from_records = Net(zoo.lenet(), zoo.lenet_solver(), seed=2)
    from_records.set_training_data([(im, int(lab)) for im, lab in zip(images, labels)])
    from_records.train(6)
    assert from_arrays.get_weights() == from_records.get_weights()


def test_a_rebuilt_solver_reads_on_where_its_predecessor_was(fmnist_train):
    """A solver rebuilt after 7 iterations (weights, history and iteration carried
    over, the data skipped on) trains on exactly as the first would have, from
    arrays and from records, across a wrap of the data."""
    images, labels = fmnist_train[0][:300], fmnist_train[1][:300]
    for data in ((images, labels), [(im, int(lab)) for im, lab in zip(images, labels)]):
        straight = Net(zoo.lenet(), zoo.lenet_solver(), seed=4)
        straight.set_training_data(data)
        straight.train(7)
        weights, history = straight.get_weights(), straight.get_history()
        straight.train(5)
        rebuilt = Net(zoo.lenet(), zoo.lenet_solver(), seed=4)
        rebuilt.set_training_data(data)
        rebuilt.iteration = 7
        rebuilt.skip_training_batches(7)  # 448 records: past one pass of 300
        rebuilt.set_weights(weights)
        rebuilt.set_history(history)
        rebuilt.train(5)
        assert rebuilt.get_weights() == straight.get_weights()


def test_test_only_net_scores_trained_weights(tmp_path, fmnist_train, fmnist_test):
    net = Net(zoo.lenet(), zoo.lenet_solver(), seed=3)
    net.set_training_data(fmnist_train)
    net.train(200)
    net.set_validation_data(fmnist_test)
    trained = net.test(20)
    net.save(tmp_path / "lenet.caffemodel")
    deploy = Net(zoo.lenet())  # no solver: a TEST-phase net
    deploy.load(tmp_path / "lenet.caffemodel")
    deploy.set_validation_data(fmnist_test)
    assert deploy.test(20) == trained


def test_records_are_assembled_ahead_on_a_background_thread(fmnist_train):
    """Batches from an iterable are prefetched off the solver's thread, in order."""
    import threading

    images, labels = fmnist_train[0][:640], fmnist_train[1][:640]
    threads, served = set(), []

    def records():
        for i, (im, lab) in enumerate(zip(images, labels)):
            threads.add(threading.current_thread().name)
            served.append(i)
            yield im, int(lab)

    net = Net(zoo.lenet(), zoo.lenet_solver(), seed=2)
    net.set_training_data(records())
    net.train(2)
    assert threads == {"minibatch-prefetch"}
    assert served == list(range(len(served))) and len(served) > 2 * 64  # read ahead
    reference = Net(zoo.lenet(), zoo.lenet_solver(), seed=2)
    reference.set_training_data((images, labels))
    reference.train(2)
    assert net.get_weights() == reference.get_weights()
    net.close()
