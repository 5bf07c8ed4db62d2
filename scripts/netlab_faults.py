"""Network faults on the lab's links, on a schedule, while a fit runs on the lab.

    faults = [Fault("loss:0.05", "w1", at_round=2, rounds=2),
              Fault("down", "w2", at_round=5, seconds=4)]
    run = run_fit(lab, {"exchange": "ring", "rounds": 10, ...}, faults)

A fault's kind:
    loss:P          a fraction P of the host's packets dropped, each way (nft)
    delay:MS[:J]    MS ms added each way, J ms jitter (netem: where the kernel has it)
    slow:F          the host's link F times slower (htb)
    down            the host's link down (no carrier)
    cut             every packet to and from the host dropped
    cut_out/cut_in  the host's packets to the driver / the driver's to it dropped
    kill            the host's Spark executor killed (SIGKILL; its Worker starts another)
    kill_master     the standalone Master killed (SIGKILL; host "master")
A fault starts once `at_round` rounds are in the fit's metrics file and lasts
`seconds`, or `rounds` more rounds, whichever is given (kill: an instant).
chaos_schedule(seed, ...) draws a schedule from these.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import netlab_links as links
from netlab_links import LabUnsupported

HERE = Path(__file__).resolve().parent
KINDS = ("loss", "delay", "slow", "down", "cut", "cut_out", "cut_in", "kill", "kill_master")
INSTANT = ("kill", "kill_master")  # faults that are over once applied
POLL_S = 0.1


@dataclass
class Fault:
    kind: str
    host: str
    at_round: int
    seconds: Optional[float] = None
    rounds: Optional[int] = None
    applied_s: Optional[float] = None  # since the fit's start, once applied
    undone_s: Optional[float] = None
    error: str = ""                    # why it could not be applied (LabUnsupported)

    def __post_init__(self):
        if self.kind.split(":")[0] not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(KINDS)})")

    def due_to_end(self, now_s: float, rounds_done: int) -> bool:
        if self.seconds is not None:
            return now_s - self.applied_s >= self.seconds
        return rounds_done >= self.at_round + (self.rounds or 0)


def jvm_pids(lab, host, main_class: bytes) -> list[int]:
    """The JVMs running `main_class` in `host`'s namespace."""
    pids = links.sh(["ip", "netns", "pids", lab.host(host).ns], check=False).stdout.split()
    found = []
    for pid in map(int, pids):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if main_class in cmdline:
            found.append(pid)
    return found


def apply(lab, fault: Fault) -> None:
    kind, *args = fault.kind.split(":")
    host = fault.host
    if kind == "loss":
        lab.shape(host, loss=float(args[0]))
    elif kind == "delay":
        lab.shape(host, rate_mbit=lab.rate_mbit, delay_ms=float(args[0]),
                  jitter_ms=float(args[1]) if len(args) > 1 else 0)
    elif kind == "slow":
        lab.shape(host, rate_mbit=lab.rate_mbit / float(args[0]))
    elif kind == "down":
        lab.link_down(host)
    elif kind == "cut":
        lab.cut(host)
    elif kind in ("cut_out", "cut_in"):
        lab.cut_to_driver(host, direction=kind[4:])
    elif kind in INSTANT:
        main_class = b"CoarseGrainedExecutorBackend" if kind == "kill" else b"deploy.master"
        pids = jvm_pids(lab, host, main_class)
        if not pids:  # a kill that finds nothing must not pass for a fault survived
            raise links.LabError(f"{fault.kind}: no {main_class.decode()} JVM on {host}")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)


def undo(lab, fault: Fault) -> None:
    kind = fault.kind.split(":")[0]
    if kind == "loss":
        lab.shape(fault.host, loss=0)
    elif kind in ("delay", "slow"):
        lab.shape(fault.host, rate_mbit=lab.rate_mbit)  # a fresh htb: its netem goes too
    elif kind in ("down", "cut", "cut_out", "cut_in"):
        lab.restore(fault.host)


def chaos_schedule(seed: int, rounds: int, hosts: list, every: tuple = (3, 6),
                   kinds: tuple = ("loss:0.01", "loss:0.05", "slow:10", "down", "cut_out",
                                   "kill"),
                   down_s: tuple = (2.0, 8.0)) -> list[Fault]:
    """A fault every `every` rounds (drawn between its bounds), of a kind drawn from
    `kinds` on a host drawn from `hosts`: link conditions last 1-3 rounds, links down
    or cut `down_s` seconds (drawn between its bounds). Same seed, same schedule."""
    draw = random.Random(seed)
    faults, at = [], draw.randint(*every)
    while at < rounds:
        kind, host = draw.choice(kinds), draw.choice(hosts)
        if kind.split(":")[0] in ("down", "cut", "cut_out", "cut_in"):
            faults.append(Fault(kind, host, at, seconds=round(draw.uniform(*down_s), 1)))
        else:
            faults.append(Fault(kind, host, at, rounds=draw.randint(1, 3)))
        at += draw.randint(*every)
    return faults


@dataclass
class FitRun:
    """What run_fit saw: the driver's RESULT, its rounds, the faults' times."""
    result: dict
    history: list
    faults: list
    longest_wait_s: float          # the longest time between two rounds, or after the last
    first_round_s: float           # from the driver's start (Spark's too) to round 1
    wall_s: float
    log_tail: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"result": self.result, "faults": [asdict(f) for f in self.faults],
                "longest_wait_s": self.longest_wait_s, "first_round_s": self.first_round_s,
                "wall_s": self.wall_s,
                "round_s": [h.get("round_s") for h in self.history], **self.extra}


def _read_history(path: Path) -> list:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()
            if line.strip().endswith("}")]


def _step_faults(lab, faults: list, now_s: float, rounds_done: int, active: list) -> None:
    """Apply the faults that are due, undo the ones whose time is up."""
    for fault in faults:
        if fault.applied_s is None and not fault.error and rounds_done >= fault.at_round:
            try:
                apply(lab, fault)
            except LabUnsupported as unsupported:
                fault.error = str(unsupported)
                continue
            fault.applied_s = now_s
            if fault.kind not in INSTANT:
                active.append(fault)
    for fault in list(active):
        if fault.due_to_end(now_s, rounds_done):
            undo(lab, fault)
            fault.undone_s = now_s
            active.remove(fault)


def _rounds_done(history: list) -> int:
    """The fit's latest round (a resumed fit's records go on from its checkpoint)."""
    return max((h.get("round", 0) for h in history), default=0)


def _result_line(log: Path) -> dict:
    lines = [ln for ln in log.read_text(errors="replace").splitlines()
             if ln.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT "):]) if lines else {}


def run_fit(lab, opts: dict, faults: list, deadline_s: float = 900,
            kill_driver_at: Optional[int] = None,
            driver: str = "lab_fault_driver.py") -> FitRun:
    """Run `driver` (a script here: lab_fault_driver.py, or lab_stream_driver.py) on the
    driver host with `opts` (its metrics file in the lab's work dir unless given),
    stepping `faults` as its rounds land. Every fault is undone when this returns,
    whatever happened; past deadline_s the driver is killed, and at round
    kill_driver_at too (SIGKILL to its process group: its JVM with it)."""
    work = Path(lab.work_dir)
    metrics = Path(opts.setdefault("metrics", str(work / f"faults-{time.time_ns()}.jsonl")))
    log = metrics.with_suffix(".log")
    env = lab.spark_env("driver")
    env["PYTHONPATH"] = str(HERE)
    # a resumed fit appends to its metrics file: count from the rounds it holds
    active, gaps, last_round_at = [], [], 0.0
    seen = _rounds_done(_read_history(metrics))
    with open(log, "w") as out:
        process = lab.popen_in("driver", [lab.python, HERE / driver, json.dumps(opts)],
                               env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT)
    start = time.monotonic()
    try:
        while process.poll() is None:
            now = time.monotonic() - start
            done = _rounds_done(_read_history(metrics))
            if now > deadline_s or (kill_driver_at and done >= kill_driver_at):
                os.killpg(process.pid, signal.SIGKILL)
                break
            if done > seen:
                gaps.append(now - last_round_at)
                last_round_at, seen = now, done
            _step_faults(lab, faults, now, done, active)
            time.sleep(POLL_S)
        process.wait(timeout=60)
    finally:
        for fault in active:
            undo(lab, fault)
            fault.undone_s = time.monotonic() - start
        if process.poll() is None:
            process.kill()
    wall = time.monotonic() - start
    return FitRun(result=_result_line(log), history=_read_history(metrics), faults=faults,
                  longest_wait_s=max(gaps[1:] + [wall - last_round_at]),
                  first_round_s=gaps[0] if gaps else wall, wall_s=wall,
                  extra={"start_monotonic": start},
                  log_tail=log.read_text(errors="replace")[-3000:])


def _checkpoint(directory: Path) -> dict:
    path = directory / "checkpoint.json"
    return json.loads(path.read_text()) if path.exists() else {}


def soak(lab, fit_opts: dict, work: Path, seed: int, kill_driver_at: int,
         every: tuple = (3, 6), down_s: tuple = (2.0, 8.0), deadline_s: float = 3600) -> dict:
    """The same seeded fit undisturbed, then under chaos_schedule(seed) with the driver
    killed at round kill_driver_at and resumed from its checkpoint (fit_opts must ask
    for checkpoints). What each did, and whether the checkpoint's history holds every
    round exactly once."""
    rounds = fit_opts["rounds"]
    calm = run_fit(lab, {**fit_opts, "metrics": str(work / "calm.jsonl")}, [], deadline_s)
    schedule = chaos_schedule(seed, rounds, [w.name for w in lab.workers], every=every,
                              down_s=down_s)
    chaos = {**fit_opts, "metrics": str(work / "chaos.jsonl"),
             "checkpoint_dir": str(work / "checkpoints")}
    first = run_fit(lab, chaos, [f for f in schedule if f.at_round < kill_driver_at],
                    deadline_s, kill_driver_at=kill_driver_at)
    resumed_from = _checkpoint(work / "checkpoints").get("round")
    second = run_fit(lab, {**chaos, "resume": True},
                     [f for f in schedule if f.at_round >= kill_driver_at], deadline_s)
    history = _checkpoint(work / "checkpoints").get("history", [])
    return {"calm": calm.result, "chaos": second.result,
            "accuracy_drop_points": 100 * ((calm.result.get("accuracy") or 0)
                                           - (second.result.get("accuracy") or 0)),
            "driver_killed_at_round": _rounds_done(first.history),
            "resumed_from_round": resumed_from,
            "rounds_exactly_once": [h.get("round") for h in history] ==
            list(range(1, rounds + 1)),
            "longest_wait_s": max(first.longest_wait_s, second.longest_wait_s),
            "calm_wall_s": calm.wall_s, "chaos_wall_s": first.wall_s + second.wall_s,
            "chaos_log_tail": second.log_tail[-1500:],
            "faults": [asdict(f) for f in schedule]}
