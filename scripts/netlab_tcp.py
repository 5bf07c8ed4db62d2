#!/usr/bin/env python3
"""Raw TCP transfers between the lab's hosts, to show the links hold their rate.

    measure(lab, [("w1", "driver"), ("w2", "w1")], seconds=3) -> [{src, dst, mbit, ...}]

starts one sink per transfer on its destination host and one sender on its source
host (each `python netlab_tcp.py sink|send` inside that host's namespace), all at
once, and reports each transfer's rate: the bytes received after a warm-up,
over the time they took (so TCP's slow start and htb's first burst don't count).
"""
from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

CHUNK = 1 << 20
FIRST_PORT = 7100


def sink(bind: str, port: int, seconds: float, warmup: float) -> dict:
    """Accept one connection, read to its end (or a deadline); the rate after warm-up."""
    with socket.create_server((bind, port)) as server:
        server.settimeout(seconds + 30)
        print("ready", flush=True)
        conn, _ = server.accept()
    conn.settimeout(10)
    buf = bytearray(CHUNK)
    total, start, counted, t0, t_last = 0, None, 0, None, None
    deadline = time.monotonic() + seconds + 30
    with conn:
        while time.monotonic() < deadline:
            n = conn.recv_into(buf)
            if not n:
                break
            now = time.monotonic()
            start = start or now
            total += n
            if now - start >= warmup:
                t0 = t0 or now
                counted += n if t0 != now else 0
                t_last = now
    span = (t_last - t0) if t0 and t_last and t_last > t0 else 0.0
    return {"bytes": total, "counted_bytes": counted, "seconds": span, "t0": t0, "t1": t_last,
            "mbit": counted * 8 / span / 1e6 if span else 0.0}


def send(to: str, port: int, seconds: float) -> None:
    payload = bytes(CHUNK)
    with socket.create_connection((to, port), timeout=10) as s:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            s.sendall(payload)


def _wait_ready(proc: subprocess.Popen, what: str, deadline_s: float = 20) -> None:
    import select
    ready, _, _ = select.select([proc.stdout], [], [], deadline_s)
    line = proc.stdout.readline() if ready else ""
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"the sink for {what} did not start in {deadline_s:.0f} s: "
                           f"{line!r} {proc.stderr.read()[-500:] if not ready else ''}")


def measure(lab, pairs: list, seconds: float = 3.0, warmup: float = 0.5) -> list[dict]:
    """Simultaneous transfers src -> dst (host names) for `seconds`; their rates."""
    me, python = str(Path(__file__).resolve()), lab.python
    sinks, senders = [], []
    try:
        for i, (src, dst) in enumerate(pairs):
            ip, port = lab.host(dst).ip, FIRST_PORT + i
            proc = lab.popen_in(dst, [python, me, "sink", ip, port, seconds, warmup],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            sinks.append(proc)
            _wait_ready(proc, f"{src} -> {dst}")
        for i, (src, dst) in enumerate(pairs):
            senders.append(lab.popen_in(src, [python, me, "send", lab.host(dst).ip,
                                              FIRST_PORT + i, seconds],
                                        stderr=subprocess.PIPE, text=True))
        results = []
        for (src, dst), proc in zip(pairs, sinks):
            out, err = proc.communicate(timeout=seconds + 60)
            if proc.returncode:
                raise RuntimeError(f"the sink for {src} -> {dst} failed: {err[-800:]}")
            results.append({"src": src, "dst": dst, **json.loads(out.splitlines()[-1])})
        for proc in senders:
            proc.wait(timeout=30)
    finally:
        for proc in sinks + senders:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    rate = lab.rate_mbit
    for r in results:
        r["fraction"] = r["mbit"] / rate if rate else None
    return results


def aggregate_mbit(results: list[dict]) -> float:
    """Transfers sharing a link: all their counted bytes over the span from the first
    one's start to the last one's end (monotonic clocks are one clock across processes;
    each one's warm-up bytes fall outside, so this errs low)."""
    starts = [r["t0"] for r in results if r["t0"]]
    ends = [r["t1"] for r in results if r["t1"]]
    if not starts or not ends or max(ends) <= min(starts):
        return 0.0
    return sum(r["counted_bytes"] for r in results) * 8 / (max(ends) - min(starts)) / 1e6


def ring_pairs(lab) -> list:
    """Each worker sends to the next (the ring's pattern: every link busy both ways)."""
    names = [w.name for w in lab.workers]
    return [(a, names[(i + 1) % len(names)]) for i, a in enumerate(names)]


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sink")
    s.add_argument("bind")
    s.add_argument("port", type=int)
    s.add_argument("seconds", type=float)
    s.add_argument("warmup", type=float)
    c = sub.add_parser("send")
    c.add_argument("to")
    c.add_argument("port", type=int)
    c.add_argument("seconds", type=float)
    args = p.parse_args(argv)
    if args.cmd == "sink":
        print(json.dumps(sink(args.bind, args.port, args.seconds, args.warmup)), flush=True)
    else:
        send(args.to, args.port, args.seconds)


if __name__ == "__main__":
    main()
