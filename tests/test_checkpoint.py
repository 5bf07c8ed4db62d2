"""Checkpoint folders under faults: a save that fails, foreign files, forged manifests."""
import json

import pytest

from pysparknet import Net
from pysparknet.spark import checkpoint
from pysparknet.spark.checkpoint import CheckpointError

from conftest import TINY_NET, TINY_SOLVER


@pytest.fixture
def net(tiny_data):
    net = Net(TINY_NET, TINY_SOLVER, seed=1)
    net.set_training_data(tiny_data)
    yield net
    net.close()


def test_a_failed_first_save_leaves_no_orphan_and_resumes_fresh(tmp_path, net):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    # Renaming the finished solverstate into place fails: its name is a folder.
    (ckpt / "round_000001.solverstate").mkdir()
    with pytest.raises(OSError):
        checkpoint.save(ckpt, net, 1, [], {"tau": 1, "num_workers": 1})
    assert not (ckpt / "round_000001.caffemodel").exists()  # no orphan
    assert not [p for p in ckpt.iterdir() if p.name.startswith(".")]  # no temporaries
    assert checkpoint.load(ckpt, net) is None  # what is left: nothing to resume


def test_a_save_replaces_only_the_files_of_the_previous_checkpoint(tmp_path, net):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    foreign = [ckpt / "round_notes.txt", ckpt / "round_000099.caffemodel.bak"]
    for path in foreign:
        path.write_text("the user's")
    checkpoint.save(ckpt, net, 1, [], {"tau": 1, "num_workers": 1})
    net.train(2)
    checkpoint.save(ckpt, net, 2, [{"round": 2}], {"tau": 1, "num_workers": 1})
    names = sorted(p.name for p in ckpt.iterdir())
    assert names == sorted(["checkpoint.json", "round_000002.caffemodel",
                            "round_000002.solverstate", "round_notes.txt",
                            "round_000099.caffemodel.bak"])
    assert checkpoint.load(ckpt, net).round == 2


@pytest.mark.parametrize("model", ["../outside.caffemodel", "/etc/passwd", 7, None])
def test_a_manifest_naming_files_outside_the_folder_is_refused(tmp_path, net, model):
    ckpt = tmp_path / "ckpt"
    checkpoint.save(ckpt, net, 1, [], {"tau": 1, "num_workers": 1})
    manifest = json.loads((ckpt / "checkpoint.json").read_text())
    manifest["model"] = model
    (ckpt / "checkpoint.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="not a round file of this folder"):
        checkpoint.load(ckpt, net)


def test_a_folder_of_other_things_is_not_taken_for_a_fresh_one(tmp_path, net):
    (tmp_path / "results.csv").write_text("1,2")
    with pytest.raises(CheckpointError, match="not a pysparknet checkpoint"):
        checkpoint.load(tmp_path, net)


def test_an_unwritable_folder_is_reported_before_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="cannot write checkpoints"):
        checkpoint.check_writable(tmp_path / "file" / "ckpt")
