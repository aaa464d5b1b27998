"""GLNN's production (inductive) setting: a share of the unlabelled nodes is held out of training.

The held-out nodes are left out of the teacher's training graph and of distillation; at test time
the MLP student scores them from their features alone (the teacher from the whole graph).
"""
from __future__ import annotations

import torch

from .errors import UserInputError
from .metrics import check_seed


def check_share(share) -> float:
    """The held-out share as a float in (0, 1), or a one-line error naming the fix."""
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 < float(share) < 1.0:
        raise UserInputError(f"the inductive share must lie in (0, 1), got {share!r}; e.g. 0.2 holds out 20% of the "
                             f"unlabelled nodes")
    return float(share)


def inductive_split(graph, share: float = 0.2, seed: int = 0) -> tuple:
    """Node ids ``(observed, held_out)``: ``share`` of the test nodes, drawn with ``seed``, are held out.

    The unlabelled nodes are those of ``graph.ndata['test_mask']`` (every node outside the training
    and validation sets under the package's protocols). Both id tensors are sorted.

    Examples
    --------
    >>> from dgl_ltd.data import load_dataset
    >>> from dgl_ltd.inductive import inductive_split
    >>> g = load_dataset("cora")
    >>> observed, held_out = inductive_split(g, 0.2, seed=0)
    >>> len(observed) + len(held_out) == g.num_nodes(), len(held_out) == round(0.2 * int(g.ndata["test_mask"].sum()))
    (True, True)
    """
    share = check_share(share)
    seed = check_seed(seed)
    if "test_mask" not in graph.ndata:
        raise UserInputError("graph.ndata has no 'test_mask'; the held-out nodes are drawn from the unlabelled "
                             "(test) nodes: store one there")
    unlabelled = graph.ndata["test_mask"].cpu().nonzero().squeeze(-1)
    count = round(share * len(unlabelled))
    if count == 0 or count == len(unlabelled):
        raise UserInputError(f"an inductive share of {share} holds out {count} of {len(unlabelled)} unlabelled nodes; "
                             f"choose a share that leaves some on both sides")
    order = torch.randperm(len(unlabelled), generator=torch.Generator().manual_seed(seed))
    held_out = unlabelled[order[:count]].sort().values
    keep = torch.ones(graph.num_nodes(), dtype=torch.bool)
    keep[held_out] = False
    return keep.nonzero().squeeze(-1), held_out
