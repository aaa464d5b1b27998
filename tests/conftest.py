"""Shared fixtures. The benchmark data folder is ../shared/data beside the checkout (or $DGL_LTD_DATA)."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    env = os.environ.get("DGL_LTD_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    return path if (path / "MANIFEST.md").is_file() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("benchmark data folder not found: put shared/data beside the checkout or set DGL_LTD_DATA")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # DGL's dataset classes write cache files; keep them out of the user's home and of shared/
    monkeypatch.setenv("DGL_LTD_CACHE", str(tmp_path_factory.getbasetemp() / "dgl_ltd_cache"))


@pytest.fixture(scope="session")
def cora():
    """The built-in Cora under the paper's protocol (shared: tests that change it work on a clone)."""
    from dgl_ltd.data import load_dataset

    return load_dataset("cora")


@pytest.fixture(scope="session")
def cora_logits(cora, data_dir):
    """The paper's teacher logits on Cora, by model file name: ``cora_logits("GCN")``."""
    from dgl_ltd.data import load_logits

    cache = {}

    def load(model: str):
        if model not in cache:
            cache[model] = load_logits(data_dir / "ltd_teacher_logits" / "cora" / f"{model}.txt", cora)
        return cache[model].clone()

    return load
