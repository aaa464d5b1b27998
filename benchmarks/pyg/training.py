"""Teacher training for the PyG twin: ``dgl_ltd.training.train_teacher`` on a PyG ``Data``.

Seeding, early stopping, masks and accuracy come from ``dgl_ltd.training``/``dgl_ltd.metrics``,
which import no DGL, so a PyG-only process shares them without loading DGL.
"""
from __future__ import annotations

from torch import nn

from dgl_ltd.metrics import check_mask
from dgl_ltd.training import TrainResult, fit_classifier, set_seed

__all__ = ["train_teacher"]


def train_teacher(model: nn.Module, data, lr: float = 0.01, weight_decay: float = 5e-4, max_epochs: int = 600,
                  patience: int = 50, seed: int | None = 0) -> TrainResult:
    """``dgl_ltd.training.train_teacher`` on a PyG ``Data`` (``x``, ``edge_index``, ``y`` and the masks).

    The loop itself is ``dgl_ltd.training.fit_classifier``, the one DGL's teacher training runs.
    """
    if seed is not None:
        set_seed(seed)
    return fit_classifier(model, (data.x, data.edge_index), data.y, check_mask(data.train_mask, "train_mask"),
                          check_mask(data.val_mask, "val_mask"), getattr(data, "test_mask", None), lr,
                          weight_decay, max_epochs, patience)
