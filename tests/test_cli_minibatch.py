"""The command line's mini-batch options and the planted graph: teacher --out, then distill on it."""
import json

import numpy as np
import pytest

pytest.importorskip("dgl")

from dgl_ltd.cli import main

PLANTED = ["--dataset", "planted", "--num-nodes", "6000", "--avg-degree", "8", "--num-classes", "4",
           "--num-feats", "12"]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sampled_teacher_then_sampled_student(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "teacher", *PLANTED, "--model", "graphsage", "--fanouts", "4,4,4",
                           "--batch-size", "256", "--batches-per-epoch", "4", "--max-epochs", "6", "--out",
                           str(tmp_path), "--json", "--quiet")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["test_acc"] > 0.5
    logits = np.load(tmp_path / "graphsage_seed0.npy")
    assert logits.shape == (6000, 4) and np.allclose(np.loadtxt(tmp_path / "graphsage_seed0.txt"), logits, atol=1e-6)
    # the same options and seed give the same graph, so the teacher's file fits the student's run
    code, out, err = run_cli(capsys, "distill", *PLANTED, "--model", "graphsage", "--teacher-logits",
                             str(tmp_path / "graphsage_seed0.npy"), "--method", "ltd-s", "--fanouts", "4,4",
                             "--batch-size", "256", "--batches-per-epoch", "4", "--max-epochs", "4", "--warmup", "2",
                             "--json", "--quiet")
    assert code == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["dataset"] == "planted" and res["settings"] == "standard" and res["alpha"] == 0.01
    assert res["test_acc"] > 0.5


@pytest.mark.parametrize("argv,needle", [
    (["distill", "--model", "graphsage", "--fanouts", "5,5,5"], "has 2 layers but fanouts has 3 entries"),
    (["distill", "--model", "appnp", "--fanouts", "5,5"], "--sampler cluster"),
    (["distill", "--batches-per-epoch", "3"], "batches_per_epoch applies to mini-batch training"),
    (["distill", "--sampler", "neighbor"], "the neighbour sampler needs fanouts"),
    (["distill", "--label-batch-size", "64"], "label_batch_size applies to mini-batch training"),
    (["distill", "--label-batch-size", "-1", "--fanouts", "5,5"], "--label-batch-size"),
    (["distill", "--fanouts", "5,0"], "fanouts must be comma-separated positive integers"),
    (["distill", "--batch-size", "0", "--fanouts", "5,5"], "expected an integer >= 1"),
    (["distill", "--sampler", "magic"], "invalid choice: 'magic'"),
    (["distill", "--num-nodes", "100"], "--num-nodes apply to --dataset planted only"),
    (["teacher", "--batch-size", "64"], "--batch-size applies to mini-batch training; add --fanouts"),
])
def test_bad_minibatch_options_exit_2_before_training(capsys, argv, needle):
    code, out, err = run_cli(capsys, *argv, "--quiet")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
