"""Network faults on the lab (scripts/netlab_faults.py) against both exchanges, small:
K=2 worker hosts at 500 Mbit/s, LeNet, a few rounds (bench/lab_faults.py is the full
table).

Faults shorter than the round's deadline (loss, a 10x slower link, the link down, a
one-way cut either way) leave a fit's final weights bit-for-bit those of the same
undisturbed fit: the rounds wait, TCP resends, nothing is mis-summed. Longer ones fail
the fit naming the host while the fault still holds. No speed is asserted: only that
order (a fit that fails past its deadline does not wait the fault out).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from netlab_fixture import lab, lab_unavailable, netlab  # noqa: F401  (scripts/ on the path)
import netlab_faults  # noqa: E402
from netlab_faults import Fault, chaos_schedule, run_fit  # noqa: E402

DEADLINE_S = 20.0
SHORT_SCHEDULE = [("loss:0.05", "w1", 1, None, 2), ("slow:10", "w2", 2, None, 2),
                  ("down", "w1", 3, 3.0, None), ("cut_out", "w2", 4, 3.0, None),
                  ("cut_in", "w1", 5, 3.0, None)]


def opts(exchange: str, weights, **more) -> dict:
    return {"exchange": exchange, "rounds": 7, "tau": 5, "train": 1000, "test": 1000,
            "round_timeout": DEADLINE_S, "weights_out": str(weights), **more}


def bridge_rules(lab) -> str:
    """The lab's nft fault rules now (every fault rule drops: '' when none is left)."""
    import netlab_links
    out = netlab_links.sh([*netlab_links.in_ns(lab.bridge_ns), "nft", "list", "table",
                           "bridge", netlab_links.TABLE], check=False).stdout
    return "\n".join(line.strip() for line in out.splitlines() if "drop" in line)


@pytest.mark.parametrize("exchange", ["driver", "ring"])
def test_faults_shorter_than_the_deadline_leave_the_weights_unchanged(lab, tmp_path,
                                                                      exchange):
    calm = run_fit(lab, opts(exchange, tmp_path / "calm.npy"), [])
    assert calm.result.get("outcome") == "finished", calm.log_tail
    faults = [Fault(kind, host, at, seconds=s, rounds=r)
              for kind, host, at, s, r in SHORT_SCHEDULE]
    stormy = run_fit(lab, opts(exchange, tmp_path / "stormy.npy"), faults)
    assert stormy.result.get("outcome") == "finished", stormy.log_tail
    assert all(f.applied_s is not None and f.undone_s is not None for f in faults), faults
    assert len(stormy.history) == 7
    assert np.array_equal(np.load(tmp_path / "calm.npy"), np.load(tmp_path / "stormy.npy"))
    assert stormy.result["accuracy"] == calm.result["accuracy"] > 0.5
    assert bridge_rules(lab) == "", "a fault outlived its run"
    print(f"{exchange}: longest wait {stormy.longest_wait_s:.1f} s "
          f"(undisturbed {calm.longest_wait_s:.1f} s); rounds "
          f"{[round(h['round_s'], 2) for h in stormy.history]}")


@pytest.mark.parametrize("exchange, kind", [("driver", "down"), ("ring", "cut_out")])
def test_a_fault_past_the_deadline_fails_the_fit_naming_the_host(lab, tmp_path, exchange,
                                                                 kind):
    """The link down, or only w1's packets to the driver dropped, for longer than the
    round deadline: the fit fails naming w1 while the fault still holds (it did not wait
    the fault out). Timed on the fit's own clock: the driver's spark.stop() afterwards
    may wait on Spark's RPC timeouts towards the cut host, which is Spark's, not the fit's."""
    fault = Fault(kind, "w1", 2, seconds=DEADLINE_S + 100)
    run = run_fit(lab, opts(exchange, tmp_path / "w.npy", rounds=50), [fault],
                  deadline_s=600)
    assert run.result.get("outcome") == "failed", run.log_tail
    assert run.result["error"] == "RoundTimeoutError", run.result
    assert lab.host("w1").ip in run.result["message"], run.result
    assert fault.applied_s is not None
    fault_on_at = run.extra["start_monotonic"] + fault.applied_s
    failed_after_fault_s = run.result["ended_monotonic"] - fault_on_at
    assert failed_after_fault_s < fault.seconds, (failed_after_fault_s, run.result)
    print(f"{exchange} {kind}: failed {failed_after_fault_s:.0f} s after the fault (the "
          f"driver's exit {run.wall_s - fault.applied_s:.0f} s): {run.result['message'][:300]}")


def test_chaos_schedule_is_seeded_and_bounded():
    hosts = ["w1", "w2", "w3"]
    first = chaos_schedule(7, 200, hosts)
    assert first == chaos_schedule(7, 200, hosts)
    assert first != chaos_schedule(8, 200, hosts)
    rounds = [f.at_round for f in first]
    assert all(3 <= b - a <= 6 for a, b in zip(rounds, rounds[1:])) and rounds[-1] < 200
    assert {f.host for f in first} <= set(hosts)
    assert {f.kind for f in first} == {"loss:0.01", "loss:0.05", "slow:10", "down",
                                       "cut_out", "kill"}
    assert all(2.0 <= f.seconds <= 8.0 for f in first if f.seconds is not None)
    with pytest.raises(ValueError, match="unknown fault kind 'flood'"):
        Fault("flood", "w1", 1)


def test_an_unsupported_fault_is_reported_not_raised(lab):
    """A fault this kernel cannot make (delay without netem) is marked with the reason
    and the fit goes on; where netem exists, the fault is applied and undone."""
    fault = Fault("delay:50", "w1", 0, rounds=1)
    active = []
    netlab_faults._step_faults(lab, [fault], 0.0, 0, active)
    if fault.error:
        assert "netem" in fault.error and not active
    else:
        netlab_faults._step_faults(lab, [fault], 1.0, 5, active)
        assert fault.undone_s == 1.0 and not active


def test_a_short_soak_under_chaos_resumes_and_holds_every_round_once(lab, tmp_path):
    """bench/lab_soak.py in small: 24 rounds under a seeded chaos schedule (loss, a slow
    link, links down and cut to the driver for 1-3 s, executors killed), checkpoints
    every 4 rounds, the driver killed at round 12 and resumed. It finishes, the
    checkpoint's history holds rounds 1-24 once each, and the accuracy stays near the
    undisturbed fit's (a short fit: 3 points; the 200-round bench holds 0.5)."""
    fit_opts = {"rounds": 24, "tau": 5, "train": 2000, "test": 2000, "checkpoint_every": 4,
                "round_timeout": DEADLINE_S}
    report = netlab_faults.soak(lab, fit_opts, tmp_path, seed=5, kill_driver_at=12,
                                every=(3, 5), down_s=(1.0, 3.0), deadline_s=900)
    print({k: v for k, v in report.items() if k not in ("faults", "chaos_log_tail")})
    assert report["calm"]["outcome"] == "finished", report["calm"]
    assert report["chaos"]["outcome"] == "finished", report["chaos_log_tail"]
    assert report["rounds_exactly_once"], report
    assert 8 <= report["resumed_from_round"] <= 12 <= report["driver_killed_at_round"]
    assert all(f["applied_s"] is not None for f in report["faults"]), report["faults"]
    assert abs(report["accuracy_drop_points"]) < 3.0, report
    assert bridge_rules(lab) == ""


def test_the_master_killed_mid_fit_leaves_the_fit_running(tmp_path):
    """A standalone master lost (SIGKILL) after round 2: the app's executors are already
    granted, so the fit trains on; what it loses is the chance of new executors. A lab
    of its own, as the master stays dead."""
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    with netlab.Lab(k=2, rate_mbit=500, spark=True) as own_lab:
        fault = Fault("kill_master", "master", 2)
        run = run_fit(own_lab, opts("driver", tmp_path / "w.npy"), [fault], deadline_s=400)
        assert fault.applied_s is not None and not fault.error, fault
        assert not netlab_faults.jvm_pids(own_lab, "master", b"deploy.master")
    assert run.result.get("outcome") == "finished", run.log_tail
    assert len(run.history) == 7 and run.result["accuracy"] > 0.5


def test_a_stream_whose_driver_is_cut_mid_batch_trains_each_batch_once(lab, tmp_path):
    """A Structured Streaming fit (one parquet file a micro-batch, 2 rounds a batch)
    with the driver host cut off in batch 2's second round for longer than the round
    deadline: the query fails naming a host; run again on the same folders, it
    resumes from its checkpoints and every batch is trained on exactly once."""
    files, per_file = 4, 600
    opts = {"folder": str(tmp_path / "in"), "checkpoint_dir": str(tmp_path / "checkpoint"),
            "metrics": str(tmp_path / "metrics.jsonl"), "files": files, "per_file": per_file,
            "tau": 5, "rounds_per_batch": 2, "round_timeout": DEADLINE_S, "timeout": 400}
    cut = Fault("cut", "driver", at_round=5, seconds=DEADLINE_S + 40)
    first = run_fit(lab, dict(opts), [cut], deadline_s=500, driver="lab_stream_driver.py")
    assert cut.applied_s is not None and cut.undone_s is not None
    assert first.result.get("outcome") == "failed", first.log_tail
    print("cut mid-batch:", first.result["error"], first.result["message"][:300])
    second = run_fit(lab, dict(opts), [], deadline_s=500, driver="lab_stream_driver.py")
    assert second.result.get("outcome") == "finished", second.log_tail
    assert second.result["batch_records"] == [[b, per_file] for b in range(files)]
    meta = json.loads((tmp_path / "checkpoint" / "model" / "checkpoint.json").read_text())
    assert [r["batch_id"] for r in meta["history"]] == [b for b in range(files)
                                                         for _ in range(2)]
