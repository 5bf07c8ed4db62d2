"""BENCHMARKS.md's tables, each computed from stored raw output (see render.py).

Every function returns (markdown lines, source lines). A timing cell is
"median (min-max)" over the stored repeats; "drift" marks a variant one of whose
repeats lies more than 15% from its own median (results_io.summarize).
"""
from __future__ import annotations

import ast
import json
import re
import statistics
from functools import partial
from pathlib import Path

import results_io

REPO = Path(__file__).resolve().parent.parent
GPU_RUN = REPO / "bench" / "results" / "gpu-h100-2026-11-27"
TABLES: dict = {}


def table(fn):
    TABLES[fn.__name__] = fn
    return fn


def rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def stored(name: str) -> tuple[dict, list[str]]:
    """The newest record called `name`, and the line naming it."""
    path = results_io.latest(name)
    if path is None:
        raise LookupError(f"no stored result {name}.json under {results_io.results_root()}")
    data = results_io.load(path)
    load = f"{data['load_before'][0]:.1f} -> {data['load_after'][0]:.1f}"
    commit = data["commit"][:12] + (" (uncommitted changes)" if data["commit"].endswith(
        "-dirty") else "")
    line = (f"Raw: `{rel(path)}`; `{data['command']}`, commit {commit}, "
            f"{data['date']}, {data['machine']} ({data['cpu']}), load {load}.")
    return data, [line]


def header(*names: str, text_columns: int = 1, text: tuple = ()) -> list[str]:
    """A table's first two lines; text columns (the first ones, or those indexed
    in `text`) align left, figures right."""
    aligns = ["---" if i < text_columns or i in text else "---:" for i in range(len(names))]
    return ["| " + " | ".join(names) + " |", "|" + "|".join(aligns) + "|"]


def row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


spread = results_io.spread_text  # the bench scripts print theirs the same way


def yes(flag: bool) -> str:
    return "yes" if flag else "no"


def median(values) -> float:
    return statistics.median(values)


@table
def weights_copy():
    data, src = stored("weights_copy")
    samples, mb = data["repeats"], data["extra"]["megabytes"]
    base = median(next(iter(samples.values())))
    lines = header("operation", "ms, median (min-max)", "GB/s at the median", "/ memcpy")
    for name, times in samples.items():
        lines.append(row(name, spread(times, 1, 1e3), f"{mb / 1e3 / median(times):.2f}",
                         f"{median(times) / base:.2f}"))
    return lines, src


@table
def finite_check():
    data, src = stored("finite_check")
    extra, samples = data["extra"], data["repeats"]
    n, train = extra["records"], extra["train_s_per_record"]
    copy = median(samples["np.copy (baseline)"])
    lines = header("what", "ms for all, median (min-max)", "us per record", "vs copy",
                   "vs LeNet training")
    for name, times in samples.items():
        took = median(times)
        lines.append(row(name, spread(times, 1, 1e3), f"{took / n * 1e6:.3f}",
                         f"{took / copy:.2f}", f"{took / n / train:.5f}"))
    lines.append(row("LeNet training, batch 64 (one Net, one run)", "-",
                     f"{train * 1e6:.1f}", "-", "1"))
    return lines, src


@table
def jpeg_decode():
    data, src = stored("jpeg_decode")
    s = data["repeats"]
    names = {"pillow": "Pillow decode to an RGB array (baseline)",
             "opencv": "OpenCV decode to a BGR CHW array (baseline)",
             "pysparknet": "pysparknet decode + resize 256x256 + BGR CHW + crop 227"}
    lines = header("pipeline", "images/s, median (min-max)", "/ Pillow decode",
                   "/ OpenCV decode")
    for key, name in names.items():
        rate = median(s[key])
        lines.append(row(name, spread(s[key], 0), f"{rate / median(s['pillow']):.2f}",
                         f"{rate / median(s['opencv']):.2f}"))
    return lines, src


@table
def exchange_connect():
    data, src = stored("exchange_connect")
    samples = data["repeats"]
    plain = median(samples["tls=False"])
    lines = header("link", "ms per connection, median (min-max)", "vs plain")
    for name, times in samples.items():
        lines.append(row(name, spread(times, 2, 1e3), f"{median(times) / plain:.2f}"))
    return lines, src


@table
def first_round():
    data, src = stored("first_round")
    samples = data["repeats"]
    names = {"records": f"parallelized records ({data['extra']['images']:,})",
             "arrays": "(images, labels) arrays"}
    base = median(samples["records"])
    lines = header("training data into fit", "s before round 1, median (min-max)",
                   "vs records")
    for key, name in names.items():
        lines.append(row(name, spread(samples[key], 2), f"{median(samples[key]) / base:.2f}"))
    return lines, src


@table
def lenet_cores():
    data, src = stored("lenet_cores")
    lines = header("batch", "1 thread, alone ms", "2 threads, alone ms",
                   "2 x 1 thread, side by side ms", "2nd thread's gain",
                   "K=2 images/s vs. 2-thread net", text_columns=0)
    for r in data["rows"]:
        s = r["samples"]
        one, two, pair = (median(s[k]) for k in ("one", "two", "pair"))
        lines.append(row(r["batch"], spread(s["one"], 2), spread(s["two"], 2),
                         spread(s["pair"], 2), f"{one / two:.2f}", f"{2 * two / pair:.2f}"))
    return lines, src


def gpu_speed_runs() -> tuple[list[list[tuple]], list[str]]:
    """The `[bench] (net, batch, ...)` lines of each stored GPU speed run."""
    paths = sorted(GPU_RUN.glob("speed-run*.log"))
    runs = [[ast.literal_eval(line[len("[bench] "):]) for line in p.read_text().splitlines()
             if line.startswith("[bench] (")] for p in paths]
    return runs, [f"Raw: " + ", ".join(f"`{rel(p)}`" for p in paths) + " (one file a run)."]


@table
def gpu_speed():
    runs, src = gpu_speed_runs()
    lines = header("net", "batch", "run", "caffe time ms", "Net fwd+bwd ms", "Net.train ms",
                   "Net fwd+bwd, heuristic picks ms", "PyTorch fp32 step ms (heuristic / "
                   "measured picks)", "PyTorch TF32 step ms")
    for index, run in enumerate(runs, 1):
        for net, batch, caffe, fwd, train, heur, (fp32, fp32_b, tf32) in run:
            lines.append(row(net, batch, index, f"{caffe:.2f}", f"{fwd:.2f}", f"{train:.2f}",
                             f"{heur:.2f}", f"{fp32:.2f} / {fp32_b:.2f}", f"{tf32:.2f}"))
    return lines, src


@table
def gpu_ratio():
    runs, src = gpu_speed_runs()
    lines = header("net", "Net.train / PyTorch fp32 step (the faster pick)",
                   "Net.train / PyTorch TF32 step (PyTorch's default)", "caffe time / Net fwd+bwd")
    nets = [r[0] for r in runs[0]]
    for net in nets:
        got = [next(r for r in run if r[0] == net) for run in runs]
        fp32 = [r[4] / min(r[6][0], r[6][1]) for r in got]
        tf32 = [r[4] / r[6][2] for r in got]
        caffe = [r[2] / r[3] for r in got]
        lines.append(row(net, *(" / ".join(f"{v:.2f}" for v in vals)
                                for vals in (fp32, tf32, caffe))))
    return lines, src + ["(One value a run, run 1 / run 2; below 1 = Net takes less time.)"]


@table
def gpu_conv_batch():
    path = GPU_RUN / "conv-batch" / "conv_batch.log"
    lines = header("net", "batch", "per image ms", "batched ms", "per image / batched",
                   "cuDNN layers ms")
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"\d+", cells[1]):
            per, batched = float(cells[2]), float(cells[3])
            lines.append(row(cells[0], cells[1], f"{per:.2f}", f"{batched:.2f}",
                             f"{per / batched:.2f}", f"{float(cells[5]):.2f}"))
    gap = re.search(r"max relative weight difference ([\d.e+-]+)", path.read_text())
    note = f"CPU vs GPU, engine CAFFE batched, LeNet after 5 steps: max relative weight " \
           f"difference {float(gap.group(1)):.1e}." if gap else "No CPU-GPU check in the log."
    return lines, [f"Raw: `{rel(path)}`. {note}"]


@table
def gpu_checks():
    path = GPU_RUN / "gpu_checks.json"
    c = json.loads(path.read_text())
    a, acc = c["agreement"], c["accuracy"]
    lines = header("check", "result", "pass", text_columns=3)
    lines.append(row("LeNet, same weights and batches, 5 steps on CPU and GPU",
                     f"max relative weight difference {a['max_relative_weight_difference']:.1e} "
                     f"(heuristic picks {a['max_relative_weight_difference_heuristic_picks']:.1e})"
                     f"; loss difference {a['loss_difference']:.1e}", yes(a["pass"])))
    lines.append(row("GPU feed vs the CPU's, 3 steps", "bit-exact" if c["feed"]["bit_exact"]
                     else "differs", yes(c["feed"]["pass"])))
    lines.append(row("huge net, then LeNet in the same process", "out of memory, then LeNet "
                     f"loss {c['oom']['next_net_loss']:.2f}", yes(c["oom"]["pass"])))
    lines.append(row(f"LeNet on Fashion-MNIST, {acc['iterations']:,} iterations",
                     f"{acc['accuracy']:.2%} test accuracy, {acc['ms_per_iteration']:.2f} ms "
                     "an iteration", yes(acc["pass"])))
    lines.append(row("a kernel fault in a child process", f"child exit {c['sticky']['child_exit']}"
                     ", sticky CUDA error reported", yes(c["sticky"]["pass"])))
    return lines, [f"Raw: `{rel(path)}`."]


@table
def tau_k():
    from pysparknet.repro.speedup_report import check_markdown
    path = REPO / "repro" / "results" / "tau_k.json"
    results = json.loads(path.read_text())
    text, within, reached = check_markdown(results, results["target"])
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return lines, [f"Raw: `{rel(path)}` ({results['machine']}, started {results['started']}); "
                   f"predicted within 25%: {within} of {reached} runs that reached the target."]


def one_run(data: dict) -> str:
    return "One run, not interleaved (the script measures each side once)."


@table
def train_throughput():
    data, src = stored("train_throughput")
    lines = header("net", "batch", "caffe train img/s", "caffe time (fwd+bwd only) img/s",
                   "Net.train img/s", "Net / caffe train")
    for r in data["rows"]:
        lines.append(row(r["net"], r["batch"], f"{r['caffe_train_ips']:.0f}",
                         f"{r['caffe_time_ips']:.0f}", f"{r['net_train_ips']:.0f}",
                         f"{r['net_train_ips'] / r['caffe_train_ips']:.3f}"))
    return lines, src + [one_run(data)]


@table
def zoo_cpu():
    data, src = stored("zoo_cpu")
    lines = header("net", "variant", "ms a forward-backward, median (min-max)",
                   "/ unpatched caffe time", text_columns=2)
    for r in data["rows"]:
        s = r["samples"]
        base = median(s["caffe time, unpatched"])
        for name, values in s.items():
            lines.append(row(f"{r['net']} b{r['batch']}, {r['threads']} threads", name,
                             spread(values, 1), f"{median(values) / base:.2f}"))
    torch = "" if data["extra"]["torch"] else " PyTorch was not run (no --torch-python)."
    return lines, src + [
        "Caffe's train_val prototxt over an LMDB of random 256x256 images through its Data "
        "layer; `unpatched` is Caffe with patches 0001-0012 only (before the CPU "
        "convolution and OpenMP layers) on OpenBLAS's pthreads build; PyTorch runs the same "
        "TRAIN-phase layers built from the same prototxt (bench/torch_caffe_graph.py); "
        "variants interleaved in fresh processes, one warm-up pass each." + torch]


@table
def spark_job_latency():
    data, src = stored("spark_job_latency")
    e = data["extra"]
    jvm = e["median_ms"]["jvm"]
    lines = header("job", "ms (median of the jobs)", "/ JVM only")
    for key, name in (("jvm", "JVM only (count of a cached RDD)"),
                      ("python", "Python tasks, counted by the JVM"),
                      ("collect", "Python tasks, collected into Python")):
        lines.append(row(name, f"{e['median_ms'][key]:.1f}", f"{e['median_ms'][key] / jvm:.2f}"))
    for name, p in e["partitions"].items():
        lines.append(row(f"Python tasks reading cached {name} partitions "
                         f"({p['bytes'] / 1e6:.0f} MB each)", f"{p['with_data_ms']:.1f}",
                         f"{p['with_data_ms'] / jvm:.2f}"))
        lines.append(row("the same partitions emptied (data-free rounds)",
                         f"{p['data_free_ms']:.1f}", f"{p['data_free_ms'] / jvm:.2f}"))
    return lines, src + [f"Median of {e['jobs']} jobs each, the variants one after another."]


@table
def memory():
    data, src = stored("memory")
    e = data["extra"]
    model = e["model_bytes"]
    worst = max(e["driver_round_peaks"][1:] or e["driver_round_peaks"])
    lines = header("process", "traced Python peak MB", "model-sized copies")
    lines.append(row(f"driver python (worst of rounds 2..{e['rounds']})", f"{worst / 1e6:.0f}",
                     f"{worst / model:.2f}"))
    for pid, peak in sorted(e["worker_peaks"].items()):
        lines.append(row("executor python worker (whole run)", f"{peak / 1e6:.0f}",
                         f"{peak / model:.2f}"))
    lines.append(row("driver JVM, resident after the run", f"{e['driver_jvm_rss_mb']:.0f}", "-"))
    return lines, src + [f"{e['floats']:,} floats = {model / 1e6:.0f} MB a copy; "
                         f"K={e['workers']}, schedule {e['schedule']}, {e['rounds']} rounds. "
                         "The executor JVMs' resident sizes are left out: the script finds "
                         "them by name, which on a shared machine counts other runs' too."]


@table
def feed_wait():
    data, src = stored("feed_wait")
    e = data["extra"]
    s = e["mean_s"]
    lines = header("step (CaffeNet, batch %d)" % e["batch"], "ms per batch",
                   "/ training iteration from arrays")
    for key, name in (("arrays", "training iteration from arrays"),
                      ("records", "training iteration from a list of records (prefetch on)"),
                      ("stream", "training iteration from JPEG files decoded on the fly"),
                      ("feed", "feed + transform alone"),
                      ("memcpy", f"memcpy of the feed's output ({e['feed_bytes'] / 1e6:.1f} MB)"),
                      ("decode", "read + decode + resize of one batch of JPEGs, one thread")):
        lines.append(row(name, f"{s[key] * 1e3:.1f}", f"{s[key] / s['arrays']:.4f}"))
    return lines, src + [f"Mean of {e['iterations']} iterations each, one after another "
                         "(not interleaved)."]


@table
def sync():
    data, src = stored("sync")
    e = data["extra"]
    lines = header("weights", "floats", "link", "schedule", "sync ms", "raw TCP ms",
                   "raw TLS ms", "raw TCP / sync", text=(2, 3))
    ms = partial(spread, scale=1e3)
    for r in data["rows"]:
        ratio = statistics.median(r["raw_tcp_s"]) / statistics.median(r["sync_s"])
        lines.append(row(r["weights"], f"{r['floats']:,}", r["link"], r["schedule"],
                         ms(r["sync_s"]), ms(r["raw_tcp_s"]), ms(r["raw_tls_s"]),
                         f"{ratio:.3f}"))
    raw = e["raw_empty_s"]
    for key, took in e["empty_round_sync_s"].items():
        link, schedule = key.split(",")
        ratio = statistics.median(raw["tcp"]) / statistics.median(took)
        lines.append(row("empty round", 80, link, schedule, ms(took, 2), ms(raw["tcp"], 2),
                         ms(raw["tls"], 2), f"{ratio:.3f}"))
    return lines, src + [f"K={e['workers']}, {e['master']}; median (min-max) of "
                         f"{e['repeat']} interleaved passes (raw TCP, raw TLS, then a fit "
                         "of each link and schedule); a fit's sync: the median of its "
                         f"rounds after the first ({e['rounds']} a fit); raw: the median "
                         "of 3 round trips (20 for the empty round's bytes)."]


@table
def stragglers():
    data, src = stored("stragglers")
    rows_ = data["rows"]
    base = rows_[0]["round_s"]
    lines = header("rounds", "median round s", "/ no straggler", "rounds in budget",
                   "test accuracy")
    for r in rows_:
        lines.append(row(r["variant"], f"{r['round_s']:.3f}", f"{r['round_s'] / base:.2f}",
                         r["rounds"], f"{r['accuracy']:.4f}"))
    e = data["extra"]
    return lines, src + [f"K={e['workers']}, tau={e['tau']}, {e['budget']:g} s of training "
                         "a run; one run a variant, one seed."]


@table
def setup():
    data, src = stored("setup")
    lines = header("fresh clone", "scripts/setup.sh cold s", "again s", ".venv MB",
                   "installed package MB", "Caffe cache MB", "Caffe install MB")
    for r in data["rows"]:
        lines.append(row(r["commit"][:12], f"{r['cold_s']:.0f}", f"{r['warm_s']:.0f}",
                         *(f"{r[k] / 1e6:.0f}" for k in ("venv_bytes", "package_bytes",
                                                         "caffe_cache_bytes",
                                                         "caffe_install_bytes"))))
    e, notes = data["extra"], []
    if "wheel" in e:
        w = e["wheel"]
        built = [name for name, key in (("OpenCV", "opencv_cache_reused"),
                                        ("Caffe", "caffe_cache_reused"))
                 if key in w and not w[key]]
        cached = [name for name, key in (("OpenCV", "opencv_cache_reused"),
                                         ("Caffe", "caffe_cache_reused")) if w.get(key)]
        reused = "; ".join(part for part in (
            f"{' and '.join(cached)} builds cached here reused" if cached else "",
            f"{' and '.join(built)} built too" if built else "") if part)
        notes.append(f"Vendored wheel (`bash scripts/build_wheel.sh`, {reused}): "
                     f"{w['seconds']:.0f} s, {w['wheel']} {w['bytes'] / 1e6:.1f} MB.")
    if "image" in e:
        i = e["image"]
        notes.append(f"Image {i['image']}: " + (f"{i['bytes'] / 1e6:.0f} MB." if "bytes" in i
                                                 else f"not measured ({i['error']})."))
    return lines, src + ["Cold: an empty Caffe cache (Debian's source package fetched, Caffe "
                         "built); apt packages already installed and pip's download cache "
                         "as this machine had them. Again: the same clone, the README's "
                         "later runs. " + " ".join(notes)]


def _speedup(base: list, spark: list):
    """The ratio of the sides' median seconds; None where a repeat missed the target."""
    if None in base or None in spark:
        return None
    return median(base) / median(spark)


@table
def sparknet_speedup():
    return _speedup_table("sparknet_speedup")


@table
def sparknet_speedup_bmuf():
    return _speedup_table("sparknet_speedup_bmuf")


@table
def sparknet_speedup_k4():
    return _speedup_table("sparknet_speedup_k4")


def _speedup_table(name: str):
    data, src = stored(name)
    e, rows_ = data["extra"], data["rows"]
    k = e.get("workers", 2)
    lines = header("seed", "one Net: iterations, s median (min-max)",
                   f"SparkNet K={k}: iterations a worker, s median (min-max)",
                   "speedup (median / median)", "images to the target, SparkNet / one Net")
    speedups = []
    for seed in e["seeds"]:
        base = [r for r in rows_ if r["seed"] == seed and r["side"] == "one Net"]
        spark = [r for r in rows_ if r["seed"] == seed and r["side"] == f"SparkNet K={k}"]
        base_s, spark_s = [r["seconds"] for r in base], [r["seconds"] for r in spark]
        speedup = _speedup(base_s, spark_s)
        speedups += [] if speedup is None else [speedup]
        images = (k * spark[0]["iterations"] * e["sparknet_batch"]) / \
            (base[0]["iterations"] * e["batch"])
        lines.append(row(seed, f"{base[0]['iterations']}, " + _seconds(base_s),
                         f"{spark[0]['iterations']}, " + _seconds(spark_s),
                         "target not reached" if speedup is None else f"{speedup:.2f}",
                         f"{images:.2f}"))
    if speedups:
        lines.append(row("all", "", "", f"{median(speedups):.2f} ({min(speedups):.2f}-"
                                        f"{max(speedups):.2f})", ""))
    return lines, src + [f"Target {e['target']:.1%} on all 10,000 test images, tested every "
                         f"{e['test_every']} iterations (tests off the clock); one Net: "
                         f"base_lr {e['base_lr']}, batch {e['batch']}, both cores; SparkNet: "
                         f"local-cluster[{k},1,2048], base_lr {e['sparknet_base_lr']}, batch "
                         f"{e['sparknet_batch']} a worker, tau {e['tau']}, outer {_outer(e['outer'])}, "
                         f"solver history {e['solver_state']}; {e['repeats']} repeats a "
                         "seed, the sides alternating."]


def _seconds(samples: list) -> str:
    if None in samples:
        return "not reached"
    return spread(samples, 1)


def _outer(config: dict) -> str:
    """An outer optimizer's settings as the trainer takes them ('plain' alone)."""
    if config.get("kind") == "plain":
        return "plain"
    return ", ".join(f"{k}={v}" for k, v in config.items() if v is not None)
