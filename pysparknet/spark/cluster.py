"""A Spark standalone cluster on 127.0.0.1, from the pip-installed pyspark.

The pip package has no sbin/start-master.sh; this starts the master and the
workers with bin/spark-class, each in its own process group, and stops them
(and the executors the workers launched) together.

    with StandaloneCluster(workers=2) as cluster:
        spark = local_spark(cluster.master_url, conf=cluster.spark_conf)

Its master, workers and applications share a fresh secret (Spark's
authentication and RPC encryption on), in `spark_conf`; secure=False leaves
them off.

Elsewhere than 127.0.0.1 (scripts/netlab.py: one network namespace per host):
`master_host` and `worker_hosts` are the addresses each daemon binds and
advertises (SPARK_LOCAL_IP), `launcher(host)` the argv prefix that runs a
process on that host (e.g. `ip netns exec NS`), and `conf_dir` a SPARK_CONF_DIR
whose spark-defaults.conf every daemon reads (authentication, encryption) in
place of the cluster's own secret.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable, Optional, Sequence

from .session import INSECURE, secure_conf


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandaloneCluster:
    """A master and K workers (one core each by default) on 127.0.0.1."""

    def __init__(self, workers: int = 2, cores_per_worker: int = 1, memory: str = "1g",
                 work_dir: Optional[str] = None, master_host: str = "127.0.0.1",
                 worker_hosts: Optional[Sequence[str]] = None,
                 launcher: Optional[Callable[[str], list]] = None,
                 conf_dir: Optional[str] = None, python: str = sys.executable,
                 secure: bool = True):
        import pyspark
        self.spark_home = Path(pyspark.__file__).resolve().parent
        self.workers, self.cores, self.memory = workers, cores_per_worker, memory
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="sparknet-cluster-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.master_host = master_host
        self.worker_hosts = list(worker_hosts or [master_host] * workers)
        if len(self.worker_hosts) != workers:
            raise ValueError(f"{workers} workers but {len(self.worker_hosts)} worker hosts")
        self.launcher, self.conf_dir, self.python = launcher, conf_dir, python
        self.port, self.ui_port = _free_port(), _free_port()
        self.master_url = f"spark://{master_host}:{self.port}"
        self._procs: list[subprocess.Popen] = []
        # what an application passes to join (conf_dir: that folder's settings instead)
        self.spark_conf = {} if conf_dir else secure_conf() if secure else dict(INSECURE)
        self._properties: list = []  # the daemons' --properties-file (none: conf_dir's)
        if conf_dir is None:
            path = self.work_dir / "spark-daemons.conf"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as properties:  # the secret: ours to read only
                properties.writelines(f"{key} {value}\n"
                                      for key, value in self.spark_conf.items())
            self._properties = ["--properties-file", str(path)]

    def _spark_class(self, host: str, *args: str, log: str) -> subprocess.Popen:
        env = {**os.environ, "SPARK_HOME": str(self.spark_home), "SPARK_LOCAL_IP": host,
               "SPARK_LOCAL_HOSTNAME": host, "PYSPARK_PYTHON": self.python}
        if self.conf_dir:
            env["SPARK_CONF_DIR"] = str(self.conf_dir)
        prefix = self.launcher(host) if self.launcher else []
        out = open(self.work_dir / log, "w")
        proc = subprocess.Popen([*prefix, str(self.spark_home / "bin" / "spark-class"), *args],
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self._procs.append(proc)
        return proc

    def status(self) -> dict:
        """The master's own JSON view (workers, applications)."""
        url = f"http://{self.master_host}:{self.ui_port}/json/"
        if not self.launcher:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.load(r)
        read = f"import urllib.request as u; print(u.urlopen({url!r}, timeout=5).read().decode())"
        done = subprocess.run([*self.launcher(self.master_host), self.python, "-c", read],
                              capture_output=True, text=True, timeout=20)
        if done.returncode:
            raise OSError(f"the master's status at {url}: {done.stderr.strip()[-300:]}")
        return json.loads(done.stdout)

    def start(self, timeout: float = 90) -> "StandaloneCluster":
        """The master and every worker, registered within `timeout` seconds."""
        self.start_master()
        self.start_workers(range(self.workers))
        return self.wait_for_workers(self.workers, timeout)

    def start_master(self) -> "StandaloneCluster":
        self._spark_class(self.master_host, "org.apache.spark.deploy.master.Master",
                          "--host", self.master_host, "--port", str(self.port),
                          "--webui-port", str(self.ui_port), *self._properties,
                          log="master.log")
        return self

    def start_workers(self, indices) -> None:
        """Worker daemons `indices` (a cluster's hosts may join after the app starts)."""
        for i in indices:
            host = self.worker_hosts[i]
            self._spark_class(host, "org.apache.spark.deploy.worker.Worker", self.master_url,
                              "--host", host, "--cores", str(self.cores),
                              "--memory", self.memory, "--webui-port", "0",
                              "--work-dir", str(self.work_dir / f"worker{i}"),
                              *self._properties, log=f"worker{i}.log")

    def wait_for_workers(self, count: int, timeout: float = 90) -> "StandaloneCluster":
        """Until the master counts `count` alive workers; RuntimeError with the logs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.status().get("aliveworkers", 0) >= count:
                    return self
            except (OSError, ValueError):  # not up yet; a starting UI may answer in HTML
                pass
            if any(p.poll() is not None for p in self._procs):
                break
            time.sleep(0.5)
        self.stop()
        logs = "\n".join((self.work_dir / f).read_text()[-1500:]
                         for f in ("master.log", "worker0.log") if (self.work_dir / f).exists())
        raise RuntimeError(f"the standalone cluster did not come up in {timeout:.0f} s:\n{logs}")

    def executor_pids(self) -> list[int]:
        """PIDs of the executor JVMs the workers launched."""
        out = subprocess.run(["pgrep", "-f", "CoarseGrainedExecutorBackend"],
                             capture_output=True, text=True).stdout.split()
        ours = []
        for pid in map(int, out):
            try:
                if os.getpgid(pid) in {p.pid for p in self._procs}:
                    ours.append(pid)
            except ProcessLookupError:
                continue
        return ours

    def kill_worker(self, index: int) -> None:
        """SIGKILL worker `index` and the executors it launched (a host lost)."""
        os.killpg(self._procs[1 + index].pid, signal.SIGKILL)

    def stop(self) -> None:
        for proc in self._procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for proc in self._procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self._procs.clear()

    def __enter__(self) -> "StandaloneCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
