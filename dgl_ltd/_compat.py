"""Import DGL with a clear message when the installed torch/dgl pair cannot work.

DGL 2.1.0 (the newest DGL on PyPI for Python 3.11) is built against torch 2.0-2.2.x; with a newer
torch, ``import dgl`` fails deep inside its C library loader with a message that does not say why.
Every module of :mod:`dgl_ltd` that needs DGL imports it from here.
"""
from __future__ import annotations

import os
import re

import torch

os.environ.setdefault("DGLBACKEND", "pytorch")

SUPPORTED_TORCH = ((2, 0), (2, 2))  # inclusive range of (major, minor) that DGL 2.1 supports
PINNED = "torch==2.2.1 dgl==2.1.0 torchdata==0.7.1"


def _major_minor(version: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        return (0, 0)
    return int(match.group(1)), int(match.group(2))


def check_torch_version(version: str | None = None) -> None:
    """Raise ``ImportError`` when ``version`` (default: the installed torch) cannot run DGL 2.1."""
    version = torch.__version__ if version is None else version
    major_minor = _major_minor(version)
    lo, hi = SUPPORTED_TORCH
    if not lo <= major_minor <= hi:
        raise ImportError(
            f"dgl_ltd needs DGL 2.1, which works only with torch 2.0-2.2.x, but torch {version} is "
            f"installed; fix: pip install {PINNED}"
        )


def import_dgl():
    """Return the ``dgl`` module, or raise one readable ``ImportError`` naming the fix."""
    check_torch_version()
    try:
        import dgl  # noqa: WPS433
    except Exception as exc:  # dgl raises assorted errors when its C library cannot load
        raise ImportError(
            f"could not import dgl ({type(exc).__name__}: {exc}); fix: pip install {PINNED}"
        ) from exc
    return dgl


dgl = import_dgl()
