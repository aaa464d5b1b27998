"""Markdown helpers for the sections of ``pyg_vs_dgl.py`` and ``entropy_scaling.py`` (``--out FILE``).

``benchmarks/pyg_vs_dgl.py`` and ``benchmarks/entropy_scaling.py`` each own one section, delimited
by HTML comments; :func:`replace_section` rewrites one section and keeps the other, so either
script can be rerun alone.
"""
from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Iterable, Sequence

TITLE = "# DGL vs PyTorch Geometric: the LTD distillation loop and the neighbourhood entropy\n"
SECTIONS = ("pyg_vs_dgl", "entropy_scaling")


def replace_section(path: Path, name: str, body: str) -> None:
    """Write ``body`` as section ``name`` of ``path`` (created with the title if missing)."""
    if name not in SECTIONS:
        raise ValueError(f"unknown section {name!r}; choose one of {SECTIONS}")
    text = path.read_text() if path.is_file() else TITLE
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        # keep the sections in SECTIONS order
        later = [s for s in SECTIONS[SECTIONS.index(name) + 1:] if f"<!-- BEGIN {s} -->" in text]
        if later:
            marker = f"<!-- BEGIN {later[0]} -->"
            text = text.replace(marker, f"{block}\n\n{marker}")
        else:
            text = text.rstrip() + f"\n\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
