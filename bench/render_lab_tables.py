"""BENCHMARKS.md's tables added with the network lab and Spark ML (render.py): the
lab's links, the two exchanges over them, and DataFrame scoring, from their stored
raw output."""
from __future__ import annotations

import json

from render_tables import REPO, header, rel, row, spread, stored, table

LINKS_RUN = REPO / "bench" / "results" / "cpu2-xeon-2026-12-03"


def _links(name: str):
    path = LINKS_RUN / name
    data = json.loads(path.read_text())
    lines = header("K", "ring transfers", "ring min / R", "ring median / R", "ring max / R",
                   "star total / R (median)", "star total / R (min)",
                   "star smallest share / R")
    for s in data["summary"]:
        lines.append(row(s["k"], s["transfers"], f"{s['ring_min']:.3f}",
                         f"{s['ring_median']:.3f}", f"{s['ring_max']:.3f}",
                         f"{s['star_sum_median']:.3f}", f"{s['star_sum_min']:.3f}",
                         f"{s['star_min_share']:.3f}"))
    load = "-".join(f"{x:.0f}" for x in data["load"][:2])
    return lines, [f"Raw: `{rel(path)}` ({data['machine']}, {data['date']}, "
                   f"{data['rate_mbit']:g} Mbit/s, {data['repeats']} repeats interleaved, "
                   f"load {load})."]


@table
def netlab_links():
    return _links("netlab_links.json")


@table
def netlab_links_1000():
    return _links("netlab_links_1000.json")


@table
def exchange_lab():
    data, src = stored("exchange_lab")
    e = data["extra"]
    lines = header("K", "exchange", "sync s, median (min-max)", "bound s", "/ bound",
                   "the star's sync / this", "/ float32's", "compute s", text=(1,))
    for r in data["rows"]:
        lines.append(row(r["k"], r["variant"], spread(r["samples"], 2),
                         f"{r['bound_s']:.2f}", f"{r['over_bound']:.2f}",
                         _star_over(r, data["rows"]), _over_float32(r, data["rows"]),
                         f"{r['compute_median_s']:.1f}"))
    note = e.get("note", "")
    return lines, src + [f"{e['floats']:,} floats (AlexNet's size), links shaped to "
                         f"{e['rate_mbit']:g} Mbit/s, {e['rounds']} rounds of tau={e['tau']} "
                         f"a fit (the middle ones timed), {e['repeats']} fits a variant "
                         "interleaved. " + note]


def _over_float32(ring_row: dict, rows: list) -> str:
    """A 16-bit ring's sync over the float32 ring's of the same K and link."""
    variant = ring_row["variant"]
    if not variant.endswith(("bfloat16", "float16")):
        return ""
    same = variant.rsplit("-", 1)[0]
    base = [r for r in rows if r["k"] == ring_row["k"] and r["variant"] == same]
    return f"{ring_row['sync_median_s'] / base[0]['sync_median_s']:.2f}" if base else ""


def _star_over(ring_row: dict, rows: list) -> str:
    """A ring row's speed-up over the star of the same K and link (TLS or clear)."""
    if not ring_row["variant"].startswith("ring"):
        return ""
    link = "tls" if "-tls" in ring_row["variant"] else "plain"
    star = [r for r in rows if r["k"] == ring_row["k"] and r["variant"] == f"driver-{link}"]
    return f"{star[0]['sync_median_s'] / ring_row['sync_median_s']:.1f}x" if star else ""


@table
def ml_scoring():
    data, src = stored("ml_scoring")
    e = data["extra"]
    k = e["workers"]
    lines = header("variant", "images/s, median", "min-max", "n",
                   f"ratio to {k} x one process")
    for r in data["rows"]:
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "1 process"
        lines.append(row(r["variant"], f"{r['median']:.0f}", f"{r['min']:.0f}-{r['max']:.0f}",
                         str(r["n"]), ratio))
    return lines, src + [f"LeNet, batch {e['batch']}, {e['images']:,} images a run on {k} "
                         "executors of one core; variants interleaved, "
                         f"{e['repeats_each']} runs each; the first actions timed once."]


@table
def lab_fit_exchanges():
    data, src = stored("lab_fit_exchanges")
    e = data["extra"]
    lines = header("exchange", "test accuracy", "fit s", "weights vs the star's, round 1",
                   f"after round {e['rounds']}")
    for r in data["rows"]:
        lines.append(row(r["exchange"], f"{r['accuracy']:.4f}", f"{r['fit_s']:.0f}",
                         f"{r.get('vs_star_after_round_1', 0.0):.2e}",
                         f"{r.get('vs_star_at_the_end', 0.0):.2e}"))
    return lines, src + [f"LeNet on Fashion-MNIST (60,000 / 10,000), K={e['k']} worker hosts, "
                         f"{e['rate_mbit']:g} Mbit/s links, {e['rounds']} rounds of "
                         f"tau={e['tau']}, seed 3; weights: relative L2 difference. "
                         + e.get("note", "")]
