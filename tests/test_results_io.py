"""bench/results_io.py: raw records on disk, interleaved repeats, median/min/max and drift."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import results_io  # noqa: E402


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("BENCH_MACHINE", "testbox")
    return tmp_path


def test_record_writes_every_repeat_and_the_context(results_dir):
    path = results_io.record("demo", "python bench/demo.py --x 1", rows=[{"a": 1}],
                             extra={"floats": 7}, repeats={"base": [1.0, 2.0, 3.0]})
    assert path.parent.parent == results_dir
    assert path.parent.name.endswith("-testbox") and path.parent.name[:4].isdigit()
    data = json.loads(path.read_text())
    assert data["command"] == "python bench/demo.py --x 1"
    assert data["repeats"] == {"base": [1.0, 2.0, 3.0]}
    assert data["rows"] == [{"a": 1}] and data["extra"] == {"floats": 7}
    assert data["machine"] == "testbox" and len(data["load_before"]) == 3
    assert data["versions"]["python"].count(".") == 2 and "numpy" in data["versions"]
    assert len(data["commit"].split("-")[0]) == 40


def test_record_defaults_the_command_and_takes_numpy_values(results_dir):
    np = pytest.importorskip("numpy")
    path = results_io.record("np", repeats={"a": np.array([1.5, 2.5])},
                             extra={"n": np.int64(3)})
    data = json.loads(path.read_text())
    assert data["command"].startswith("python ")
    assert data["repeats"]["a"] == [1.5, 2.5] and data["extra"]["n"] == 3


def test_latest_picks_the_newest_folder(results_dir):
    for folder in ("2026-01-02-m", "2026-03-01-m", "2026-02-01-m"):
        (results_dir / folder).mkdir()
        (results_dir / folder / "x.json").write_text("{}")
    assert results_io.latest("x").parent.name == "2026-03-01-m"
    assert results_io.latest("missing") is None


def test_interleave_alternates_and_counts():
    order = []
    samples = results_io.interleave({"a": lambda: order.append("a") or 1,
                                     "b": lambda: order.append("b") or 2}, 3)
    assert order == ["a", "b"] * 3
    assert samples == {"a": [1.0] * 3, "b": [2.0] * 3}


def test_interleave_refuses_fewer_than_three_repeats():
    with pytest.raises(ValueError):
        results_io.interleave({"a": lambda: 1}, 2)
    with pytest.raises(ValueError):
        results_io.interleave({}, 3)


def test_timed_returns_seconds():
    assert results_io.timed(lambda: None)() >= 0.0


def test_summarize_and_the_drift_flag():
    s = results_io.summarize([10.0, 11.0, 9.0, 10.5])
    assert (s["median"], s["min"], s["max"], s["n"]) == (10.25, 9.0, 11.0, 4)
    assert s["drift"] is False
    assert results_io.summarize([10.0, 10.0, 12.0])["drift"] is True  # 20% off its median
    assert results_io.summarize([10.0, 10.0, 11.4])["drift"] is False  # 14%
    with pytest.raises(ValueError):
        results_io.summarize([])


def test_latest_orders_a_day_by_the_time_written_not_the_mtime(results_dir):
    for folder, stamp in (("2026-03-01-b", "2026-03-01T10:00:00+00:00"),
                          ("2026-03-01-a", "2026-03-01T12:00:00+00:00")):
        (results_dir / folder).mkdir()
        (results_dir / folder / "x.json").write_text(json.dumps({"time_utc": stamp}))
    assert results_io.latest("x").parent.name == "2026-03-01-a"
