"""The network lab's plumbing: namespaces, veth links to one bridge, tc shaping, nft faults.

Everything here runs `ip`, `tc` and `nft` inside the lab's own namespaces
(`ip -n NS`, `ip netns exec NS`); nothing touches the root namespace's links,
addresses or routes. scripts/netlab.py builds a Lab out of these functions.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time

TAG_PREFIX = "psn"
SUBNET_BITS = 24          # 198.18.0.0/24, inside the benchmarking range 198.18.0.0/15
BRIDGE = "br0"
TABLE = "netlab"          # the bridge namespace's nft table (bridge family)


class LabError(RuntimeError):
    """A lab command failed (the command and its stderr are in the message)."""


class LabUnsupported(LabError):
    """This kernel or machine lacks what a lab feature needs (named in the message)."""


def sh(argv: list, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
    """Run one command with a deadline; LabError naming it when it fails."""
    try:
        done = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise LabError(f"{' '.join(map(str, argv))}: no answer in {timeout:.0f} s") from e
    if check and done.returncode:
        raise LabError(f"{' '.join(map(str, argv))}: {done.stderr.strip() or done.returncode}")
    return done


def in_ns(ns: str) -> list:
    return ["ip", "netns", "exec", ns]


def namespaces() -> list[str]:
    """Every named namespace (`ip netns list`), names only."""
    out = sh(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def ns_available() -> str:
    """'' when this process can make namespaces, else why not."""
    if os.geteuid() != 0:
        return "the network lab needs root (it makes network namespaces)"
    if not shutil.which("ip") or not shutil.which("tc"):
        return "the network lab needs iproute2's ip and tc (apt-get install iproute2)"
    probe = f"{TAG_PREFIX}probe{os.getpid()}"
    made = sh(["ip", "netns", "add", probe], check=False)
    if made.returncode:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    sh(["ip", "netns", "del", probe], check=False)
    return ""


def add_ns(ns: str) -> None:
    sh(["ip", "netns", "add", ns])
    sh(["ip", "-n", ns, "link", "set", "lo", "up"])


def kill_ns_processes(ns: str, deadline_s: float = 15) -> None:
    """SIGTERM every process inside `ns`, SIGKILL what is left at the deadline."""
    deadline = time.monotonic() + deadline_s
    sig = signal.SIGTERM
    while True:
        pids = [int(p) for p in sh(["ip", "netns", "pids", ns], check=False).stdout.split()]
        if not pids:
            return
        if time.monotonic() > deadline:
            if sig == signal.SIGKILL:
                raise LabError(f"processes {pids} in {ns} outlived SIGKILL")
            sig, deadline = signal.SIGKILL, time.monotonic() + 5
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def remove_ns(ns: str) -> None:
    """Kill what runs in `ns`, then delete it (its veth ends, and their peers, go with it)."""
    if ns not in namespaces():
        return
    kill_ns_processes(ns)
    sh(["ip", "netns", "del", ns])


def lab_tags() -> list[str]:
    """The tags of every lab that has a namespace on this machine."""
    return sorted({ns.rsplit("-", 1)[0] for ns in namespaces()
                   if ns.startswith(TAG_PREFIX) and "-" in ns})


def remove_lab(tag: str) -> None:
    """Remove every namespace of the lab `tag` (hosts first, the bridge last)."""
    mine = [ns for ns in namespaces() if ns.startswith(tag + "-")]
    errors = []
    for ns in sorted(mine, key=lambda n: n.endswith("-br")):
        try:
            remove_ns(ns)
        except LabError as e:
            errors.append(str(e))
    if errors:
        raise LabError("; ".join(errors))


def remove_stale_labs() -> list[str]:
    """Remove the labs psn<PID>x<N> whose process PID is gone (left by a crash)."""
    removed = []
    for tag in lab_tags():
        found = re.fullmatch(rf"{TAG_PREFIX}(\d+)x\d+", tag)
        if found and not os.path.exists(f"/proc/{found.group(1)}"):
            remove_lab(tag)
            removed.append(tag)
    return removed


def make_bridge(ns: str) -> None:
    """The bridge's namespace: one bridge, and an nft table for the links' faults."""
    add_ns(ns)
    sh(["ip", "-n", ns, "link", "add", BRIDGE, "type", "bridge"])
    sh(["ip", "-n", ns, "link", "set", BRIDGE, "up"])


def attach(bridge_ns: str, port: str, host_ns: str, ip: str) -> None:
    """A veth pair: `port` on the bridge, eth0 (address ip/24, no default route) in host_ns."""
    sh(["ip", "-n", bridge_ns, "link", "add", port, "type", "veth",
        "peer", "name", "eth0", "netns", host_ns])
    sh(["ip", "-n", bridge_ns, "link", "set", port, "master", BRIDGE, "up"])
    sh(["ip", "-n", host_ns, "addr", "add", f"{ip}/{SUBNET_BITS}", "dev", "eth0"])
    sh(["ip", "-n", host_ns, "link", "set", "eth0", "up"])


def set_link(bridge_ns: str, port: str, up: bool) -> None:
    sh(["ip", "-n", bridge_ns, "link", "set", port, "up" if up else "down"])


def _htb(ns: str, dev: str, rate_mbit: float) -> None:
    # A burst of ~2 ms at the rate: veth hands over 64 KB GSO segments at once.
    burst = max(int(rate_mbit * 1e6 / 8 * 0.002), 64 * 1024)
    tc = [*in_ns(ns), "tc"]
    shown = sh([*tc, "qdisc", "show", "dev", dev, "root"]).stdout
    if "htb 1:" not in shown:  # htb cannot be `replace`d by htb: a reshape changes the class
        sh([*tc, "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "10"])
    sh([*tc, "class", "replace", "dev", dev, "parent", "1:", "classid", "1:10", "htb",
        "rate", f"{rate_mbit}mbit", "ceil", f"{rate_mbit}mbit",
        "burst", str(burst), "cburst", str(burst)])


NO_NETEM = ("this kernel has no netem qdisc (sch_netem), which delay and jitter need; "
            "rate shaping (htb), cuts and loss (nft) still work")


def _netem(ns: str, dev: str, delay_ms: float, jitter_ms: float) -> None:
    args = ["delay", f"{delay_ms}ms"] + ([f"{jitter_ms}ms"] if jitter_ms else [])
    done = sh([*in_ns(ns), "tc", "qdisc", "replace", "dev", dev, "parent", "1:10",
               "handle", "10:", "netem", *args], check=False)
    if done.returncode:
        if "unknown" in done.stderr.lower():
            raise LabUnsupported(NO_NETEM)
        raise LabError(f"netem on {dev} in {ns}: {done.stderr.strip()}")


def shape_link(host_ns: str, bridge_ns: str, port: str, rate_mbit: float,
               delay_ms: float = 0, jitter_ms: float = 0) -> None:
    """Rate both ways: the host's eth0 egress (its upload), the bridge port's egress
    (its download); delay/jitter via netem under each, where the kernel has netem."""
    if (delay_ms or jitter_ms) and not has_qdisc("netem"):
        raise LabUnsupported(NO_NETEM)
    for ns, dev in ((host_ns, "eth0"), (bridge_ns, port)):
        _htb(ns, dev, rate_mbit)
        if delay_ms or jitter_ms:
            _netem(ns, dev, delay_ms, jitter_ms)
        else:  # a reshape without delay drops an earlier one's netem
            sh([*in_ns(ns), "tc", "qdisc", "del", "dev", dev, "parent", "1:10"], check=False)


def has_qdisc(kind: str) -> bool:
    """Whether this kernel knows the qdisc `kind` (tried on a scratch namespace's lo)."""
    probe = f"{TAG_PREFIX}q{os.getpid()}x{kind}"[:40]
    sh(["ip", "netns", "add", probe])
    try:
        args = {"netem": ["delay", "1ms"], "htb": ["default", "1"]}.get(kind, [])
        return sh([*in_ns(probe), "tc", "qdisc", "add", "dev", "lo", "root", kind, *args],
                  check=False).returncode == 0
    finally:
        sh(["ip", "netns", "del", probe], check=False)


def nft_ready(bridge_ns: str, ports: dict) -> None:
    """The bridge's nft table: for each host (name -> port) a chain for what it sends
    (`NAME_up`) and one for what it receives (`NAME_down`), jumped to from the forward hook."""
    if not shutil.which("nft"):
        raise LabUnsupported("link faults (cut, loss) need nftables' nft (apt-get install "
                             "nftables)")
    lines = [f"table bridge {TABLE} {{"]
    for name in ports:
        lines += [f"  chain {name}_up {{ }}", f"  chain {name}_down {{ }}"]
    jumps = "".join(f' iifname "{p}" jump {n}_up; oifname "{p}" jump {n}_down;'
                    for n, p in ports.items())
    lines += [f"  chain links {{ type filter hook forward priority 0; policy accept;{jumps} }}",
              "}"]
    done = subprocess.run([*in_ns(bridge_ns), "nft", "-f", "-"], input="\n".join(lines),
                          capture_output=True, text=True, timeout=30)
    if done.returncode:
        raise LabUnsupported(f"nft's bridge table in {bridge_ns}: {done.stderr.strip()}")


def nft_rule(bridge_ns: str, chain: str, *match: str) -> None:
    sh([*in_ns(bridge_ns), "nft", "add", "rule", "bridge", TABLE, chain, *match])


def nft_flush(bridge_ns: str, chain: str) -> None:
    sh([*in_ns(bridge_ns), "nft", "flush", "chain", "bridge", TABLE, chain])


def loss_rule(loss: float) -> list:
    """nft's match for dropping a random fraction `loss` of the packets."""
    if not 0 <= loss < 1:
        raise ValueError(f"loss is a fraction in [0, 1), not {loss}")
    return ["numgen", "random", "mod", "1000000", "<", str(int(round(loss * 1e6))), "drop"]
