"""The paper's published hyper-parameters (appendix Tables 5 and 6), built in by model and dataset."""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from .errors import UserInputError

_DIR = Path(__file__).resolve().parent / "_data"
# canonical dataset name -> the paper's name
PAPER_DATASET = {
    "cora": "cora",
    "citeseer": "citeseer",
    "pubmed": "pubmed",
    "amazon-computers": "amazon_electronics_computers",
    "amazon-photo": "amazon_electronics_photo",
}
# registry model name -> the paper's spelling (also the file names of its teacher logits)
PAPER_MODEL = {"gcn": "GCN", "gat": "GAT", "graphsage": "GraphSAGE", "appnp": "APPNP", "sgc": "SGC", "gcnii": "GCNII"}


def teacher_logits_path(data_dir: Path, dataset: str, model: str) -> Path:
    """Where ``shared/data`` keeps the paper's teacher logits of a (canonical) dataset and model."""
    return Path(data_dir) / "ltd_teacher_logits" / PAPER_DATASET.get(dataset, dataset) / f"{PAPER_MODEL[model]}.txt"


@lru_cache(maxsize=None)
def _table(name: str) -> dict:
    with open(_DIR / name, newline="") as handle:
        return {(row["model"], row["dataset"]): row for row in csv.DictReader(handle)}


def _row(table: str, model: str, dataset: str) -> dict | None:
    key = (PAPER_MODEL.get(model), PAPER_DATASET.get(dataset))
    return _table(table).get(key)


def ltd_hparams(model: str, dataset: str) -> dict | None:
    """The paper's LTD cell: ``alpha``, ``beta``, ``k``, ``lam`` (SGD, summed losses); None if unpublished."""
    row = _row("hparams.csv", model, dataset)
    if row is None:
        return None
    return {"alpha": float(row["alpha"]), "beta": float(row["beta"]), "k": float(row["k"]), "lam": float(row["lambda"])}


def ft_hparams(model: str, dataset: str) -> dict | None:
    """The paper's FT cell: global ``temperature`` and ``lam``; None if unpublished."""
    row = _row("ft_hparams.csv", model, dataset)
    if row is None:
        return None
    return {"temperature": float(row["temperature"]), "lam": float(row["lambda"])}


def paper_result(model: str, dataset: str, column: str) -> float | None:
    """A figure of the paper's Table 8 (``teacher``, ``LTD``, ...); None if unpublished."""
    row = _row("results.csv", model, dataset)
    if row is None:
        return None
    if column not in row:
        raise UserInputError(f"unknown results column {column!r}; choose one of: {', '.join(list(row)[2:])}")
    return float(row[column])
