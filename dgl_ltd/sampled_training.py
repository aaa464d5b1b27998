"""Training a teacher on neighbour-sampled mini-batches, for graphs that do not fit one full-graph pass.

The mini-batch twin of :func:`dgl_ltd.training.train_teacher`: Adam and cross-entropy on the
training nodes' sampled blocks, early stopping on the validation nodes (eval mode, sampled
blocks), the best weights restored, and every node's logits by layer-wise ``inference``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .distill.minibatch import check_fanouts
from .errors import UserInputError
from .metrics import accuracy, check_mask
from .models import sampling_graph, takes_blocks
from .sampling import neighbor_sampler, sample_blocks
from .training import EarlyStopping, TrainResult, progress, set_seed


def _sampled_logits(model: nn.Module, sampler, graph, feat, nodes: torch.Tensor, batch_size: int) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(*sample_blocks(sampler, graph, chunk, feat)) for chunk in nodes.split(batch_size)])
    model.train()
    return out


def train_teacher_sampled(model: nn.Module, graph, fanouts, batch_size: int = 1024,
                          batches_per_epoch: int | None = None, lr: float = 0.01, weight_decay: float = 5e-4,
                          max_epochs: int = 600, patience: int = 50, seed: int = 0,
                          show_progress: bool = True) -> TrainResult:
    """Train ``model`` (which takes blocks) on sampled blocks of ``graph``'s ``train_mask`` nodes.

    ``graph.ndata`` holds ``feat``, ``label``, ``train_mask``, ``val_mask`` and optionally
    ``test_mask``. Returns a :class:`~dgl_ltd.training.TrainResult` whose ``logits`` are every
    node's, by ``model.inference`` (full neighbourhoods, layer by layer).
    """
    if not takes_blocks(model) or not hasattr(model, "inference"):
        raise UserInputError(f"{type(model).__name__} cannot train on sampled blocks; use gcn, gat or graphsage, "
                             f"or drop --fanouts")
    check_fanouts(model, fanouts)
    set_seed(seed)
    nd = graph.ndata
    n = graph.num_nodes()
    feat, labels = nd["feat"], nd["label"]
    train = check_mask(nd["train_mask"], "train_mask", n).nonzero().squeeze(-1)
    val = check_mask(nd["val_mask"], "val_mask", n).nonzero().squeeze(-1)
    looped, sampler = sampling_graph(model, graph), neighbor_sampler(fanouts)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    stopper, history, epoch = EarlyStopping(patience), [], 0
    for epoch in progress(range(max_epochs), show_progress, "teacher"):
        model.train()
        chunks = train[torch.randperm(len(train))].split(batch_size)[:batches_per_epoch]
        losses = []
        for chunk in chunks:
            loss = F.cross_entropy(model(*sample_blocks(sampler, looped, chunk, feat)), labels[chunk])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss))
        out = _sampled_logits(model, sampler, looped, feat, val, batch_size)
        val_loss = float(F.cross_entropy(out, labels[val]))
        val_acc = accuracy(out, labels[val], torch.ones_like(val, dtype=torch.bool))
        history.append({"epoch": epoch, "loss": sum(losses) / len(losses), "val_loss": val_loss, "val_acc": val_acc})
        if stopper.step(epoch, val_acc, val_loss, model):
            break
    stopper.restore(model)
    logits = model.inference(graph, feat, batch_size=max(batch_size, 4096))
    test = nd["test_mask"] if "test_mask" in nd else None
    test_acc = accuracy(logits, labels, test) if test is not None and bool(test.any()) else float("nan")
    return TrainResult(model, logits, stopper.best_acc, test_acc, stopper.best_epoch, epoch + 1, history)
