"""The cluster in containers, for real (its own README command: scripts/test_docker.sh).

Builds the image on a Debian base made here (debootstrap, docker import), brings
up a master and 2 workers on the compose project's own bridge network (each
container its own host), runs the demo job to completion and checks the accuracy
it reports and the .caffemodel it wrote; kills a worker container mid-run and
the job still finishes; a client without the cluster's secret cannot register.
Skipped, with the reason, where docker cannot run."""
from __future__ import annotations

import json
import re
import statistics
import time

import pytest

from pysparknet import Net, zoo
from pysparknet.data import fashion_mnist

import docker_cluster
from docker_cluster import Cluster, run

pytestmark = pytest.mark.docker

RESULTS: dict = {}  # what the run measured, printed at the end (BENCHMARKS.md)


@pytest.fixture(scope="module")
def docker():
    """Docker running here (dockerd started when installed and not running), or skip."""
    why_not = docker_cluster.docker_ready()
    if why_not is not None:
        pytest.skip(f"docker cannot run here: {why_not}")


@pytest.fixture(scope="module")
def image(docker):
    cold = docker_cluster.build_image()
    cached = docker_cluster.build_image()  # every layer from the cache
    RESULTS.update(build_s=cold, cached_build_s=cached,
                   image_mb=docker_cluster.image_size_mb(docker_cluster.IMAGE),
                   base_mb=docker_cluster.image_size_mb(docker_cluster.BASE_IMAGE))
    yield docker_cluster.IMAGE
    print(f"\ndocker results: {json.dumps(RESULTS)}")


def accuracy_in(log: str) -> float:
    found = re.findall(r"test accuracy ([\d.]+)%", log)
    assert found, f"no test accuracy in the driver's log:\n{log[-3000:]}"
    return float(found[-1]) / 100


def kill_a_worker_after(cluster: Cluster, rounds: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while cluster.driver_metrics_lines() < rounds:
        assert time.monotonic() < deadline, "the driver made no progress"
        time.sleep(0.5)
    run(["docker", "kill", cluster.worker_with_an_executor()], 60)


def test_the_demo_job_trains_across_containers_and_survives_a_killed_worker(image, tmp_path):
    accuracies = {}
    for disturbed in (False, True):
        # A third worker container is the spare that takes the killed one's place.
        with Cluster(workers=2, scale=3, rounds=30, validate_every=30,
                     checkpoint_every=10) as cluster:
            cluster.start_driver()
            if disturbed:
                kill_a_worker_after(cluster, 12)
            code, log = cluster.wait_driver(1200)
            assert code == 0, log[-5000:]
            accuracies[disturbed] = accuracy_in(log)
            if not disturbed:
                model = cluster.copy_out("/out/lenet.caffemodel", tmp_path / "lenet.caffemodel")
                metrics = cluster.copy_out("/out/metrics.jsonl", tmp_path / "metrics.jsonl")
    net = Net(zoo.lenet())
    net.load(model)
    images, labels = fashion_mnist("test")
    net.set_validation_data((images[:2000], labels[:2000]))
    assert net.test()["accuracy"] >= 0.85  # the written model is the trained one
    history = [json.loads(line) for line in metrics.read_text().splitlines()]
    RESULTS.update(accuracy=accuracies[False], accuracy_worker_killed=accuracies[True],
                   lenet_sync_ms=1e3 * statistics.median(h["sync_s"] for h in history[1:-1]))
    assert accuracies[False] >= 0.85
    assert abs(accuracies[False] - accuracies[True]) <= 0.005


def test_a_client_without_the_secret_cannot_register(image):
    with Cluster(workers=1) as cluster:
        network = f"{cluster.name}_cluster"
        done = run(["docker", "run", "--rm", "--network", network, image, "sh", "-c",
                    "timeout 120 sparknet train --master spark://master:7077 --workers 1 "
                    "--rounds 1 --tau 1 --quiet --slots-timeout 20 "
                    "--conf spark.driver.host=$(hostname -i)"], 300, check=False)
        output = done.stdout + done.stderr
        assert done.returncode != 0, output[-3000:]
        # Asked before any session (spark/master_probe.py), not after Spark's 60 s of
        # retries: the message names authentication.
        assert "refused this client's authentication" in output, output[-3000:]
        # The master never took it for an application (its own JSON view says so).
        apps = run(["docker", "exec", cluster.container("master"), "python", "-c",
                    "import json, urllib.request; s = json.load(urllib.request.urlopen("
                    "'http://localhost:8080/json/', timeout=5)); "
                    "print(len(s['activeapps']) + len(s['completedapps']))"], 60)
        assert apps.stdout.strip() == "0"
