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
