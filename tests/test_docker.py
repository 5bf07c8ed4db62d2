"""The cluster in containers, for real (its own README command: scripts/test_docker.sh).

Builds the image on a Debian base made here (debootstrap, docker import), brings
up a master and 2 workers on the compose project's own bridge network (each
container its own host), runs the demo job to completion and checks the accuracy
it reports and the .caffemodel it wrote; kills a worker container mid-run and
the job still finishes; a client without the cluster's secret cannot register;
docker/README.md's own command lines, read from the file, run as written; and
`docker compose logs -f driver` shows a line a round while the job runs.
Skipped, with the reason, where docker cannot run."""
from __future__ import annotations

import json
import os
import re
import shlex
import statistics
import subprocess
import time
import uuid

import pytest

from pysparknet import Net, zoo
from pysparknet.data import fashion_mnist

import docker_cluster
from docker_cluster import Cluster, readme_blocks, readme_line, run, run_script

pytestmark = pytest.mark.docker

RESULTS: dict = {}  # what the run measured, printed at the end (BENCHMARKS.md)


@pytest.fixture(scope="module")
def docker():
    """Docker running here (dockerd started when installed and not running), or skip."""
    why_not = docker_cluster.docker_ready()
    if why_not is not None:
        pytest.skip(f"docker cannot run here: {why_not}")


@pytest.fixture(scope="module")
def compose_plugin(docker):
    """`docker compose` (Compose v2 as Docker's plugin), which the README's lines call."""
    done = run(["docker", "compose", "version"], 30, check=False)
    if done.returncode != 0:
        pytest.fail("`docker compose` is no docker command here (bash scripts/docker_setup.sh "
                    f"links Compose v2 in): {done.stderr.strip()}")


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


def round_numbers(log: str, rounds: int) -> list[int]:
    """The round of each per-round progress line in a log ("round 3/8, loss ...")."""
    return [int(n) for n in re.findall(rf"\bround (\d+)/{rounds}, loss ", log)]


def the_readme_quickstart() -> list[str]:
    """docker/README.md's first block, its `docker build` line replaced by the README's
    own offline one (no registry here: it builds on the base that the README's
    debootstrap and `docker import` lines make, as the image fixture does)."""
    quickstart = readme_blocks()[0]
    offline = readme_line("docker build --build-arg BASE_IMAGE=")
    plain = shlex.split(quickstart[0], comments=True)
    assert plain[:2] == ["docker", "build"], quickstart
    assert shlex.split(offline) == [*plain[:2], "--build-arg",
                                    f"BASE_IMAGE={docker_cluster.BASE_IMAGE}", *plain[2:]]
    assert readme_line("tar -C rootfs").endswith(f"docker import - {docker_cluster.BASE_IMAGE}")
    return [offline, *quickstart[1:]]


def test_the_readme_commands_run_as_written(image, compose_plugin, tmp_path):
    rounds = 10
    lines = the_readme_quickstart()
    assert lines[-1].startswith("docker compose up driver"), lines
    project = f"sparknet-doc-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORKERS", "WORKER_CONTAINERS", "PYSPARKNET_IMAGE")}
    # The README's settings (its table): fewer rounds, no host port, a project of its own.
    env.update(COMPOSE_PROJECT_NAME=project, MASTER_UI_PORT="0", TAU="50",
               ROUNDS=str(rounds), VALIDATE_EVERY="5", CHECKPOINT_EVERY="5")
    try:
        with docker_cluster.host_certificates():
            done = run_script(lines, 3000, cwd=docker_cluster.ROOT, env=env)
        assert done.returncode == 0, done.stdout[-5000:]
        driver = f"{project}-driver-1"
        state = run(["docker", "inspect", "-f", "{{.State.ExitCode}}", driver], 30)
        assert state.stdout.strip() == "0", done.stdout[-5000:]  # compose exits 0 regardless
        assert round_numbers(done.stdout, rounds) == list(range(1, rounds + 1)), \
            done.stdout[-5000:]
        assert accuracy_in(done.stdout) >= 0.70  # trained: an untrained net scores 0.10
        run(["docker", "cp", f"{driver}:/out/metrics.jsonl", tmp_path], 60)
        history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
        assert [h["round"] for h in history] == list(range(1, rounds + 1))
        assert len({h["run"] for h in history}) == 1
    finally:  # the README's own tear-down line, after a failure too
        run_script(["cd docker", readme_line("docker compose down -v")], 300,
                   cwd=docker_cluster.ROOT, env=env)


def test_the_driver_log_shows_a_line_per_round_while_it_trains(image, compose_plugin):
    rounds = 6
    follow = readme_line("docker compose logs -f driver")
    with Cluster(workers=2, rounds=rounds, validate_every=3, checkpoint_every=3) as cluster:
        cluster.start_driver()
        seen, running = [], []
        with docker_cluster.following(follow, 1200, cwd=docker_cluster.ROOT / "docker",
                                      env=cluster.env) as lines:
            for line in lines:  # ends when the driver does (logs -f follows it to its end)
                seen += round_numbers(line, rounds)
                if len(seen) == 1:  # the first round's line: the job must still be going
                    running.append(run(["docker", "inspect", "-f", "{{.State.Running}}",
                                        cluster.container("driver")], 30).stdout.strip())
        code, log = cluster.wait_driver(60)
        assert code == 0, log[-5000:]
        assert seen == list(range(1, rounds + 1)), log[-5000:]
        assert running == ["true"], "the first round's line came only once the driver ended"
