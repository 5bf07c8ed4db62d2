"""The examples of training on a SQL query's output and on a graph computation's,
each run as its one command (smaller than by default), on its own local-cluster.
(The stream example runs in tests/test_stream_training.py.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd="/",
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_training_on_a_sql_join_and_filter(tmp_path):
    result = _run("sql_join.py", "--out", str(tmp_path), "--records", "4000", "--noisy", "0.3",
                  "--rounds", "3", "--tau", "30")
    print(result)
    filtered, unfiltered = result["filtered"], result["unfiltered"]
    assert unfiltered["records"] == 4000
    assert 0.6 * 4000 < filtered["records"] < 0.8 * 4000, "the filter kept the wrong rows"
    assert filtered["val_accuracy"] > 0.6 and unfiltered["val_accuracy"] > 0.5


def test_training_on_labels_from_label_propagation(tmp_path):
    result = _run("graph_labels.py", "--out", str(tmp_path), "--images", "2000",
                  "--seeds", "0.03", "--rounds", "3", "--tau", "30")
    print(result)
    assert result["images"] == 2000 and 30 < result["seed_labels"] < 90
    assert result["graph_labelled"] > 1500, "the graph reached few images"
    assert result["graph_label_accuracy"] > 0.5  # far above chance (0.1) from 3% of labels
    assert result["val_accuracy"] > 0.4
