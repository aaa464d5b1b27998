"""The benchmark scripts check their arguments before any run: one-line errors, canonical names."""
from __future__ import annotations

import argparse
import json
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
    assert common.positive_float("1e-3") == 0.001
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
    (common.positive_float, "-0.01", "must be a finite number above 0, got -0.01"),
    (common.positive_float, "nan", "must be a finite number above 0, got nan"),
    (common.positive_float, "0.0l", "expected a number, got '0.0l'"),
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


def test_a_changed_config_makes_a_new_record_and_never_mixes(tmp_path, monkeypatch):
    import runstore

    monkeypatch.setattr(runstore, "git_commit", lambda: "abc1234")
    store = runstore.RunStore(tmp_path / "runs" / "x.jsonl")
    key = {"dataset": "cora", "seed": 0}
    store.add(key, {"beta": 0.001}, {"test_acc": 0.8})
    assert store.get(key, {"beta": 0.0003}) is None  # a changed default: not found, so the run is made again
    store.add(key, {"beta": 0.0003}, {"test_acc": 0.9}, commit="unknown", migrated_from={"file": "old.json"})
    again = runstore.RunStore(store.path)  # read back from the file
    assert again.get(key, {"beta": 0.001})["figures"] == {"test_acc": 0.8}
    record = again.get(key, {"beta": 0.0003})
    assert record["commit"] == "unknown" and record["migrated_from"] == {"file": "old.json"}
    assert {"config_hash", "date", "machine", "versions"} <= set(record)
    lines = runstore.provenance_lines(again)
    assert lines[0].startswith("Generated from `x.jsonl` (2 records)")
    assert lines[1] == "Commits: abc1234, unknown."
    assert lines == runstore.provenance_lines(runstore.RunStore(store.path))  # the same store, the same text


def test_every_stored_record_has_its_provenance():
    import runstore

    stores = sorted(common.RUNS.glob("*.jsonl"))
    assert stores
    for path in stores:
        for line in path.read_text().splitlines():
            record = json.loads(line)
            assert set(runstore.PROVENANCE) | {"key", "config", "config_hash", "figures"} <= set(record), path
            assert record["config_hash"] == runstore.config_hash(record["key"], record["config"]), path


def test_results_hold_only_stores_reports_and_notes():
    kinds = {"runs": {".jsonl"}, "reports": {".md", ".png"}, "notes": {".md", ".png"}}
    for path in common.RESULTS.rglob("*"):
        if path.is_file():
            place = path.relative_to(common.RESULTS).parts[0]
            assert place in kinds and path.suffix in kinds[place], path
            assert "-" not in path.stem or place == "reports" and path.stem.startswith("epoch_cost_"), path


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


def test_dropin_differences_pair_the_seeds_both_have(tmp_path, monkeypatch):
    import dropin
    import runstore

    monkeypatch.setattr(runstore, "git_commit", lambda: "abc1234")
    store = runstore.RunStore(tmp_path / "dropin.jsonl")

    def add(key, acc):
        store.add({"bench": "dropin", "dataset": "cora", **key}, {}, {"test_acc": acc, "ft_trials": [
            {"temperature": 1.0, "test_acc": acc}]})

    for seed, alone in enumerate([0.80, 0.90, 0.70]):  # seed 2's student alone is weak, and has no LTD run
        add({"role": "alone", "model": "graphsage", "seed": seed}, alone)
        add({"role": "teacher", "model": "gcn", "seed": seed}, 0.85)
    for seed, acc in enumerate([0.81, 0.89]):
        add({"role": "student", "teacher": "gcn", "method": "ltd", "seed": seed}, acc)
        add({"role": "student", "teacher": "gcn", "method": "ft", "seed": seed}, acc)
    row = next(line for line in dropin.report(store).splitlines() if line.startswith("| gcn | cora"))
    # means over all seeds would give 0.85 - 0.80 = +5.00; paired over seeds 0 and 1 it is (+1 - 1) / 2 = 0
    assert row.endswith("| +0.00 | +0.00 | +0.00 |"), row
    assert "0.8000 ± 0.1000 (3)" in row  # the alone column still shows every seed it has


def test_dropin_report_names_the_runs_whose_student_did_not_learn(tmp_path, monkeypatch):
    import dropin
    import runstore

    monkeypatch.setattr(runstore, "git_commit", lambda: "abc1234")
    store = runstore.RunStore(tmp_path / "dropin.jsonl")
    key = {"bench": "dropin", "dataset": "amazon-computers", "seed": 3}
    store.add({**key, "role": "teacher", "model": "graphsage"}, {}, {"test_acc": 0.84, "val_acc": 0.91})
    store.add({**key, "role": "student", "teacher": "graphsage", "method": "ltd"}, {},
              {"test_acc": 0.09, "val_acc": 0.20})
    store.add({**key, "role": "student", "teacher": "graphsage", "method": "ft"}, {}, {"test_acc": 0.85, "val_acc": 0.9,
              "ft_trials": [{"temperature": 1.0, "test_acc": 0.3, "val_acc": 0.4}]})
    line = next(x for x in dropin.report(store).splitlines() if x.startswith("Runs whose student did not learn"))
    assert line.endswith(": KD with a graphsage teacher on amazon-computers, seed 3 (validation 0.40 against the "
                         "teacher's 0.91; test 0.3000); LTD with a graphsage teacher on amazon-computers, seed 3 "
                         "(validation 0.20 against the teacher's 0.91; test 0.0900)."), line


def test_dropin_rescue_finds_when_the_student_learned():
    import torch
    from dropin_rescue import history_figures, row_normalised

    history = [{"epoch": e, "val_acc": acc} for e, acc in enumerate([0.1] * 30 + [0.5] * 30)]
    figures = history_figures(history, teacher_val=0.9)
    assert figures == {"first_epoch_above_half_teacher": 30, "val_acc_epoch_5": 0.1, "val_acc_epoch_20": 0.1,
                       "val_acc_epoch_50": 0.5}
    assert history_figures(history[:10], 0.9) == {"first_epoch_above_half_teacher": None, "val_acc_epoch_5": 0.1}
    feat = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    assert torch.equal(row_normalised(feat), torch.tensor([[0.25, 0.75], [0.0, 0.0]]))
