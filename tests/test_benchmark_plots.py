"""benchmarks/plots.py: the pictures are drawn from the run stores of reproduce.py and epoch_cost.py."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the plots need matplotlib (the package's [report] or [test] extra)")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import plots  # noqa: E402  (benchmarks/plots.py)

def fake_runs():
    runs = {"cora/gcn/teacher": 0.8, "cora/gat/teacher": 0.7}
    for seed, (kd, ft, ltd) in enumerate([(0.80, 0.81, 0.84), (0.82, 0.83, 0.86)]):
        runs.update({f"cora/gcn/kd/{seed}": {"test_acc": kd}, f"cora/gcn/ft/{seed}": {"test_acc": ft},
                     f"cora/gcn/ltd/{seed}": {"test_acc": ltd}})
    runs["cora/gat/kd/0"] = {"test_acc": 0.7}  # a cell without FT and LTD runs is left out
    return runs


def test_cells_average_the_chosen_seeds_only():
    stats = plots.cell_stats(fake_runs(), [0, 1])
    assert list(stats) == ["cora"] and list(stats["cora"]) == ["gcn"]
    cell = stats["cora"]["gcn"]
    assert cell["teacher"] == 0.8 and cell["ltd"][0] == pytest.approx(0.85) and cell["ltd"][2] == 2
    assert plots.cell_stats(fake_runs(), [1])["cora"]["gcn"]["kd"] == (0.82, 0.0, 1)


def test_main_writes_both_pictures(tmp_path, capsys):
    from dgl_ltd.settings import tuned_settings
    from runstore import RunStore

    runs = RunStore(tmp_path / "reproduction.jsonl")
    for key, figures in fake_runs().items():
        dataset, model, method, *seed = key.split("/")
        if method == "teacher":
            runs.add({"dataset": dataset, "model": model, "role": "teacher"}, {}, {"test_acc": figures})
        else:
            runs.add({"dataset": dataset, "model": model, "method": method, "seed": int(seed[0])},
                     tuned_settings(model, dataset, method), figures)
    runs.add({"dataset": "cora", "model": "gcn", "method": "ltd", "seed": 0}, {"beta": 9.0}, {"test_acc": 0.0})
    costs = RunStore(tmp_path / "epoch_cost.jsonl")
    for model, seconds in (("gcn", (0.1, 0.2, 0.5, 0.25)), ("gat", (1.5, 1.25, 3.0, 2.0))):
        costs.add({"dataset": "cora", "model": model}, {}, {"median_seconds_per_epoch": dict(
            zip(("kd", "ft", "ltd", "ltd-s"), seconds))})
    assert plots.load_runs(runs)["cora/gcn/ltd/0"]["test_acc"] == 0.84  # runs of other settings are left out
    written = plots.main(["--seeds", "0,1", "--runs", str(tmp_path), "--out", str(tmp_path / "out")])
    assert sorted(p.name for p in written) == ["epoch_cost_cora.png", "reproduction_accuracy.png"]
    for path in written:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert capsys.readouterr().out.split() == [str(p) for p in written]
