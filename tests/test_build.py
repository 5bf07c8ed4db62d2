"""The Caffe build: cached, its tools shipped and reported, the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pysparknet
from pysparknet import build_info, caffe_tool, caffe_tools

REPO = Path(__file__).resolve().parents[1]


def test_tools_from_the_same_build_are_reported_and_run():
    tools = caffe_tools()
    for name in ("caffe", "convert_imageset", "compute_image_mean", "convert_mnist_data"):
        assert os.access(tools[name], os.X_OK)
    # The tools load the libcaffe shipped beside the shim, not some other Caffe.
    ldd = subprocess.run(["ldd", str(caffe_tool("caffe"))], capture_output=True, text=True).stdout
    libcaffe = [l for l in ldd.splitlines() if "libcaffe.so" in l][0].split("=> ")[1].split()[0]
    assert Path(libcaffe).resolve() == \
        (Path(pysparknet.__file__).parent / "_caffe" / "lib" / "libcaffe.so.1.0.0").resolve()
    info = build_info()
    assert info["cuda"] is False and "-DCPU_ONLY=ON" in info["options"]
    assert "-DUSE_OPENCV=ON" in info["options"] and "-DUSE_LMDB=ON" in info["options"]
    version = subprocess.run([str(tools["caffe"]), "--version"], capture_output=True, text=True)
    assert "1.0.0" in version.stdout + version.stderr


def test_sparknet_info_cli():
    out = subprocess.run([sys.executable, "-m", "pysparknet.cli", "info", "--json"],
                         capture_output=True, text=True, check=True, cwd="/").stdout
    info = json.loads(out)
    assert set(info["tools"]) >= {"caffe", "convert_imageset", "compute_image_mean",
                                  "convert_mnist_data"}
    help_text = subprocess.run([sys.executable, "-m", "pysparknet.cli", "demo", "--help"],
                               capture_output=True, text=True, check=True, cwd="/").stdout
    assert "--iterations" in help_text


def test_second_build_reuses_the_cache():
    """build_caffe.py with the same sources and options finds the finished build."""
    proc = subprocess.run([sys.executable, str(REPO / "native/caffe/build_caffe.py")],
                          capture_output=True, text=True, check=True)
    assert "reusing cached Caffe build" in proc.stderr
    prefix = Path(proc.stdout.strip())
    assert json.loads((prefix.parent / "BUILD.json").read_text())["key"] == build_info()["key"]


def test_demo_trains_and_reports_accuracy(tmp_path):
    metrics = tmp_path / "runs" / "metrics.jsonl"  # a folder that does not exist yet
    proc = subprocess.run([sys.executable, "-m", "pysparknet.cli", "demo", "--iterations", "60",
                           "--test-every", "30", "--quiet", "--metrics", str(metrics)],
                          capture_output=True, text=True, check=True, cwd="/")
    assert "test accuracy" in proc.stdout
    records = [json.loads(l) for l in metrics.read_text().splitlines()]
    assert [r["iteration"] for r in records] == [30, 60]
    assert all(0 < r["test_accuracy"] <= 1 and r["images_per_s"] > 0 for r in records)


def test_sparknet_plot_writes_a_png(tmp_path):
    metrics = tmp_path / "m.jsonl"
    metrics.write_text("\n".join(json.dumps({"round": r, "iterations": 50 * r,
                                             "elapsed_s": 1.5 * r, "val_accuracy": 0.5 + r / 20})
                                 for r in range(1, 5)) + "\n")
    subprocess.run([sys.executable, "-m", "pysparknet.cli", "plot", str(metrics), "-o",
                    str(tmp_path / "plots" / "a.png")], check=True, capture_output=True, cwd="/")
    assert (tmp_path / "plots" / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"round": 1}) + "\n")
    proc = subprocess.run([sys.executable, "-m", "pysparknet.cli", "plot", str(empty)],
                          capture_output=True, text=True, cwd=str(tmp_path))
    assert proc.returncode != 0 and "no rounds with val_accuracy" in proc.stderr


def test_runs_appended_to_one_metrics_file_plot_as_labelled_curves(tmp_path):
    from pysparknet.cli import metrics_figure

    metrics = tmp_path / "m.jsonl"
    metrics.write_text("".join(
        json.dumps({"run": run, "round": r, "iterations": 50 * r, "elapsed_s": 1.5 * r,
                    "val_accuracy": 0.5 + r / 20}) + "\n"
        for run in ("aaaa", "bbbb") for r in range(1, 4)))
    by_time, by_iter = metrics_figure(metrics).axes
    assert [line.get_label() for line in by_time.get_lines()] == ["run aaaa", "run bbbb"]
    assert [len(line.get_xdata()) for line in by_iter.get_lines()] == [3, 3]
