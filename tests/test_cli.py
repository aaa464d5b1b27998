import argparse
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("dgl")

import dgl_ltd
from dgl_ltd.cli import build_parser, main
from dgl_ltd.distill import DistillConfig


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def test_eval_logits_reproduces_paper_teacher(capsys, data_dir):
    code, out, _ = run_cli(capsys, "eval-logits", "--dataset", "cora", "--protocol", "ltd", "--logits",
                           str(data_dir / "ltd_teacher_logits" / "cora" / "GCN.txt"), "--data-dir", str(data_dir), "--json")
    assert code == 0
    assert last_json(out)["test_acc"] == 0.8534


def test_teacher_json_with_seeds(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "teacher", "--model", "sgc", "--seeds", "0,1", "--max-epochs", "30",
                           "--json", "--quiet", "--out", str(tmp_path), "--device", "cpu")
    assert code == 0
    res = last_json(out)
    assert len(res["per_seed"]) == 2 and res["test_acc"] > 0.6 and "test_acc_std" in res and res["device"] == "cpu"
    logits = np.loadtxt(tmp_path / "sgc_seed1.txt")
    assert logits.shape == (2485, 7) and (tmp_path / "sgc_seed0.pt").is_file()


def test_teacher_graphsage_has_the_papers_three_layers(capsys, tmp_path):
    import torch

    code, out, _ = run_cli(capsys, "teacher", "--model", "graphsage", "--max-epochs", "2", "--json", "--quiet",
                           "--out", str(tmp_path))
    assert code == 0 and 0 <= last_json(out)["test_acc"] <= 1
    state = torch.load(tmp_path / "graphsage_seed0.pt")
    assert {k.split(".")[1] for k in state if k.startswith("layers.")} == {"0", "1", "2"}


def test_distill_json(capsys, tmp_path):
    temps = tmp_path / "tau.txt"
    code, out, _ = run_cli(capsys, "distill", "--method", "ltd", "--teacher-model", "sgc", "--model", "sgc",
                           "--max-epochs", "25", "--warmup", "5", "--json", "--quiet", "--save-temperatures", str(temps))
    assert code == 0
    res = last_json(out)
    assert res["method"] == "ltd" and 0 < res["test_acc"] <= 1 and res["seconds_per_epoch"] > 0
    assert np.loadtxt(temps).shape == (2485,)


def test_distill_trains_its_teacher_with_teacher_limits(capsys):
    # --max-epochs/--patience of `distill` bound the student; the teacher it trains first keeps the teacher
    # defaults, so its accuracy is that of `dgl-ltd teacher` with seed 0
    code, out, _ = run_cli(capsys, "teacher", "--model", "sgc", "--json", "--quiet")
    assert code == 0
    teacher_acc = last_json(out)["test_acc"]
    code, out, _ = run_cli(capsys, "distill", "--method", "kd", "--teacher-model", "sgc", "--model", "sgc",
                           "--max-epochs", "2", "--patience", "1", "--json", "--quiet")
    assert code == 0 and last_json(out)["teacher_test_acc"] == teacher_acc


def test_a_student_that_did_not_learn_gets_one_warning_line(capsys):
    # a rate so small that the student stays at its random start
    code, out, err = run_cli(capsys, "distill", "--method", "kd", "--teacher-model", "sgc", "--model", "sgc",
                             "--alpha", "1e-9", "--max-epochs", "2", "--json", "--quiet")
    assert code == 0 and last_json(out)["method"] == "kd"
    lines = [x for x in err.splitlines() if "did not learn" in x]
    assert len(lines) == 1 and lines[0].startswith("dgl-ltd: warning: the student's best validation accuracy")
    assert "--alpha" in lines[0] and "--patience" in lines[0]


def test_distill_calibrate_on_val_holdout_and_meta_on(capsys):
    argv = ["distill", "--method", "ltd-s", "--teacher-model", "sgc", "--model", "sgc", "--max-epochs", "12",
            "--warmup", "2", "--json", "--quiet"]
    code, out, _ = run_cli(capsys, *argv, "--calibrate-on", "val", "--kd-holdout", "--meta-on", "val")
    assert code == 0 and last_json(out)["meta_on"] == "val" and last_json(out)["kd_holdout"] is True
    on_val = last_json(out)["start_temperature"]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and last_json(out)["meta_on"] == "temp" and last_json(out)["kd_holdout"] is False
    # the teacher trained on V_L^E and is over-confident there, so its temperature fitted there is lower
    assert 0 < last_json(out)["start_temperature"] < on_val


def test_distill_paper_settings_random_start(capsys):
    # the paper's cell: SGD on summed losses and a randomly initialised temperature network
    code, out, _ = run_cli(capsys, "distill", "--method", "ltd", "--teacher-model", "sgc", "--model", "sgc",
                           "--settings", "paper", "--max-epochs", "6", "--warmup", "2", "--json", "--quiet")
    assert code == 0
    res = last_json(out)
    assert res["start_temperature"] is None and 0 < res["test_acc"] <= 1
    # the paper's student protocol of the cell (hparams.csv: SGC on cora, alpha 7.14e-4, lambda 1)
    assert (res["optimizer"], res["reduction"], res["alpha"], res["lam"]) == ("sgd", "sum", 7.14e-4, 1.0)


@pytest.mark.parametrize("argv,needle", [
    (["eval-logits", "--dataset", "nope", "--logits", "x.txt"], "unknown dataset 'nope'"),
    (["teacher", "--model", "mlp3"], "unknown model 'mlp3'"),
    (["teacher", "--data-dir", "/definitely/not/here"], "does not exist"),
    (["teacher", "--model", "sgc", "--max-epochs", "0", "--quiet"], "max_epochs must be >= 1, got 0"),
    (["teacher", "--model", "sgc", "--patience", "0", "--quiet"], "patience must be >= 1, got 0"),
    (["distill", "--dataset", "citeseer"], "needs a data folder"),
    (["distill", "--lam", "nan", "--quiet"], "lam must be a finite number, got nan"),
    (["distill", "--alpha", "inf", "--quiet"], "alpha must be a finite number, got inf"),
    (["distill", "--method", "ft", "--temperature", "nan", "--quiet"], "temperature must be a finite number"),
    (["distill", "--method", "kd", "--alpha", "-1", "--teacher-model", "sgc", "--quiet"], "alpha must be > 0"),
    (["distill", "--method", "kd", "--settings", "paper", "--model", "gcnii"], "use this package's settings"),
    (["distill", "--method", "kd", "--model", "sgc", "--alpha", "1e20", "--reduction", "sum", "--optimizer", "sgd",
      "--max-epochs", "5", "--quiet"], "learning rate alpha=1e+20 (--alpha)"),
    (["distill", "--save-temperatures", "/definitely/not/here/t.txt", "--quiet"], "does not exist; create it first"),
    (["teacher", "--model", "sgc", "--lr", "-1", "--quiet"], "learning rate must be a finite number > 0, got -1.0"),
    (["teacher", "--model", "sgc", "--lr", "nan", "--quiet"], "learning rate must be a finite number > 0"),
    (["teacher", "--model", "sgc", "--weight-decay", "-1", "--quiet"], "weight_decay must be a finite number >= 0"),
    (["distill", "--method", "kd", "--kd-holdout", "--teacher-model", "sgc", "--model", "sgc", "--quiet"],
     "--kd-holdout does not apply to --method kd (only to ltd, ltd-s)"),
    # flags the chosen method would ignore are errors, not silent no-ops
    (["distill", "--method", "kd", "--beta", "5"], "--beta does not apply to --method kd"),
    (["distill", "--method", "ft", "--meta-on", "val"], "--meta-on does not apply to --method ft"),
    (["distill", "--method", "ltd", "--temperature", "3"], "--temperature does not apply to --method ltd (only to ft)"),
    (["distill", "--method", "ltd", "--meta-every", "2"], "--meta-every does not apply to --method ltd"),
    (["distill", "--calibrate-on", "val", "--init-tau", "0.5"], "drop one of them"),
    (["distill", "--settings", "paper", "--calibrate-on", "val"], "--calibrate-on does not apply to --settings paper"),
    (["distill", "--split-seed", "7"], "--split-seed applies only to --protocol random"),
    (["teacher", "--split-seed", "7"], "--split-seed applies only to --protocol random"),
    (["distill", "--save-temperatures", ".", "--quiet"], "is a folder; give a file name in it"),
    (["distill", "--save-temperatures", "not_yet_a_folder/", "--quiet"], "is a folder; give a file name in it"),
    (["distill", "--save-temperatures", "/proc/x", "--quiet"], "cannot write in folder '/proc'"),
    (["teacher", "--out", "/proc/x", "--quiet"], "cannot write in folder '/proc'"),
    (["distill", "--method", "ft", "--temperature", "-2", "--teacher-model", "sgc", "--model", "sgc",
      "--max-epochs", "1", "--quiet"], "temperature must be > 0"),
    (["distill", "--method", "ft", "--temperature", "0"], "temperature must be a finite number other than 0"),
    (["eval-logits", "--logits", "x.txt", "--quiet"], "unrecognized arguments: --quiet"),
    (["teacher", "--split", "public", "--dataset", "amazon-photo"], "draw a split with --protocol random"),
    (["teacher", "--split", "public", "--protocol", "random"], "drop one of them"),
])
def test_bad_input_exits_2_with_one_line(capsys, monkeypatch, argv, needle):
    monkeypatch.delenv("DGL_LTD_DATA", raising=False)  # "needs a data folder" must not find one through it
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_start_temperature_fails_before_the_teacher_trains(capsys, monkeypatch):
    # the range check used to wait for the temperature network, after a teacher had trained
    import dgl_ltd.cli as cli

    def no_teacher(*args, **kwargs):
        raise AssertionError("a teacher was trained before the settings were checked")

    monkeypatch.setattr(cli, "_teachers", no_teacher)
    code, _, err = run_cli(capsys, "distill", "--init-tau", "5", "--k", "1", "--teacher-model", "sgc", "--quiet")
    assert code == 2 and "init_tau must lie in (-0.2k, 0.8k) = (-0.2, 0.8), got 5.0" in err


def test_logits_shape_and_nan_errors(capsys, tmp_path):
    wrong = tmp_path / "wrong.txt"
    np.savetxt(wrong, np.zeros((10, 7)))
    code, _, err = run_cli(capsys, "eval-logits", "--logits", str(wrong))
    assert code == 2 and "have shape (10, 7) but the graph needs (2485, 7)" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, _, err = run_cli(capsys, "eval-logits", "--logits", str(empty))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "have shape (0, 1)" in err  # no numpy warning line
    nan = tmp_path / "nan.txt"
    arr = np.zeros((2485, 7))
    arr[0, 0] = np.inf
    np.savetxt(nan, arr)
    code, _, err = run_cli(capsys, "distill", "--teacher-logits", str(nan), "--quiet")
    assert code == 2 and "NaN/Inf" in err
    weights = tmp_path / "gcn_seed0.pt"  # what `teacher --out` saves beside the logits
    torch.save({"layers.0.weight": torch.zeros(2, 2)}, weights)
    code, _, err = run_cli(capsys, "eval-logits", "--logits", str(weights))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "holds a dict, not a logits tensor" in err
    tensor = tmp_path / "logits.pt"
    torch.save(torch.zeros(10, 7), tensor)
    code, _, err = run_cli(capsys, "eval-logits", "--logits", str(tensor))
    assert code == 2 and "have shape (10, 7) but the graph needs (2485, 7)" in err


def test_nan_features_exit_2(capsys, tmp_path, data_dir):
    src = np.load(data_dir / "npz" / "cora.npz")
    arrays = {k: src[k] for k in src.files}
    arrays["attr_data"] = arrays["attr_data"].copy()
    arrays["attr_data"][5] = np.nan
    (tmp_path / "npz").mkdir()
    np.savez(tmp_path / "npz" / "cora.npz", **arrays)
    code, _, err = run_cli(capsys, "teacher", "--data-dir", str(tmp_path), "--quiet")
    assert code == 2 and "NaN/Inf" in err


def test_empty_split_exit_2(capsys, tmp_path, data_dir):
    # a dataset whose classes are too small for 20/20/10 per class gives an empty-split error, not a crash
    src = np.load(data_dir / "npz" / "cora.npz")
    arrays = {k: src[k] for k in src.files}
    labels = arrays["labels"].copy()
    labels[labels == 6] = 5
    labels[np.flatnonzero(labels == 5)[:3]] = 6  # class 6 now has 3 nodes
    arrays["labels"] = labels
    (tmp_path / "npz").mkdir()
    np.savez(tmp_path / "npz" / "cora.npz", **arrays)
    code, _, err = run_cli(capsys, "teacher", "--data-dir", str(tmp_path), "--quiet")
    assert code == 2 and "class 6 has only" in err


def test_teacher_out_must_be_a_folder(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = run_cli(capsys, "teacher", "--model", "sgc", "--out", str(afile), "--quiet")
    assert code == 2 and "is a file; give a folder" in err


def test_argparse_errors_exit_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "dgl_ltd.cli", "distill", "--method", "magic"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "invalid choice" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "dgl_ltd.cli", "teacher", "--seeds", "a,b"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "seeds must be comma-separated integers" in proc.stderr
    for argv, needle in ((["teacher", "--seeds", "99999999999"], "seeds must lie in [0, 4294967295]"),
                         (["teacher", "--seeds=-1"], "seeds must lie in"),
                         (["eval-logits", "--logits", "x", "--split-seed=-1"], "seeds must lie in"),
                         (["eval-logits", "--logits", "x", "--split-seed", "1,2"], "give one seed")):
        proc = subprocess.run([sys.executable, "-m", "dgl_ltd.cli", *argv], capture_output=True, text=True)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and needle in proc.stderr, argv
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # one line, no usage block


def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"dgl-ltd {dgl_ltd.__version__}"


def test_every_flag_has_help_that_states_its_default_once():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for command, sub in commands.items():
        for action in sub._actions:
            if action.option_strings:
                assert action.help, (command, action.option_strings)
                assert action.help.count("default") <= 1, (command, action.option_strings, action.help)


def test_ft_temperature_auto_is_parsed():
    args = build_parser().parse_args(["distill", "--method", "ft", "--temperature", "auto"])
    assert args.temperature == "auto"
    assert build_parser().parse_args(["distill", "--method", "ft", "--temperature", "2.5"]).temperature == 2.5


def test_eval_logits_random_split_warns_about_the_papers_training_nodes(capsys, data_dir):
    from dgl_ltd.data import load_dataset

    logits = str(data_dir / "ltd_teacher_logits" / "cora" / "GCN.txt")
    code, out, err = run_cli(capsys, "eval-logits", "--logits", logits, "--protocol", "random", "--split-seed", "3",
                             "--data-dir", str(data_dir), "--json")
    paper, drawn = load_dataset("cora", data_dir), load_dataset("cora", data_dir, protocol="random", seed=3)
    overlap = int((paper.ndata["train_mask"] & drawn.ndata["test_mask"]).sum())
    assert code == 0 and overlap > 0 and last_json(out)["train_overlap"] == overlap
    assert len(err.strip().splitlines()) == 1 and f"warning: {overlap} of this split's" in err
    assert "--protocol ltd" in err
    code, out, err = run_cli(capsys, "eval-logits", "--logits", logits, "--data-dir", str(data_dir), "--json")
    assert code == 0 and err == "" and "train_overlap" not in last_json(out)  # the paper's own split


def test_public_split_trains_and_scores_on_dgls_masks(capsys, tmp_path, data_dir):
    from dgl_ltd.data import accuracy, load_dataset, load_logits

    common = ["--split", "public", "--data-dir", str(data_dir), "--json"]
    code, out, _ = run_cli(capsys, "teacher", "--model", "sgc", "--max-epochs", "3", "--quiet", "--out",
                           str(tmp_path), *common)
    assert code == 0
    teacher_acc = last_json(out)["test_acc"]
    public = load_dataset("cora", data_dir, source="dgl", split="public")
    logits = load_logits(tmp_path / "sgc_seed0.txt", public)  # one row per node of DGL's graph
    assert round(accuracy(logits, public.ndata["label"], public.ndata["test_mask"]), 4) == teacher_acc
    code, out, _ = run_cli(capsys, "eval-logits", "--logits", str(tmp_path / "sgc_seed0.txt"), *common)
    assert code == 0 and last_json(out)["test_acc"] == teacher_acc
    # distilling on DGL's masks alone (no V_L^D / V_L^E), FT's temperature tuned on its validation nodes
    code, out, err = run_cli(capsys, "distill", "--method", "ft", "--temperature", "auto", "--model", "sgc",
                             "--teacher-logits", str(tmp_path / "sgc_seed0.txt"), "--max-epochs", "3", "--quiet",
                             *common)
    assert code == 0, err
    assert last_json(out)["teacher_test_acc"] == teacher_acc and last_json(out)["temperature"] in DistillConfig().ft_grid
