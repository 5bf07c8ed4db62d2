"""Before a session on a standalone master: will the master talk to this client?

Spark's standalone client retries its registration three times, 20 s apart,
then stops the context; a client whose authentication the master refuses (no
secret, or another one) sees "All masters are unresponsive" and, after 60-80 s,
"Cannot call methods on a stopped SparkContext". Spark's own RPC client (an
RpcEnv in client mode, in the JVM PySpark starts anyway) asks the master in a
second and says why it could not: that answer becomes a ClusterError naming
authentication, or an unreachable master, before any context exists. A master
that does not answer yet (still starting) is asked again, as Spark's own client
would, until the wait runs out.
"""
from __future__ import annotations

import logging
import socket
import time
from typing import Optional

from ..errors import ClusterError

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
MASTER_WAIT_S = 60.0  # Spark's standalone client: 3 registrations, 20 s apart
RETRY_PAUSE_S = 1.0
LOOKUP_TIMEOUT = "20s"  # the probe's own deadline (Spark's default lookup waits 120 s)
_AUTH_SIGNS = ("SaslMessage", "SaslException", "secret key must be specified",
               "uthentication", "AEADBadTag", "Mismatched response")
_STARTING = "Cannot find endpoint"  # RpcEndpointNotFoundException: RPC up, Master not yet


def check_standalone_master(master: str, settings: dict, pyspark_conf,
                            wait_s: float = MASTER_WAIT_S) -> None:
    """ClusterError unless some master of a spark:// URL answers this client's
    RPC with these settings within wait_s; other masters pass untouched.
    pyspark_conf: the session's pyspark SparkConf, which launches PySpark's JVM
    if none runs yet. A refused authentication fails at once; silence is retried."""
    if not master.strip().startswith("spark://"):
        return
    if not wait_s >= 0:  # NaN too
        raise ValueError(f"master_wait_s is seconds to wait, at least 0, not {wait_s!r}")
    from pyspark import SparkContext

    SparkContext._ensure_initialized(conf=pyspark_conf)
    jvm = SparkContext._jvm
    conf = jvm.org.apache.spark.SparkConf(True)  # spark-defaults, as the session's
    for key, value in {**settings, "spark.master": master,
                       "spark.rpc.lookupTimeout": LOOKUP_TIMEOUT}.items():
        conf.set(key, str(value))
    addresses = master.strip()[len("spark://"):].split(",")  # HA: several masters
    deadline = time.monotonic() + wait_s
    for attempt in range(1 + int(wait_s / RETRY_PAUSE_S)):  # bounded; the deadline ends it
        answers = {}
        for address in addresses:
            answers[address] = _refusal(jvm, conf, address)
            if answers[address] is None:
                return
        refused = _refused_authentication(answers)  # opens connections: once an attempt
        if refused or time.monotonic() >= deadline:
            break
        if attempt == 0:
            logger.warning("the standalone master %s does not answer yet; asking again for "
                           "up to %.0f s", master, wait_s)
        time.sleep(min(RETRY_PAUSE_S, max(0.0, deadline - time.monotonic())))
    raise ClusterError(_explain(master, answers, refused, wait_s))


def _refusal(jvm, conf, address: str) -> Optional[str]:
    """None when the master at host:port answers; else the JVM's reason."""
    from py4j.protocol import Py4JJavaError

    host, _, port = address.rpartition(":")
    env = None
    try:
        config = getattr(getattr(jvm.org.apache.spark.internal.config, "package$"), "MODULE$")
        security = jvm.org.apache.spark.SecurityManager(conf, jvm.scala.Option.empty(),
                                                        config.AUTH_SECRET_FILE())
        security.initializeAuth()
        env = jvm.org.apache.spark.rpc.RpcEnv.create("pysparknet-probe", conf.get(
            "spark.driver.host", "127.0.0.1"), 0, conf, security, True)
        env.setupEndpointRef(jvm.org.apache.spark.rpc.RpcAddress(host, int(port)), "Master")
        return None
    except Py4JJavaError as error:
        return "\n".join(line for line in str(error).splitlines()
                         if line.strip() and not line.startswith("\tat "))
    finally:
        if env is not None:
            env.shutdown()


def _refused_authentication(answers: dict) -> bool:
    """A master that takes the connection and then drops this client's RPC has
    refused its authentication: no secret, or a secret other than the cluster's.
    One whose RPC is up but whose Master endpoint is not yet is still starting."""
    if any(_STARTING in reason for reason in answers.values()):
        return False
    return (any(sign in reason for reason in answers.values() for sign in _AUTH_SIGNS)
            or any(_reachable(address) for address in answers))


def _explain(master: str, answers: dict, refused: bool, wait_s: float) -> str:
    reasons = "; ".join(f"{address}: {_first_cause(reason)}" for address, reason in
                        answers.items())
    if refused:
        return (f"the standalone master {master} refused this client's authentication "
                f"({reasons}). The cluster runs Spark's authentication: give this session "
                "its secret (spark.authenticate=true and spark.authenticate.secret, or the "
                "spark-defaults.conf its daemons read; in the compose cluster, run the "
                "driver as a service of it), or turn it off on both sides")
    return (f"the standalone master {master} did not answer in {wait_s:.0f} s ({reasons}): "
            "is it running, and reachable from this host at that address and port?")


def _reachable(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
        return True
    except (OSError, ValueError):
        return False


def _first_cause(reason: str) -> str:
    """The innermost 'Caused by' line of a Java exception's text (else its first line)."""
    causes = [line.strip() for line in reason.splitlines() if line.startswith("Caused by:")]
    return (causes[-1] if causes else reason.strip().splitlines()[0])[:300]
