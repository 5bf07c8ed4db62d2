"""BENCHMARKS.md holds no typed figure: every table with a number is rendered by
bench/render.py from stored raw output, and the file matches a fresh render."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import render  # noqa: E402
import results_io  # noqa: E402


def test_every_figure_in_a_table_is_rendered_from_stored_output():
    text = render.DOC.read_text()
    assert render.stray_rows(text) == []
    assert render.BLOCK.findall(text), "no rendered table at all"


def test_the_document_matches_a_fresh_render(capsys):
    assert render.main(["--check"]) == 0, capsys.readouterr().err


def test_every_rendered_table_names_its_raw_output():
    for _, name, _, _ in render.BLOCK.findall(render.DOC.read_text()):
        block = render.render_block(name)
        assert "Raw: `" in block, name


def test_a_typed_row_outside_the_markers_fails(tmp_path):
    doc = tmp_path / "B.md"
    doc.write_text("# x\n\n| what | ms |\n|---|---:|\n| copy | 18.6 |\n")
    assert render.main(["--check", "--doc", str(doc)]) == 1
    doc.write_text("# x\n\n| what | result |\n|---|---|\n| feed | bit-exact |\n")
    assert render.main(["--check", "--doc", str(doc)]) == 0  # no figure, nothing to source


def test_an_edited_figure_inside_the_markers_fails(tmp_path):
    fresh = render.render_text("<!-- table: gpu_checks -->\n<!-- /table -->\n")
    doc = tmp_path / "B.md"
    doc.write_text(fresh)
    assert render.main(["--check", "--doc", str(doc)]) == 0
    doc.write_text(fresh.replace("88.13%", "91.00%"))
    assert render.main(["--check", "--doc", str(doc)]) == 1
    assert render.main(["--doc", str(doc)]) == 0 and doc.read_text() == fresh


def test_a_table_without_stored_source_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path / "empty"))
    with pytest.raises(LookupError):
        render.render_text("<!-- table: weights_copy -->\n<!-- /table -->\n")
    doc = tmp_path / "B.md"
    doc.write_text("<!-- table: no_such_table -->\n<!-- /table -->\n")
    assert render.main(["--check", "--doc", str(doc)]) == 2
    doc.write_text("<!-- table: gpu_checks -->\nno end marker\n")
    assert render.main(["--check", "--doc", str(doc)]) == 2


def test_a_stored_record_renders_with_its_spread(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("BENCH_MACHINE", "box")
    results_io.record("exchange_connect", "python bench/bench_exchange_connect.py",
                      repeats={"tls=False": [0.001, 0.0011, 0.0009],
                               "TLS 1.3 (default)": [0.002, 0.002, 0.003]})
    block = render.render_block("exchange_connect")
    assert "| tls=False | 1.00 (0.90-1.10) | 1.00 |" in block
    assert "| TLS 1.3 (default) | 2.00 (2.00-3.00) drift | 2.00 |" in block
    assert "-box/exchange_connect.json" in block


def test_check_reports_a_missing_record_instead_of_crashing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path / "empty"))
    doc = tmp_path / "B.md"
    doc.write_text("<!-- table: weights_copy -->\n<!-- /table -->\n")
    assert render.main(["--check", "--doc", str(doc)]) == 2
    assert "no stored result weights_copy.json" in capsys.readouterr().err
