"""Spark ML: SparkNetClassifier in a Pipeline on a real local-cluster[2], its model
scoring DataFrames on the executors, saved and loaded in Spark ML's layout."""
from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import StringIndexer
from pyspark.sql import types as T

from conftest import caffe_test_scores, run_caffe, write_lenet_for_tool
from pysparknet import DataError, Net, zoo
from pysparknet.data import encode_image
from pysparknet.ml import SparkNetClassifier, SparkNetModel
from pysparknet.prototxt import to_text


def png_frame(spark, images, labels, partitions=2):
    """Fashion-MNIST as a DataFrame of PNG bytes and class names ("class0".."class9")."""
    frame = pd.DataFrame({"id": np.arange(len(images)),
                          "image": [encode_image(im) for im in images],
                          "kind": [f"class{int(d)}" for d in labels]})
    return spark.createDataFrame(frame).repartition(partitions)


def executor_stats(spark, key):
    """pid -> predict.stats(key) of the executors' Python workers that run SQL's Python
    UDFs (a pool of their own, apart from the RDD API's)."""
    def read(frames):
        from pysparknet import predict
        for _ in frames:
            time.sleep(0.2)
        stats = predict.stats(key)
        yield pd.DataFrame({"pid": [os.getpid()], "builds": [stats["builds"]],
                            "lookups": [stats["lookups"]],
                            "passes": [stats["forward_passes"]]})
    rows = spark.range(0, 16, numPartitions=16).mapInPandas(
        read, "pid long, builds long, lookups long, passes long").collect()
    return {row["pid"]: {"builds": row["builds"], "lookups": row["lookups"],
                         "forward_passes": row["passes"]} for row in rows}


def test_pipeline_scores_like_net_test_and_saves(spark, fmnist_train, fmnist_test,
                                                 fmnist_lmdb, tmp_path):
    """StringIndexer + SparkNetClassifier (LeNet): transform on the 10,000 test images
    scores as Net.test does with the same weights; the net is built once per worker;
    the saved pipeline predicts the same, and `caffe test` reads its caffemodel."""
    train = png_frame(spark, fmnist_train[0][:4000], fmnist_train[1][:4000])
    test = png_frame(spark, *fmnist_test)
    indexer = StringIndexer(inputCol="kind", outputCol="label", stringOrderType="alphabetAsc")
    classifier = SparkNetClassifier(zooModel="lenet", featuresCol="image", numWorkers=2,
                                    tau=20, rounds=3, seed=1)
    fitted = Pipeline(stages=[indexer, classifier]).fit(train)
    model = fitted.stages[-1]
    assert isinstance(model, SparkNetModel) and len(model.history) == 3

    start = time.perf_counter()
    scored = fitted.transform(test).select("id", "label", "prediction", "probability") \
        .toPandas().sort_values("id")  # (a Spark orderBy would score twice: its sample)
    print(f"transform of 10,000 images: {time.perf_counter() - start:.1f} s")
    ours = int((scored["prediction"] == scored["label"]).sum())
    net = Net(zoo.lenet())
    net.set_weights(model.weights)
    net.set_validation_data(fmnist_test)
    theirs = net.test(100)["accuracy"]
    print(f"transform: {ours / 10000:.4f}; Net.test: {theirs:.4f}")
    assert ours == round(theirs * 10000)  # to the image
    probabilities = np.stack(scored["probability"].map(lambda v: v.toArray()))
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)

    stats = {pid: s for pid, s in executor_stats(spark, model._weights_key()).items()
             if s["lookups"]}
    print(f"per worker: {stats}")
    assert len(stats) == 2 and all(s["builds"] == 1 for s in stats.values())
    assert sum(s["forward_passes"] for s in stats.values()) == 100  # 10,000 in batches of 100

    path = str(tmp_path / "pipeline")
    fitted.save(path)
    loaded = PipelineModel.load(path)
    again = loaded.transform(test).select("id", "prediction").toPandas().sort_values("id")
    assert (again["prediction"].to_numpy() == scored["prediction"].to_numpy()).all()

    saved = tmp_path / "pipeline" / "stages"
    caffemodel = next(saved.glob("*SparkNetModel*")) / "model" / "weights.caffemodel"
    prototxt, _ = write_lenet_for_tool(tmp_path, fmnist_lmdb)
    log = run_caffe(["test", "-model", str(prototxt), "-weights", str(caffemodel),
                     "-iterations", "100"])
    assert abs(caffe_test_scores(log)["accuracy"] - theirs) < 1e-6


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """A SparkNetModel of LeNet with its initial weights (no fit needed)."""
    net = Net(zoo.lenet(), zoo.lenet_solver(), seed=2)
    model = SparkNetModel(net.get_weights(), netPrototxt=to_text(zoo.lenet()),
                          solverPrototxt=to_text(zoo.lenet_solver()), featuresCol="image",
                          topK=3)
    return model, net


def test_arrays_bytes_and_image_structs_score_alike(spark, untrained, fmnist_test):
    model, net = untrained
    images = fmnist_test[0][:300]
    arrays = spark.createDataFrame(pd.DataFrame({"image": [im.ravel().astype(float).tolist()
                                                           for im in images]}))
    pngs = spark.createDataFrame(pd.DataFrame({"image": [encode_image(im) for im in images]}))
    raw = spark.createDataFrame(pd.DataFrame({"image": [im.tobytes() for im in images]}))
    struct = T.StructType([T.StructField(n, t) for n, t in (
        ("origin", T.StringType()), ("height", T.IntegerType()), ("width", T.IntegerType()),
        ("nChannels", T.IntegerType()), ("mode", T.IntegerType()),
        ("data", T.BinaryType()))])
    structs = spark.createDataFrame(
        [((f"{i}.png", 28, 28, 1, 0, bytearray(im.tobytes())),) for i, im in enumerate(images)],
        T.StructType([T.StructField("image", struct)]))
    raw_model = model.copy({model.imageShape: [1, 28, 28]})  # binary: raw pixels
    got = [m.transform(df).select("prediction", "topK").toPandas()
           for m, df in ((model, arrays), (model, pngs), (model, structs), (raw_model, raw))]
    for other in got[1:]:
        assert (other["prediction"] == got[0]["prediction"]).all()
    net.set_validation_data((images, np.zeros(len(images))))
    net.test(3)  # batches of 100: the last pass holds images 200..299
    expected = net.blob("ip2", 1).argmax(axis=1)
    assert (got[0]["prediction"].to_numpy()[200:] == expected).all()
    assert [row[0] for row in got[0]["topK"]] == got[0]["prediction"].astype(int).tolist()


def test_bad_input_is_named(spark, untrained, tmp_path):
    model, _ = untrained
    wrong_type = spark.createDataFrame([("not an image",)], ["image"])
    with pytest.raises(DataError, match="featuresCol 'image'.*string"):
        model.transform(wrong_type)
    with pytest.raises(DataError, match="featuresCol 'image' is not a column"):
        model.transform(spark.createDataFrame([(1.0,)], ["pixels"]))
    wrong_shape = spark.createDataFrame([([0.0] * 100,)], ["image"])
    with pytest.raises(Exception, match=r"column 'image', partition \d+, row 0: 100 values "
                                        r"cannot be shaped \(1, 28, 28\)"):
        model.transform(wrong_shape).collect()
    nulls = model.copy({model.onBadRecord: "null"}).transform(
        spark.createDataFrame([([0.0] * 100,), ([0.0] * 784,)], ["image"]).coalesce(1))
    rows = nulls.collect()
    assert rows[0]["prediction"] is None and rows[1]["prediction"] is not None
    # Raw pixel bytes (binary with imageShape): a short row is named the same way, and
    # a batch that holds one scores its good rows (the stacked path steps aside).
    raw_model = model.copy({model.imageShape: [1, 28, 28]})
    short = spark.createDataFrame([(bytearray(100),), (bytearray(784),)], ["image"])
    with pytest.raises(Exception, match=r"column 'image', partition \d+, row 0: 100 values "
                                        r"cannot be shaped \(1, 28, 28\)"):
        raw_model.transform(short.coalesce(1)).collect()
    rows = raw_model.copy({model.onBadRecord: "null"}).transform(short.coalesce(1)).collect()
    assert rows[0]["prediction"] is None and rows[1]["prediction"] is not None
    with pytest.raises(DataError, match="labelCol 'label' is not a column"):
        SparkNetClassifier(zooModel="lenet", featuresCol="image").fit(wrong_shape)

    path = tmp_path / "model"
    model.save(str(path))
    (path / "model" / "weights.caffemodel").unlink()
    with pytest.raises(FileNotFoundError, match="weights.caffemodel is missing"):
        SparkNetModel.load(str(path))


def test_fit_starts_from_initial_weights(spark, fmnist_train, tmp_path):
    """initialWeights: the fit starts from a .caffemodel (layers by name); numClasses
    gives a new classifier, freezeLayers keeps conv1 exactly as copied."""
    source = Net(zoo.lenet(), zoo.lenet_solver(), seed=7)
    source.save(tmp_path / "start.caffemodel")
    x, y = fmnist_train[0][:1000], fmnist_train[1][:1000]
    frame = spark.createDataFrame(pd.DataFrame({"image": [im.ravel().tolist() for im in x],
                                                "label": y.astype(float)}))
    model = SparkNetClassifier(zooModel="lenet", featuresCol="image", numWorkers=2, tau=5,
                               rounds=1, seed=3, numClasses=10, freezeLayers=["conv1"],
                               initialWeights=str(tmp_path / "start.caffemodel")).fit(frame)
    report = model.copy_report
    assert report.copied == ["conv1", "conv2", "ip1"] and report.new == ["ip2_ft"]
    start = source.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(model.weights["conv1"], start["conv1"]))
    assert not np.array_equal(model.weights["conv2"][0], start["conv2"][0])
    assert model.transform(frame.limit(10)).count() == 10


def test_the_estimator_saves_and_loads(spark, tmp_path):
    classifier = SparkNetClassifier(net=zoo.lenet(), solver=zoo.lenet_solver(), tau=7,
                                    freezeLayers=["conv1"])
    classifier.save(str(tmp_path / "classifier"))
    loaded = SparkNetClassifier.load(str(tmp_path / "classifier"))
    assert loaded.getOrDefault("tau") == 7 and loaded.getOrDefault("freezeLayers") == ["conv1"]
    assert loaded.getOrDefault("netPrototxt") == to_text(zoo.lenet())
