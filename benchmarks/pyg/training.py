"""Teacher training for the PyG twin: ``dgl_ltd.training.train_teacher`` on a PyG ``Data``.

Seeding, early stopping, masks and accuracy come from ``dgl_ltd.training``/``dgl_ltd.metrics``,
which import no DGL, so a PyG-only process shares them without loading DGL.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgl_ltd.metrics import accuracy, check_mask
from dgl_ltd.training import EarlyStopping, TrainResult, set_seed

__all__ = ["EarlyStopping", "TrainResult", "accuracy", "check_mask", "evaluate", "set_seed", "train_teacher"]


def evaluate(model: nn.Module, x: Tensor, edge_index: Tensor) -> Tensor:
    """Logits of ``model`` in eval mode, without gradients."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(x, edge_index)
    model.train(was_training)
    return out


def train_teacher(model: nn.Module, data, lr: float = 0.01, weight_decay: float = 5e-4, max_epochs: int = 600,
                  patience: int = 50, seed: int | None = 0) -> TrainResult:
    """``dgl_ltd.training.train_teacher`` on a PyG ``Data`` (``x``, ``edge_index``, ``y`` and the masks).

    Adam, cross-entropy on ``train_mask``, one eval-mode pass per epoch for early stopping on
    ``val_mask``; the best weights are restored.
    """
    if seed is not None:
        set_seed(seed)
    x, edge_index, labels = data.x, data.edge_index, data.y
    train_mask = check_mask(data.train_mask, "train_mask")
    val_mask = check_mask(data.val_mask, "val_mask")
    test_mask = getattr(data, "test_mask", None)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    stopper = EarlyStopping(patience)
    history = []
    epoch = 0
    for epoch in range(max_epochs):
        model.train()
        optimizer.zero_grad()
        logits = model(x, edge_index)
        loss = F.cross_entropy(logits[train_mask], labels[train_mask])
        loss.backward()
        optimizer.step()
        out = evaluate(model, x, edge_index)
        val_loss = float(F.cross_entropy(out[val_mask], labels[val_mask]))
        val_acc = accuracy(out, labels, val_mask)
        history.append({"epoch": epoch, "loss": float(loss), "val_loss": val_loss, "val_acc": val_acc})
        if stopper.step(epoch, val_acc, val_loss, model):
            break
    stopper.restore(model)
    logits = evaluate(model, x, edge_index)
    test_acc = accuracy(logits, labels, test_mask) if test_mask is not None else float("nan")
    return TrainResult(model, logits, stopper.best_acc, test_acc, stopper.best_epoch, epoch + 1, history)
