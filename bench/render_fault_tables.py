"""BENCHMARKS.md's tables of the network lab's faults (render.py): every fault kind
against both exchanges (bench/lab_faults.py) and the soak (bench/lab_soak.py)."""
from __future__ import annotations

from render_tables import header, row, stored, table


def _outcome(r: dict) -> str:
    result = r["result"]
    if result.get("outcome") == "unsupported":
        return "not run: " + r["faults"][0]["error"].split(",")[0]
    if result.get("outcome") == "failed":
        fault = r["faults"][0] if r["faults"] else {}
        after = (result["ended_monotonic"] - r["start_monotonic"] - fault["applied_s"]
                 if fault.get("applied_s") is not None and "start_monotonic" in r
                 else None)  # one clock: the machine's CLOCK_MONOTONIC
        return f"failed: {result['error']}" + (f", {after:.0f} s after the fault"
                                               if after is not None else "")
    return result.get("outcome", "no result")


def _rounds(r: dict) -> str:
    if r.get("faulted_round_s") is None:
        return "-"
    return f"{r['faulted_round_s']:.2f} / {r['undisturbed_round_s']:.2f}"


def _accuracy(r: dict) -> str:
    accuracy = r["result"].get("accuracy")
    if accuracy is None:
        return "-"
    same = " (same weights)" if r.get("weights_equal") else ""
    return f"{accuracy:.4f} / {r['undisturbed_accuracy']:.4f}{same}"


@table
def lab_faults():
    data, src = stored("lab_faults")
    e = data["extra"]
    lines = header("fault on w1 from round %d" % e["at_round"], "exchange", "what the fit did",
                   "round s under it / undisturbed (median)", "accuracy / undisturbed",
                   "longest wait between rounds s", text=(1, 2, 4))
    for r in data["rows"]:
        wait = r.get("longest_wait_s")
        lines.append(row(r["scenario"], r["exchange"], _outcome(r), _rounds(r), _accuracy(r),
                         f"{wait:.1f}" if wait is not None else "-"))
    return lines, src + [
        f"LeNet on Fashion-MNIST ({e['train']:,} training images, 2,000 test), K={e['k']} "
        f"worker hosts, {e['rate_mbit']:g} Mbit/s links, {e['rounds']} rounds of "
        f"tau={e['tau']}, seed 3, round_timeout {e['round_timeout']:g} s. 'Same weights': "
        "the final weights are bit-for-bit the undisturbed fit's."]


@table
def lab_soak():
    data, src = stored("lab_soak")
    e = data["extra"]
    kinds = {}
    for f in data["rows"]:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    lines = header("run", "outcome", "test accuracy", "wall s", text=(1,))
    lines.append(row("undisturbed", e["calm"]["outcome"], f"{e['calm']['accuracy']:.4f}",
                     f"{e['calm_wall_s']:.0f}"))
    lines.append(row("chaos + driver killed and resumed", e["chaos"].get("outcome"),
                     f"{e['chaos'].get('accuracy') or 0:.4f}", f"{e['chaos_wall_s']:.0f}"))
    faults = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return lines, src + [
        f"LeNet, K={e['k']} worker hosts at {e['rate']:g} Mbit/s, {e['rounds']} rounds of "
        f"tau={e['tau']}, checkpoints every {e['checkpoint_every']} rounds; chaos seed "
        f"{e['seed']}: {faults}; the driver killed at round {e['driver_killed_at_round']} "
        f"and resumed from round {e['resumed_from_round']}. Accuracy drop "
        f"{e['accuracy_drop_points']:.2f} points; every round exactly once in the "
        f"checkpoint's history: {e['rounds_exactly_once']}; longest wait between two "
        f"rounds {e['longest_wait_s']:.1f} s."]
