"""BENCHMARKS.md's tables of the network lab's faults (render.py): every fault kind
against both exchanges (bench/lab_faults.py), the soak (bench/lab_soak.py), and the
test suite beside busy processes (bench/suite_under_load.py)."""
from __future__ import annotations

import statistics

from render_tables import header, row, spread, stored, table


W1 = "198.18.0.11"  # the host every fault hits


def _outcome(r: dict) -> str:
    result = r["result"]
    if result.get("outcome") == "unsupported":
        why = r["faults"][0]["error"] or "this kernel has no netem qdisc"
        return "not run: " + why.split(",")[0]
    if result.get("outcome") != "failed":
        return result.get("outcome", "no result")
    text = f"failed: {result['error']}" + (f" naming {W1}" if W1 in result["message"] else "")
    fault = r["faults"][0] if r["faults"] else {}
    if fault.get("applied_s") is not None and "start_monotonic" in r:
        # one clock, the machine's CLOCK_MONOTONIC, on both sides
        text += f", {result['ended_monotonic'] - r['start_monotonic'] - fault['applied_s']:.0f}"
        text += " s after the fault"
    return text


def _rounds(r: dict, at_round: int) -> str:
    under = [s for s in r.get("round_s", [])[at_round:at_round + 4] if s]
    if not under:
        return "-"
    return (f"{statistics.median(under):.2f} / {max(under):.2f} "
            f"({r['undisturbed_round_s']:.2f})")


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
    lines = header("fault on w1 after round %d" % e["at_round"], "exchange", "what the fit did",
                   "rounds %d-%d s: median / max (undisturbed median)" % (e["at_round"] + 1,
                                                                          e["at_round"] + 4),
                   "accuracy / undisturbed",
                   "longest wait between rounds s", text=(1, 2, 4))
    for r in data["rows"]:
        wait = r.get("longest_wait_s")
        lines.append(row(r["scenario"], r["exchange"], _outcome(r), _rounds(r, e["at_round"]),
                         _accuracy(r),
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
        f"rounds {e['longest_wait_s']:.1f} s (the resumed driver's start-up included)."]


@table
def security_cost():
    data, src = stored("security_cost")
    e = data["extra"]
    lines = header("Spark security", "command wall s, median (min-max)",
                   "median round s, median (min-max)", "clear-RPC warning printed",
                   text=(3,))
    for r in data["rows"]:
        lines.append(row(r["variant"], spread(r["wall_s"], 1), spread(r["round_s"], 3),
                         ", ".join("yes" if w else "no" for w in r["clear_warning"])))
    return lines, src + [
        f"`sparknet train` as the demo runs it (LeNet, K=2 on local-cluster, tau=50), "
        f"{e['rounds']} rounds a run, {e['repeats']} runs a variant interleaved; the "
        "round's median over rounds 2 on."]


@table
def suite_under_load():
    data, src = stored("suite_under_load")
    e = data["extra"]
    lines = header("busy processes beside it", "exit status", "tests", "failed", "errors",
                   "skipped", "minutes", "load (1 min): median / max")
    for r in data["rows"]:
        lines.append(row(r["hogs"], r["exit_status"], r.get("tests", "-"),
                         r.get("failures", "-"), r.get("errors", "-"), r.get("skipped", "-"),
                         f"{r['seconds'] / 60:.0f}",
                         f"{e['load_1min_median']:.1f} / {e['load_1min_max']:.1f}"))
    failed = [name for r in data["rows"] for name in r.get("failed", [])]
    return lines, src + [f"A fresh clone of {e['tested_commit'][:12]}, `bash scripts/test.sh` "
                         "(set-up included), each busy process a pure-Python loop. "
                         + (f"Failed: {', '.join(failed)}." if failed else "")]
