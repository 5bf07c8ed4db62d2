#!/usr/bin/env python3
"""A network lab on one machine: a driver host, a Spark master host and K worker hosts,
each a Linux network namespace joined by a veth pair to one bridge (in a namespace of
its own), each link shaped with tc both ways. Addresses in 198.18.0.0/15 only (driver
198.18.0.1, master 198.18.0.2, workers 198.18.0.11...), no default route, no way out.

    with Lab(k=2, rate_mbit=500, spark=True) as lab:
        lab.run_in("driver", [python, "train.py"], env=lab.spark_env("driver"))
        lab.cut_to_driver("w1"); ...; lab.restore("w1")

    python scripts/netlab.py up K [RATE_MBIT] [--spark] | down [TAG|--all] | status
(scripts/netlab.sh wraps it). Needs root. Faults (cut, loss) use nft in the bridge's
namespace; delay and jitter need the netem qdisc, which some kernels lack: then they
raise LabUnsupported, and the rest works.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netlab_links as links  # noqa: E402
from netlab_links import LabError, LabUnsupported  # noqa: E402,F401

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
DRIVER_IP, MASTER_IP, FIRST_WORKER = "198.18.0.1", "198.18.0.2", 11
STATE_DIR = Path("/run/netlab")
_labs = itertools.count()


@dataclass
class Host:
    name: str     # "driver", "master", "w1" ... "wK"
    ns: str       # its network namespace
    ip: str
    port: str     # its veth end on the bridge


def default_python() -> str:
    return str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable)


class Lab:
    """The lab's namespaces, links and (spark=True) a Spark standalone cluster in them."""

    def __init__(self, k: int = 2, rate_mbit: Optional[float] = None, spark: bool = False,
                 tag: Optional[str] = None, python: Optional[str] = None,
                 cores_per_worker: int = 1, worker_memory: str = "1g"):
        if not 1 <= k <= 200:
            raise ValueError(f"k is 1..200 worker hosts, not {k}")
        self.k, self.rate_mbit, self.spark = k, rate_mbit, spark
        self.tag = tag or f"{links.TAG_PREFIX}{os.getpid()}x{next(_labs)}"
        self.python = python or default_python()
        self.cores, self.worker_memory = cores_per_worker, worker_memory
        self.bridge_ns = f"{self.tag}-br"
        names = ["driver", "master"] + [f"w{i}" for i in range(1, k + 1)]
        ips = [DRIVER_IP, MASTER_IP] + [f"198.18.0.{FIRST_WORKER + i}" for i in range(k)]
        self.hosts = {n: Host(n, f"{self.tag}-{n}", ip, f"p{i}")
                      for i, (n, ip) in enumerate(zip(names, ips))}
        self.workers = [self.hosts[n] for n in names[2:]]
        self.driver_ip = DRIVER_IP
        self.cluster = None
        self.master_url: Optional[str] = None
        self.work_dir = Path(tempfile.mkdtemp(prefix=f"netlab-{self.tag}-"))
        self._secret = secrets.token_hex(32)
        self._loss: dict[str, float] = {}
        self._cuts: dict[str, tuple] = {}
        self._faults = False

    # -- life -------------------------------------------------------------------------
    def up(self) -> "Lab":
        """Build the lab; on any failure remove what was built and re-raise."""
        links.remove_stale_labs()
        try:
            links.make_bridge(self.bridge_ns)
            for host in self.hosts.values():
                links.add_ns(host.ns)
                links.attach(self.bridge_ns, host.port, host.ns, host.ip)
                if self.rate_mbit:
                    self.shape(host.name, rate_mbit=self.rate_mbit)
            if self.spark:
                self._start_spark()
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Stop Spark, kill every process in the lab's namespaces, delete them all."""
        try:
            if self.cluster is not None:
                self.cluster.stop()
                self.cluster = None
        finally:
            links.remove_lab(self.tag)
            shutil.rmtree(self.work_dir, ignore_errors=True)  # logs, the secret

    def __enter__(self) -> "Lab":
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    def host(self, name) -> Host:
        if isinstance(name, Host):
            return name
        if name not in self.hosts:
            raise KeyError(f"no host {name!r} in the lab (hosts: {', '.join(self.hosts)})")
        return self.hosts[name]

    # -- running things on a host ------------------------------------------------------
    def prefix(self, host) -> list:
        """The argv prefix that runs a command on `host` (a name, an address or a Host)."""
        by_ip = {h.ip: h for h in self.hosts.values()}
        return links.in_ns((by_ip.get(host) or self.host(host)).ns)

    def run_in(self, host, argv: list, timeout: float = 120, check: bool = True,
               env: Optional[dict] = None, **kw) -> subprocess.CompletedProcess:
        """Run argv on `host` to its end (a deadline always); output captured as text."""
        done = subprocess.run([*self.prefix(host), *map(str, argv)], capture_output=True,
                              text=True, timeout=timeout, env=env, **kw)
        if check and done.returncode:
            raise LabError(f"{argv} on {host} exited {done.returncode}:\n"
                           f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        return done

    def popen_in(self, host, argv: list, **kw) -> subprocess.Popen:
        """Start argv on `host` (its own session, so a kill reaches its children)."""
        kw.setdefault("start_new_session", True)
        return subprocess.Popen([*self.prefix(host), *map(str, argv)], **kw)

    # -- links --------------------------------------------------------------------------
    def shape(self, host, rate_mbit: Optional[float] = None, delay_ms: float = 0,
              jitter_ms: float = 0, loss: Optional[float] = None) -> None:
        """Set `host`'s link: rate (both ways, htb), delay/jitter (netem, where the kernel
        has it), loss (a fraction of the packets each way, dropped on the bridge)."""
        h = self.host(host)
        if rate_mbit or delay_ms or jitter_ms:
            links.shape_link(h.ns, self.bridge_ns, h.port, rate_mbit or self.rate_mbit or 10000,
                             delay_ms, jitter_ms)
        if loss is not None:
            links.loss_rule(loss)  # validates before anything changes
            self._loss[h.name] = loss
            self._refault(h)

    def _nft(self) -> None:
        if not self._faults:
            links.nft_ready(self.bridge_ns, {h.name: h.port for h in self.hosts.values()})
            self._faults = True

    def _refault(self, h: Host, cut_up: Optional[tuple] = None,
                 cut_down: Optional[tuple] = None) -> None:
        """Rewrite h's chains: its loss, then drops of what it sends (cut_up: nft matches)
        and of what it receives (cut_down); None keeps the cuts it has."""
        self._nft()
        if cut_up is not None:
            self._cuts[h.name] = (cut_up, cut_down or ())
        cut_up, cut_down = self._cuts.get(h.name, ((), ()))
        for chain, cuts in ((f"{h.name}_up", cut_up), (f"{h.name}_down", cut_down)):
            links.nft_flush(self.bridge_ns, chain)
            if self._loss.get(h.name):
                links.nft_rule(self.bridge_ns, chain, *links.loss_rule(self._loss[h.name]))
            for match in cuts:
                links.nft_rule(self.bridge_ns, chain, *match, "drop")

    def cut(self, host) -> None:
        """Every packet to and from `host` dropped on the bridge (its link stays up)."""
        self._refault(self.host(host), cut_up=((),), cut_down=((),))

    def cut_to_driver(self, host, direction: str = "both") -> None:
        """Drop `host`'s packets to the driver ("out"), the driver's to it ("in"), or both."""
        if direction not in ("both", "out", "in"):
            raise ValueError(f"direction is 'both', 'out' or 'in', not {direction!r}")
        up = (("ip", "daddr", DRIVER_IP),) if direction in ("both", "out") else ()
        down = (("ip", "saddr", DRIVER_IP),) if direction in ("both", "in") else ()
        self._refault(self.host(host), cut_up=up, cut_down=down)

    def link_down(self, host) -> None:
        """`host`'s link down (its bridge end): the host sees no carrier."""
        links.set_link(self.bridge_ns, self.host(host).port, up=False)

    def link_up(self, host) -> None:
        links.set_link(self.bridge_ns, self.host(host).port, up=True)

    def restore(self, host) -> None:
        """Undo cut, cut_to_driver and link_down on `host` (its rate and loss stay)."""
        h = self.host(host)
        self.link_up(h)
        if self._faults:
            self._refault(h, cut_up=(), cut_down=())

    # -- Spark ----------------------------------------------------------------------------
    def _write_conf_dir(self) -> Path:
        """SPARK_CONF_DIR: authentication with a fresh secret and RPC encryption (0600)."""
        conf_dir = self.work_dir / "conf"
        conf_dir.mkdir(mode=0o700, exist_ok=True)
        path = conf_dir / "spark-defaults.conf"
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write("".join(f"{k} {v}\n" for k, v in self.security_conf().items()))
        return conf_dir

    def security_conf(self) -> dict:
        return {"spark.authenticate": "true", "spark.authenticate.secret": self._secret,
                "spark.network.crypto.enabled": "true"}

    def _start_spark(self) -> None:
        from pysparknet.spark.cluster import StandaloneCluster  # the installed package
        self.cluster = StandaloneCluster(
            workers=self.k, cores_per_worker=self.cores, memory=self.worker_memory,
            work_dir=str(self.work_dir / "spark"), master_host=MASTER_IP,
            worker_hosts=[w.ip for w in self.workers], launcher=self.prefix,
            conf_dir=str(self._write_conf_dir()), python=self.python)
        self.cluster.start()
        self.master_url = self.cluster.master_url

    def driver_conf(self) -> dict:
        """The Spark conf a driver in the driver host passes to local_spark."""
        return {"spark.driver.host": DRIVER_IP, "spark.driver.bindAddress": DRIVER_IP,
                **self.security_conf()}

    def spark_env(self, host="driver") -> dict:
        """The environment of a Spark program run on `host`: SPARK_LOCAL_IP, PYSPARK_PYTHON,
        SPARK_CONF_DIR (the lab's secret), NETLAB_MASTER and NETLAB_SPARK_CONF (a JSON
        file of driver_conf(), readable by root only)."""
        ip = self.host(host).ip
        conf = self.work_dir / "driver-conf.json"
        with os.fdopen(os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump(self.driver_conf(), f)
        env = {**os.environ, "SPARK_LOCAL_IP": ip, "SPARK_LOCAL_HOSTNAME": ip,
               "PYSPARK_PYTHON": self.python, "PYSPARK_DRIVER_PYTHON": self.python,
               "NETLAB_SPARK_CONF": str(conf)}
        if self.master_url:
            env.update(NETLAB_MASTER=self.master_url,
                       SPARK_CONF_DIR=str(self.work_dir / "conf"))
        return env

    def run_driver(self, argv: list, timeout: float = 600, check: bool = True,
                   host="driver") -> subprocess.CompletedProcess:
        """Run `python *argv` on the driver host as the lab's Spark driver: spark_env(),
        scripts/ on PYTHONPATH (for driver_session), and the lab's work dir as its folder,
        not the source tree (whose pysparknet/ has no native build)."""
        env = self.spark_env(host)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "scripts")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        return self.run_in(host, [self.python, *argv], timeout=timeout, check=check, env=env,
                           cwd=self.work_dir)

    def ns_inode(self, host) -> int:
        """The inode of `host`'s network namespace (what /proc/PID/ns/net links to)."""
        return os.stat(f"/run/netns/{self.host(host).ns}").st_ino

    def describe(self) -> dict:
        return {"tag": self.tag, "rate_mbit": self.rate_mbit, "master_url": self.master_url,
                "work_dir": str(self.work_dir),
                "hosts": {h.name: {"ns": h.ns, "ip": h.ip} for h in self.hosts.values()}}


def driver_session(conf: Optional[dict] = None, app_name: str = "netlab"):
    """In a program run by Lab.run_driver: a SparkSession on the lab's master, bound to
    the driver host, with the lab's authentication and encryption (and `conf`)."""
    from pysparknet.spark import local_spark
    with open(os.environ["NETLAB_SPARK_CONF"]) as f:
        lab_conf = json.load(f)
    return local_spark(os.environ["NETLAB_MASTER"], app_name=app_name,
                       conf={**lab_conf, **(conf or {})})



def driver_main(body, executors: int = 2, conf: Optional[dict] = None) -> None:
    """A lab driver program's main: its JSON options from argv[1], a driver_session of
    `executors` one-core executors, and body(spark, opts)'s dict printed as one line
    `RESULT {json}` (netlab_faults reads it), the session stopped whatever happens."""
    opts = json.loads(sys.argv[1])
    spark = driver_session({"spark.executor.cores": "1", "spark.cores.max": str(executors),
                            "spark.executor.memory": "768m", **(conf or {})})
    try:
        out = body(spark, opts)
    finally:
        spark.stop()
    print("RESULT", json.dumps(out), flush=True)

# -- the command line (scripts/netlab.sh) --------------------------------------------------
def _cli_up(args) -> int:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    taken = set(links.lab_tags())
    n = next((i for i in range(1, 1000) if f"psnsh{i}" not in taken
              and not (STATE_DIR / f"psnsh{i}.json").exists()), None)
    if n is None:
        raise LabError("999 labs already up here: `netlab.sh down` first")
    lab = Lab(k=args.k, rate_mbit=args.rate, spark=args.spark, tag=f"psnsh{n}").up()
    (STATE_DIR / f"{lab.tag}.json").write_text(json.dumps(lab.describe(), indent=1))
    print(json.dumps(lab.describe(), indent=1))
    print(f"# run on a host: ip netns exec {lab.tag}-driver CMD; remove: netlab.sh down "
          f"{lab.tag}")
    return 0


def _cli_down(args) -> int:
    tags = [t for t in links.lab_tags()
            if args.all or (t == args.tag if args.tag else t.startswith("psnsh"))]
    for tag in tags:
        links.remove_lab(tag)
        state = STATE_DIR / f"{tag}.json"
        if state.exists():
            shutil.rmtree(json.loads(state.read_text())["work_dir"], ignore_errors=True)
            state.unlink()
        print(f"removed {tag}")
    return 0


def _cli_status(args) -> int:
    for tag in links.lab_tags():
        state = STATE_DIR / f"{tag}.json"
        nss = [ns for ns in links.namespaces() if ns.startswith(tag + "-")]
        about = json.loads(state.read_text()) if state.exists() else {}
        hosts = " ".join(f"{n}={h['ip']}" for n, h in about.get("hosts", {}).items())
        print(f"{tag}: {len(nss)} namespaces {hosts} rate={about.get('rate_mbit')} "
              f"master={about.get('master_url')}" if about else f"{tag}: {len(nss)} namespaces")
    if not links.lab_tags():
        print("no lab")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="build a lab of K worker hosts")
    up.add_argument("k", type=int)
    up.add_argument("rate", type=float, nargs="?", help="each link's rate, Mbit/s")
    up.add_argument("--spark", action="store_true", help="start a Spark master and workers")
    down = sub.add_parser("down", help="remove the labs `up` made (or TAG, or --all)")
    down.add_argument("tag", nargs="?")
    down.add_argument("--all", action="store_true", help="every psn* lab, tests' too")
    sub.add_parser("status", help="list the labs on this machine")
    args = parser.parse_args(argv)
    reason = links.ns_available()
    if reason:
        print(f"netlab: {reason}", file=sys.stderr)
        return 2
    return {"up": _cli_up, "down": _cli_down, "status": _cli_status}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
