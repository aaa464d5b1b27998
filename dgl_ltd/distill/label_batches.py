"""Label batches: the labelled nodes whose label loss a mini-batch step scores, drawn apart from its seeds.

A random batch of B seeds out of N nodes holds about B |V_L^D| / N labelled nodes: about 4 for a
batch of 256 under the 20-per-class protocol on amazon-computers. Scoring the label loss on those
alone makes every step's class pull depend on which few labels it drew, and the student's weights
swing with it from one epoch's end to the next. Instead each step scores a label batch of its own:
``size`` labelled nodes, all of them when there are no more, else the next ones of a permutation of
them, appended to the step's seeds (:func:`with_label_batch`). The step's loss (KD averaged over
the seeds, the label loss over the label batch) is then an estimate of the full-graph loss whose
label part varies only with the label batch, not with the seeds.
"""
from __future__ import annotations

import torch

from .core import Batch


class LabelBatches:
    """Each step's label batch: ``size`` nodes of ``pool`` (all of it when it holds no more), else the
    next ``size`` of a permutation of it, a new one drawn (from torch's random stream) when too few
    are left; ``size`` 0 gives None (the seeds' own labelled nodes are scored)."""

    def __init__(self, pool: torch.Tensor, size: int):
        self.pool, self.size = pool, min(int(size), int(pool.numel()))
        self.queue = pool[:0]

    def next(self) -> torch.Tensor | None:
        if self.size == 0:
            return None
        if self.size == self.pool.numel():
            return self.pool
        if self.queue.numel() < self.size:
            self.queue = self.pool[torch.randperm(self.pool.numel())]
        taken, self.queue = self.queue[:self.size], self.queue[self.size:]
        return taken


def with_label_batch(seeds: torch.Tensor, labelled: torch.Tensor | None) -> tuple:
    """``(rows, label_mask)``: the ``seeds`` followed by the nodes of ``labelled`` not among them, and
    which rows the label loss scores (those of ``labelled``); ``(seeds, None)`` without a label batch."""
    if labelled is None:
        return seeds, None
    rows = torch.cat([seeds, labelled[~torch.isin(labelled, seeds)]])
    return rows, torch.isin(rows, labelled)


def seed_part(batch: Batch, seeds: int | None) -> Batch:
    """``batch`` with its first ``seeds`` rows marked as its seeds: the KD term counts only those."""
    if seeds is None or seeds >= batch.rows:
        return batch
    in_seeds = torch.arange(batch.rows, device=batch.teacher.device) < seeds
    batch.kd_mask = in_seeds if batch.kd_mask is None else batch.kd_mask & in_seeds
    batch.seed_rows = seeds
    return batch
