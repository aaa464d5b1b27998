"""The benchmark scripts check their arguments before any run: one-line errors, canonical names."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402  (benchmarks/common.py)


def test_names_are_made_canonical():
    assert common.dataset_list("Cora, amazon_electronics_photo") == "cora,amazon-photo"
    assert common.model_list("GCN,sage") == "gcn,graphsage"
    assert common.cell_list("citeseer:GAT,amazon_electronics_computers:sgc") == "citeseer:gat,amazon-computers:sgc"
    assert common.seed_list("0, 3,4294967295") == "0,3,4294967295"
    assert common.at_least(22)("22") == 22
    assert common.choice_list(["kd", "ft"])("ft,kd") == "ft,kd"


@pytest.mark.parametrize("parse, text, message", [
    (common.dataset_list, "coraX", "no paper teacher logits for dataset 'coraX'"),
    (common.dataset_list, "pubmed", "no paper teacher logits for dataset 'pubmed'"),  # a dataset, but no logits
    (common.dataset_list, ",", "give at least one dataset"),
    (common.dataset_name, "cora,citeseer", "give one dataset"),
    (common.model_list, "gcnii", "no paper teacher logits for model 'gcnii'"),
    (common.seed_list, "-1", "seeds must lie in [0, 4294967295], got -1"),
    (common.seed_list, "a", "seeds must be comma-separated integers"),
    (common.cell_list, "cora", "cells are dataset:model pairs"),
    (common.cell_list, "cora:foo", "no paper teacher logits for model 'foo'"),
    (common.at_least(22), "21", "must be at least 22, got 21"),
    (common.at_least(1), "x", "expected an integer"),
    (common.choice_list(["kd", "ft"]), "kd,foo", "unknown name 'foo'; choose from: kd, ft"),
])
def test_bad_values_name_the_problem(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(text)


def test_a_bad_flag_ends_the_script_with_one_line_and_exit_code_2():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "reproduce.py", "--datasets", "cora", "--seeds", "0,-2"],
                         cwd=ROOT / "benchmarks", env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].endswith("seeds must lie in [0, 4294967295], got -2")


def test_git_commit_outside_a_checkout_is_unknown(monkeypatch, tmp_path):
    monkeypatch.setattr(common, "ROOT", tmp_path)
    assert common.git_commit() == "unknown"


def test_table_only_keeps_the_header_of_the_runs(tmp_path, monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setattr(common, "git_commit", lambda: "now")
    monkeypatch.setattr(common, "machine", lambda: "this machine")
    report = tmp_path / "r.md"
    report.write_text("# t\n\nCommand: `python benchmarks/x.py --seeds 0` (commit then).\nMachine: that machine.\n")
    run, table_only = SimpleNamespace(table_only=False), SimpleNamespace(table_only=True)
    fresh = ["Command: `python benchmarks/x.py --seeds 0` (commit now).", "Machine: this machine."]
    assert common.header_lines(report, run, "python benchmarks/x.py --seeds 0") == fresh
    # the table is rebuilt from the runs of that command: their commit and machine stay
    assert common.header_lines(report, table_only, "python benchmarks/x.py --seeds 0") == \
        ["Command: `python benchmarks/x.py --seeds 0` (commit then).", "Machine: that machine."]
    # another command's table is new
    assert common.header_lines(report, table_only, "python benchmarks/x.py --seeds 1")[0].endswith("(commit now).")
    # a report assembled from many runs keeps its hand-kept list of commands, run or --table-only
    report.write_text("Commands: many (hand-kept).\nMachine: that machine.\n")
    for args in (run, table_only):
        assert common.header_lines(report, args, "python benchmarks/x.py --seeds 1") == \
            ["Commands: many (hand-kept).", "Machine: that machine."]


def test_pyg_comparison_takes_every_registered_model():
    assert common.any_model_list("gcnii,SAGE") == "gcnii,graphsage"
    with pytest.raises(argparse.ArgumentTypeError, match="unknown or graph-free model 'mlp'"):
        common.any_model_list("mlp")  # no PyG twin
    with pytest.raises(argparse.ArgumentTypeError, match="unknown or graph-free model 'resnet'"):
        common.any_model_list("resnet")


def test_glnn_share_outside_0_1_exits_2():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "glnn.py", "--share", "1.5"], cwd=ROOT / "benchmarks", env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "the inductive share must lie in (0, 1), got 1.5" in out.stderr.strip().splitlines()[-1]


def test_glnn_table_takes_kd_from_ft_grid_and_gaps_on_shared_seeds(tmp_path, monkeypatch):
    import runstore
    from glnn_report import accuracy_table

    monkeypatch.setattr(runstore, "git_commit", lambda: "abc")
    store = runstore.RunStore(tmp_path / "runs.jsonl")
    base = {"bench": "glnn", "setting": "transductive", "dataset": "cora"}
    store.add({**base, "role": "teacher", "teacher": "gcn", "seed": None}, {}, {"test_acc": 0.80})
    for seed, (kd, ft, ltd) in enumerate([(0.70, 0.75, 0.77), (0.72, 0.73, 0.74)]):
        trials = [{"temperature": 1.0, "test_acc": kd}, {"temperature": 2.0, "test_acc": ft}]
        store.add({**base, "role": "student", "teacher": "gcn", "method": "ft", "seed": seed}, {},
                  {"test_acc": ft, "ft_trials": trials})
        store.add({**base, "role": "student", "teacher": "gcn", "method": "ltd", "seed": seed}, {}, {"test_acc": ltd})
    store.add({**base, "role": "student", "teacher": "gcn", "method": "ft", "seed": 2}, {},  # no LTD run: not in the gap
              {"test_acc": 0.10, "ft_trials": [{"temperature": 1.0, "test_acc": 0.10}]})
    lines, gaps = accuracy_table(store, "transductive")
    row = next(line for line in lines if line.startswith("| cora | gcn |"))
    assert "| 50.67 ± 35.23 (3) |" in row  # KD is FT's run at T = 1, of all three seeds
    assert gaps == [pytest.approx(100 * ((0.77 + 0.74) / 2 - (0.75 + 0.73) / 2))]
    assert row.endswith("| +1.50 | 0,1,2 |")
