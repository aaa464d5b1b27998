"""Every report under benchmarks/results/reports/ is generated from the run stores: regenerating changes nothing."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402  (benchmarks/common.py)
import regenerate  # noqa: E402


def test_regenerating_the_reports_changes_nothing(tmp_path):
    written = regenerate.reports(tmp_path)
    assert written
    committed = {p.name for p in common.REPORTS.glob("*.md")}
    assert {p.name for p in written} == committed  # no report without a store, no store without its report
    for path in written:
        assert path.read_text() == (common.REPORTS / path.name).read_text(), path.name


def test_every_store_has_a_report_and_no_note_is_generated():
    import importlib

    covered = {importlib.import_module(name).STORE.name for name in regenerate.SCRIPTS}
    assert covered == {p.name for p in common.RUNS.glob("*.jsonl")}  # no store left without its report
    for note in common.NOTES.glob("*.md"):  # a note is hand-written: no report's provenance lines in it
        assert "by `python benchmarks/regenerate.py`" not in note.read_text(), note.name


def test_redrawing_the_pictures_changes_nothing(tmp_path):
    pytest.importorskip("matplotlib", reason="the pictures need matplotlib (the [report] or [test] extra)")
    import plots

    written = plots.main(["--out", str(tmp_path)])
    assert {p.name for p in written} == {p.name for p in common.REPORTS.glob("*.png")}
    for path in written:
        assert path.read_bytes() == (common.REPORTS / path.name).read_bytes(), path.name


def test_a_report_follows_its_store(tmp_path):
    """Not a copy of the committed text: a record added to a store changes its report."""
    import json

    import ltd_s_speed

    lines = ltd_s_speed.STORE.read_text().splitlines()
    record = json.loads(lines[0])
    record["figures"]["test_acc"] += 0.5
    record["config"]["note"] = "changed"
    (tmp_path / ltd_s_speed.STORE.name).write_text("\n".join(lines + [json.dumps(record)]) + "\n")
    written = regenerate.reports(tmp_path / "out", runs=tmp_path)
    assert [p.name for p in written] == [ltd_s_speed.REPORT.name]
    assert written[0].read_text() != ltd_s_speed.REPORT.read_text()
