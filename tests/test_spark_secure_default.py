"""Secure by default: sessions on this machine turn on Spark's authentication and
RPC encryption with a fresh secret, so the pin and run secret inside the tasks
cross no network in clear and the trainer has nothing to warn about; off only
when asked."""
from __future__ import annotations

from pysparknet import zoo
from pysparknet.spark import SparkNetTrainer, local_spark
from pysparknet.spark.session import secure_conf


def test_local_cluster_sessions_are_secure_by_default(fmnist_train, caplog):
    # io encryption off, said explicitly: a session another test module opened with it
    # on would leave it as this JVM's default (and PySpark cannot broadcast with it)
    spark = local_spark("local-cluster[1,1,1024]", conf={"spark.io.encryption.enabled": "false"})
    try:
        conf = spark.sparkContext.getConf()
        assert conf.get("spark.authenticate") == "true"
        assert conf.get("spark.network.crypto.enabled") == "true"
        assert len(conf.get("spark.authenticate.secret")) == 64
        x, y = fmnist_train[0][:500], fmnist_train[1][:500]
        with caplog.at_level("WARNING", logger="pysparknet"):
            SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=1,
                            tau=2).fit((x, y), rounds=1, progress=False)
        assert not [r for r in caplog.records if "not encrypted" in r.getMessage()]
    finally:
        spark.stop()


def test_insecure_is_explicit_and_every_secret_is_fresh():
    spark = local_spark("local-cluster[1,1,1024]", secure=False)
    try:  # off, though an earlier session of this JVM had it on
        assert spark.sparkContext.getConf().get("spark.authenticate") == "false"
    finally:
        spark.stop()
    assert secure_conf()["spark.authenticate.secret"] != secure_conf()[
        "spark.authenticate.secret"]
