"""Accuracy and input checks shared by every module; torch only (no DGL), so PyG code can use them too."""
from __future__ import annotations

import numbers

import torch

from .errors import UserInputError


MAX_SEED = 2**32 - 1  # the largest seed NumPy and DGL accept


def check_seed(seed, what: str = "seed") -> int:
    """``seed`` as an int, or a one-line error when it is not an integer in [0, MAX_SEED]."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
        raise UserInputError(f"{what} must be an integer in [0, {MAX_SEED}], got {seed!r}")
    return int(seed)


def check_finite(tensor: torch.Tensor, what: str) -> None:
    """One-line error when ``tensor`` holds NaN or Inf."""
    if not torch.isfinite(tensor).all():
        bad = int((~torch.isfinite(tensor)).sum())
        raise UserInputError(f"{what} contain {bad} NaN/Inf values; clean or impute them first")


def check_mask(mask: torch.Tensor, name: str, num_nodes: int | None = None) -> torch.Tensor:
    """A boolean node mask (of ``num_nodes`` entries, when given) that selects at least one node."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        what = f"dtype {mask.dtype}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise UserInputError(f"{name} must be a boolean tensor, got {what}; pass a bool mask")
    if num_nodes is not None and tuple(mask.shape) != (num_nodes,):
        raise UserInputError(f"{name} has shape {tuple(mask.shape)} but the graph has {num_nodes} nodes; "
                             f"pass one entry per node")
    if int(mask.sum()) == 0:
        raise UserInputError(f"{name} selects no node; give it at least one labelled node")
    return mask


def accuracy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> float:
    """Accuracy of the arg-max class on the nodes of ``mask``; an empty mask is an error.

    Exact ties (which only rounded logits files produce) go to the highest class index: with that
    rule the paper's 4-decimal teacher-logits files score exactly its published accuracies (two of
    the 20 files hold one tied test node each).
    """
    count = int(mask.sum())
    if count == 0:
        raise UserInputError("the evaluation mask is empty; check the split masks of the graph")
    return float((predictions(logits[mask]) == labels[mask]).float().mean())


def predictions(logits: torch.Tensor) -> torch.Tensor:
    """The arg-max class of every row, exact ties going to the highest class index (see :func:`accuracy`)."""
    return logits.shape[-1] - 1 - logits.flip(-1).argmax(-1)
