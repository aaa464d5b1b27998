"""benchmarks/plots.py: the pictures are drawn from the cached runs and the epoch_cost tables."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the plots need matplotlib (the package's [report] or [test] extra)")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import plots  # noqa: E402  (benchmarks/plots.py)

COST_TABLE = """# Seconds per epoch on cora

| model | KD | FT | LTD | LTD-S | LTD / KD | LTD / LTD-S |
| --- | --- | --- | --- | --- | --- | --- |
| gcn | 0.1 | 0.2 | 0.5 | 0.25 | 5.00 | 2.00 |
| gat | 1.5 | 1.25 | 3 | 2 | 2.00 | 1.50 |

A note under the table.
"""


def fake_runs():
    runs = {"cora/gcn/teacher": 0.8, "cora/gat/teacher": 0.7}
    for seed, (kd, ft, ltd) in enumerate([(0.80, 0.81, 0.84), (0.82, 0.83, 0.86)]):
        runs.update({f"cora/gcn/kd/{seed}": {"test_acc": kd}, f"cora/gcn/ft/{seed}": {"test_acc": ft},
                     f"cora/gcn/ltd/{seed}": {"test_acc": ltd}})
    runs["cora/gat/kd/0"] = {"test_acc": 0.7}  # a cell without FT and LTD runs is left out
    return runs


def test_cost_table_is_read_by_its_header():
    assert plots.parse_cost_table(COST_TABLE) == {
        "gcn": {"kd": 0.1, "ft": 0.2, "ltd": 0.5, "ltd-s": 0.25},
        "gat": {"kd": 1.5, "ft": 1.25, "ltd": 3.0, "ltd-s": 2.0}}
    with pytest.raises(ValueError, match="no '| model | ...' table"):
        plots.parse_cost_table("# nothing here\n")


def test_cells_average_the_chosen_seeds_only():
    stats = plots.cell_stats(fake_runs(), ["0", "1"])
    assert list(stats) == ["cora"] and list(stats["cora"]) == ["gcn"]
    cell = stats["cora"]["gcn"]
    assert cell["teacher"] == 0.8 and cell["ltd"][0] == pytest.approx(0.85) and cell["ltd"][2] == 2
    assert plots.cell_stats(fake_runs(), ["1"])["cora"]["gcn"]["kd"] == (0.82, 0.0, 1)


def test_main_writes_both_pictures(tmp_path, capsys):
    (tmp_path / "reproduction_runs").mkdir()
    (tmp_path / "reproduction_runs" / "cora.json").write_text(json.dumps(fake_runs()))
    (tmp_path / "epoch_cost_cora.md").write_text(COST_TABLE)
    written = plots.main(["--seeds", "0,1", "--results", str(tmp_path), "--out", str(tmp_path / "out")])
    assert sorted(p.name for p in written) == ["epoch_cost_cora.png", "reproduction_accuracy.png"]
    for path in written:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert capsys.readouterr().out.split() == [str(p) for p in written]
