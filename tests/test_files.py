"""Output files: refused up front when they could not be written, and written whole or not at all."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from dgl_ltd.errors import UserInputError
from dgl_ltd.files import atomic_write, check_output_file, check_output_folder, save_text, save_torch

UNWRITABLE = "/proc"  # a folder in which even root cannot create a file


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    atomic_write(path, lambda temporary: Path(temporary).write_text("new\n"))
    assert path.read_text() == "new\n" and sorted(os.listdir(tmp_path)) == ["out.txt"]


@pytest.mark.parametrize("stop", [ValueError, KeyboardInterrupt])
def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, stop):
    path = tmp_path / "tau.txt"
    path.write_text("complete\n")

    def half_then_stop(temporary):
        Path(temporary).write_text("1.0\n" * 10)
        raise stop()

    with pytest.raises(stop):
        atomic_write(path, half_then_stop)
    assert path.read_text() == "complete\n" and sorted(os.listdir(tmp_path)) == ["tau.txt"]
    with pytest.raises(stop):
        atomic_write(tmp_path / "fresh.txt", half_then_stop)
    assert sorted(os.listdir(tmp_path)) == ["tau.txt"]


def test_new_files_get_the_usual_permissions(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = tmp_path / "atomic.txt"
    atomic_write(atomic, lambda temporary: Path(temporary).write_text("x"))
    assert atomic.stat().st_mode == plain.stat().st_mode


def test_save_text_and_save_torch_round_trip(tmp_path):
    array = np.random.RandomState(0).randn(5, 3)
    save_text(tmp_path / "a.txt", array, fmt="%.6f", delimiter="\t")
    assert np.allclose(np.loadtxt(tmp_path / "a.txt"), array, atol=1e-6)
    state = {"w": torch.arange(4.0)}
    save_torch(state, tmp_path / "w.pt")
    assert torch.equal(torch.load(tmp_path / "w.pt")["w"], state["w"])


@pytest.mark.parametrize("check,name,needle", [
    (check_output_file, ".", "is a folder; give a file name in it"),
    (check_output_file, "sub/", "is a folder; give a file name in it"),
    (check_output_file, "missing/t.txt", "does not exist; create it first"),
    (check_output_file, "afile/t.txt", "is a file, not a folder"),
    (check_output_file, UNWRITABLE + "/t.txt", "cannot write in folder"),
    (check_output_folder, "afile", "is a file; give a folder"),
    (check_output_folder, "afile/sub", "is a file, so no folder can be made under it"),
    (check_output_folder, UNWRITABLE + "/x", "cannot write in folder"),
])
def test_unwritable_outputs_are_refused_in_one_line(tmp_path, monkeypatch, check, name, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserInputError) as info:
        check(name, "--flag")
    assert needle in str(info.value) and "\n" not in str(info.value) and str(info.value).startswith("--flag")


def test_check_output_file_accepts_a_writable_folder_and_leaves_it_as_it_was(tmp_path):
    check_output_file(tmp_path / "t.txt", "--save-temperatures")
    assert os.listdir(tmp_path) == []


def test_check_output_folder_accepts_a_missing_folder_without_creating_it(tmp_path):
    check_output_folder(tmp_path / "a" / "b", "--out")
    assert os.listdir(tmp_path) == []
