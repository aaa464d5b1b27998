"""Seeding, early stopping and teacher training (Adam, patience 50, at most 600 epochs)."""
from __future__ import annotations

import copy
import math
import random
import sys
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserInputError
from .metrics import accuracy, check_mask, check_seed  # noqa: F401  (check_mask re-exported)

try:
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover - tqdm is a declared dependency
    tqdm = None

# per-model teacher optimiser settings (Adam); the paper's appendix trains all with lr 0.01
TEACHER_DEFAULTS = {
    "gcn": {"lr": 0.01, "weight_decay": 5e-4},
    "gat": {"lr": 0.005, "weight_decay": 5e-4},
    "graphsage": {"lr": 0.01, "weight_decay": 5e-4},
    "appnp": {"lr": 0.01, "weight_decay": 5e-4},
    "sgc": {"lr": 0.2, "weight_decay": 5e-5},
    "gcnii": {"lr": 0.01, "weight_decay": 5e-4},
    "mlp": {"lr": 0.01, "weight_decay": 5e-4},
}


def set_seed(seed: int) -> None:
    """Seed Python, NumPy, torch and, when it is loaded, DGL (this module does not import DGL)."""
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    dgl = sys.modules.get("dgl")
    if dgl is not None and hasattr(dgl, "seed"):
        dgl.seed(seed)


def progress(iterable, enable: bool, desc: str):
    """Wrap ``iterable`` in a tqdm bar when ``enable`` (and tqdm is installed)."""
    if enable and tqdm is not None:
        return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True)
    return iterable


class EarlyStopping:
    """Track the best validation accuracy (ties broken by lower validation loss) and its weights.

    ``step`` returns True when ``patience`` epochs passed without improvement.
    """

    def __init__(self, patience: int = 50):
        if patience < 1:
            raise UserInputError(f"patience must be >= 1, got {patience!r}")
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


@dataclass
class TrainResult:
    """What :func:`train_teacher` returns: the model with its best weights and its scores."""

    model: nn.Module
    logits: torch.Tensor
    val_acc: float
    test_acc: float
    best_epoch: int
    epochs: int
    history: list = field(default_factory=list)


def evaluate(model: nn.Module, *inputs) -> torch.Tensor:
    """Logits of ``model(*inputs)`` (e.g. ``graph, feat``) in eval mode, without gradients."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(*inputs)
    model.train(was_training)
    return out


def train_teacher(
    model: nn.Module,
    graph,
    feat: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    train_mask: torch.Tensor | None = None,
    val_mask: torch.Tensor | None = None,
    test_mask: torch.Tensor | None = None,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    max_epochs: int = 600,
    patience: int = 50,
    seed: int | None = 0,
    show_progress: bool = True,
) -> TrainResult:
    """Train ``model`` with Adam and cross-entropy on ``train_mask``, early-stopped on ``val_mask``.

    Masks and features default to the graph's ``ndata`` (``feat``, ``label``, ``train_mask``,
    ``val_mask``, ``test_mask``). The best weights (validation accuracy, then loss) are restored.

    Examples
    --------
    >>> from dgl_ltd.data import load_dataset
    >>> from dgl_ltd.models import GCN
    >>> from dgl_ltd.training import train_teacher
    >>> g = load_dataset("cora")
    >>> res = train_teacher(GCN(g.ndata["feat"].shape[1], 7), g, max_epochs=5, show_progress=False)
    >>> res.logits.shape
    torch.Size([2485, 7])
    """
    if seed is not None:
        set_seed(seed)
    nd = graph.ndata
    feat = nd["feat"] if feat is None else feat
    labels = nd["label"] if labels is None else labels
    n = graph.num_nodes()
    train_mask = check_mask(nd["train_mask"] if train_mask is None else train_mask, "train_mask", n)
    val_mask = check_mask(nd["val_mask"] if val_mask is None else val_mask, "val_mask", n)
    test_mask = nd.get("test_mask") if test_mask is None else test_mask
    return fit_classifier(model, (graph, feat), labels, train_mask, val_mask, test_mask, lr, weight_decay,
                          max_epochs, patience, show_progress)


def fit_classifier(model: nn.Module, inputs: tuple, labels: torch.Tensor, train_mask: torch.Tensor,
                   val_mask: torch.Tensor, test_mask: torch.Tensor | None, lr: float, weight_decay: float,
                   max_epochs: int, patience: int, show_progress: bool = False) -> TrainResult:
    """The training loop of :func:`train_teacher` for any ``model(*inputs)``, framework-agnostic.

    Adam and cross-entropy on ``train_mask``, one eval-mode pass per epoch for early stopping on
    ``val_mask``; the best weights are restored. (The PyG twin of the benchmarks calls it with
    ``(x, edge_index)``.)
    """
    if max_epochs < 1:
        raise UserInputError(f"max_epochs must be >= 1, got {max_epochs!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise UserInputError(f"the learning rate must be a finite number > 0, got {lr!r}")
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise UserInputError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    stopper = EarlyStopping(patience)
    history = []
    epoch = 0
    for epoch in progress(range(max_epochs), show_progress, "teacher"):
        model.train()
        optimizer.zero_grad()
        logits = model(*inputs)
        loss = F.cross_entropy(logits[train_mask], labels[train_mask])
        loss.backward()
        optimizer.step()
        out = evaluate(model, *inputs)
        val_loss = float(F.cross_entropy(out[val_mask], labels[val_mask]))
        val_acc = accuracy(out, labels, val_mask)
        history.append({"epoch": epoch, "loss": float(loss), "val_loss": val_loss, "val_acc": val_acc})
        if stopper.step(epoch, val_acc, val_loss, model):
            break
    stopper.restore(model)
    logits = evaluate(model, *inputs)
    test_acc = accuracy(logits, labels, test_mask) if test_mask is not None else float("nan")
    return TrainResult(model, logits, stopper.best_acc, test_acc, stopper.best_epoch, epoch + 1, history)
