"""The command line under interruption, unwritable outputs and devices: one line, the right exit code, no partial files."""
import os

import numpy as np
import pytest
import torch

pytest.importorskip("dgl")

import dgl_ltd.devices as devices
import dgl_ltd.training as training
from dgl_ltd.cli import main

TEACHER = ["teacher", "--model", "sgc", "--max-epochs", "2", "--quiet"]
REAL_SAVETXT = np.savetxt


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def interrupt_halfway_through_savetxt(target, array, *args, **kwargs):
    """np.savetxt that writes half the rows, then is interrupted (Ctrl-C while the file is written)."""
    REAL_SAVETXT(target, array[: len(array) // 2], *args, **kwargs)
    raise KeyboardInterrupt


def test_ctrl_c_is_one_line_and_exit_130(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_teacher", interrupted)
    code, out, err = run_cli(capsys, *TEACHER)
    assert (code, out, err) == (130, "", "dgl-ltd: interrupted\n")


def test_interrupted_teacher_leaves_no_partial_logits(capsys, monkeypatch, tmp_path):
    code, _, _ = run_cli(capsys, *TEACHER, "--out", str(tmp_path))
    assert code == 0
    complete = (tmp_path / "sgc_seed0.txt").read_text()
    monkeypatch.setattr(np, "savetxt", interrupt_halfway_through_savetxt)
    code, _, err = run_cli(capsys, *TEACHER, "--out", str(tmp_path))
    assert code == 130 and err.strip().splitlines()[-1] == "dgl-ltd: interrupted"
    assert (tmp_path / "sgc_seed0.txt").read_text() == complete  # the earlier file, whole
    assert sorted(os.listdir(tmp_path)) == ["sgc_seed0.npy", "sgc_seed0.pt", "sgc_seed0.txt"]  # no temporary left
    fresh = tmp_path / "fresh"
    code, _, _ = run_cli(capsys, *TEACHER, "--out", str(fresh))
    # the .npy (written first) is whole; the interrupted text file and its temporary are not there
    assert code == 130 and os.listdir(fresh) == ["sgc_seed0.npy"]
    assert np.load(fresh / "sgc_seed0.npy").shape == np.loadtxt(tmp_path / "sgc_seed0.txt").shape


def test_interrupted_temperatures_leave_no_partial_file(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(np, "savetxt", interrupt_halfway_through_savetxt)
    code, _, _ = run_cli(capsys, "distill", "--method", "kd", "--teacher-model", "sgc", "--model", "sgc",
                         "--max-epochs", "2", "--quiet", "--save-temperatures", str(tmp_path / "tau.txt"))
    assert code == 130 and os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv", [
    ["teacher", "--model", "sgc", "--quiet", "--out", "{afile}/x"],
    ["teacher", "--model", "sgc", "--quiet", "--out", "/proc/x"],
    ["distill", "--teacher-model", "sgc", "--model", "sgc", "--quiet", "--save-temperatures", "/proc/x"],
    ["distill", "--teacher-model", "sgc", "--model", "sgc", "--quiet", "--save-temperatures", "{afile}/x"],
])
def test_unwritable_outputs_fail_before_any_training(capsys, monkeypatch, tmp_path, argv):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before the output path was checked")

    monkeypatch.setattr(training, "train_teacher", no_training)
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(capsys, *[arg.format(afile=tmp_path / "afile") for arg in argv])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "cannot write in folder" in err or "is a file" in err


def test_device_cuda_without_a_gpu_is_one_line(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run_cli(capsys, *TEACHER, "--device", "cuda")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "torch sees no CUDA GPU" in err


def test_device_cuda_with_a_cpu_only_dgl_names_the_fix(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(devices, "dgl_can_use_cuda", lambda: False)
    code, _, err = run_cli(capsys, "distill", "--device", "cuda", "--quiet")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "install a CUDA build of DGL" in err


@pytest.mark.parametrize("torch_gpu,dgl_gpu,expected", [
    (False, True, "cpu"), (True, False, "cpu"), (True, True, "cuda")])
def test_default_device_is_cuda_only_where_torch_and_dgl_can_use_it(monkeypatch, torch_gpu, dgl_gpu, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: torch_gpu)
    monkeypatch.setattr(devices, "dgl_can_use_cuda", lambda: dgl_gpu)
    assert devices.resolve_device(None).type == expected
