"""Seeding, early stopping, accuracy and teacher training for the PyG twin.

Line-for-line copies of ``dgl_ltd.training``/``dgl_ltd.data`` helpers (whose modules import DGL,
which a PyG-only process must not load); ``tests/test_pyg_parity.py`` checks that they behave as
the originals do.
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (``dgl_ltd.training.set_seed`` also seeds DGL's own RNG,
    which none of the models or the distiller draws from)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def check_mask(mask: Tensor, name: str) -> Tensor:
    """A boolean node mask that selects at least one node."""
    if mask.dtype != torch.bool:
        raise ValueError(f"{name} must be a boolean tensor, got dtype {mask.dtype}")
    if int(mask.sum()) == 0:
        raise ValueError(f"{name} selects no node")
    return mask


def accuracy(logits: Tensor, labels: Tensor, mask: Tensor) -> float:
    """Accuracy of the arg-max class on ``mask``; exact ties go to the highest class index (as dgl_ltd)."""
    count = int(mask.sum())
    if count == 0:
        raise ValueError("the evaluation mask is empty")
    rows = logits[mask]
    pred = rows.shape[-1] - 1 - rows.flip(-1).argmax(-1)
    return float((pred == labels[mask]).float().mean())


class EarlyStopping:
    """Best validation accuracy (ties: lower validation loss) and its weights; stop after ``patience`` bad epochs."""

    def __init__(self, patience: int = 50):
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience!r}")
        self.patience = patience
        self.best_acc = -1.0
        self.best_loss = float("inf")
        self.best_epoch = -1
        self.best_state = None
        self.extra = None
        self.bad = 0

    def step(self, epoch: int, acc: float, loss: float, module: nn.Module, extra=None) -> bool:
        if acc > self.best_acc or (acc == self.best_acc and loss < self.best_loss):
            self.best_acc, self.best_loss, self.best_epoch = acc, loss, epoch
            self.best_state = copy.deepcopy(module.state_dict())
            self.extra = extra
            self.bad = 0
        else:
            self.bad += 1
        return self.bad >= self.patience

    def restore(self, module: nn.Module) -> None:
        if self.best_state is not None:
            module.load_state_dict(self.best_state)


def evaluate(model: nn.Module, x: Tensor, edge_index: Tensor) -> Tensor:
    """Logits of ``model`` in eval mode, without gradients."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(x, edge_index)
    model.train(was_training)
    return out


@dataclass
class TrainResult:
    """What :func:`train_teacher` returns (the fields of ``dgl_ltd.training.TrainResult``)."""

    model: nn.Module
    logits: Tensor
    val_acc: float
    test_acc: float
    best_epoch: int
    epochs: int
    history: list = field(default_factory=list)


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
