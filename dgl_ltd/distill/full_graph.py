"""The full-graph loop: every epoch is one step of the core on the whole graph."""
from __future__ import annotations

import torch

from ..losses import eval_loss
from ..metrics import accuracy
from .callbacks import notify
from .core import Batch, MetaBatch


def eval_logits(student, *inputs) -> torch.Tensor:
    """``student(*inputs)`` in eval mode without gradients; the student is left in train mode."""
    student.eval()
    with torch.no_grad():
        out = student(*inputs)
    student.train()
    return out


def full_graph_batch(data, entropy=None, kd_mask=None) -> Batch:
    """The whole graph as one :class:`Batch` (rows: every node, in order)."""
    return Batch((data.graph, data.feat), data.teacher, data.labels, data.distill_mask, entropy, kd_mask)


def run_full_graph(core, schedule, data, batch: Batch, callbacks: list, max_epochs: int, history: list) -> int:
    """Train until a callback stops it or ``max_epochs``; appends to ``history``; returns the epochs run.

    On learning epochs the learning step's eval-mode forward at theta' over the whole graph also
    serves as the validation pass, so LTD costs no extra forward for it.
    """
    meta = MetaBatch(batch.inputs, data.labels, data.meta_mask) if schedule.learns else None
    learned, epoch = False, 0
    for epoch in range(max_epochs):
        learn = schedule.learn(epoch)
        out = core.step(batch, learn, schedule.refresh(epoch, learned), meta)
        learned = learn
        val_logits = out.meta_logits if out.meta_logits is not None else eval_logits(core.student, *batch.inputs)
        tau = out.tau
        record = {"epoch": epoch, "loss": out.loss, "val_acc": accuracy(val_logits, data.labels, data.val_mask),
                  "val_loss": float(eval_loss(val_logits, data.labels, data.val_mask)),
                  "tau_mean": float(tau.mean()), "tau_std": float(tau.std()) if tau.numel() > 1 else 0.0,
                  "meta_grad_norm": out.meta_grad_norm}
        history.append(record)
        if notify(callbacks, epoch, record):
            break
    return epoch + 1
