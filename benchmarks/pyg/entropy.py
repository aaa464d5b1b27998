"""Neighbourhood entropy of the teacher's predictions by scatter-mean (PyG's ``utils.scatter``)."""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch_geometric.utils import scatter


def neighbourhood_entropy(edge_index: Tensor, teacher_logits: Tensor, num_nodes: int | None = None) -> Tensor:
    r"""Entropy of the mean of each node's in-neighbours' teacher distributions, self excluded.

    The same quantity as ``dgl_ltd.entropy.neighbourhood_entropy``:
    ``H_v = -sum_c pbar_vc log pbar_vc`` with ``pbar_v`` the mean of ``softmax(t_u)`` over the
    sources ``u != v`` of the edges into ``v``; ``0 log 0 = 0``; a node without such edges gets
    ``log C``. One gather of E x C rows and one scatter-mean: O(E*C) time, O(E*C) extra memory
    (the gathered messages; DGL's fused ``update_all`` needs only O(N*C)).

    Parameters
    ----------
    edge_index : Tensor
        Shape (2, E), rows (source, target).
    teacher_logits : Tensor
        Shape (N, C).
    num_nodes : int, optional
        N; defaults to ``teacher_logits.shape[0]``.

    Returns
    -------
    Tensor
        Shape (N,), values in [0, log C].
    """
    n = teacher_logits.shape[0] if num_nodes is None else num_nodes
    if teacher_logits.dim() != 2 or teacher_logits.shape[0] != n:
        raise ValueError(f"teacher logits have shape {tuple(teacher_logits.shape)}; expected ({n}, C)")
    probs = torch.softmax(teacher_logits.detach().float(), dim=-1)
    src, dst = edge_index[0], edge_index[1]
    keep = src != dst
    src, dst = src[keep], dst[keep]
    p_bar = scatter(probs[src], dst, dim=0, dim_size=n, reduce="mean")
    has_neighbours = torch.bincount(dst, minlength=n) > 0
    plogp = torch.where(p_bar > 0, p_bar * torch.log(p_bar.clamp_min(1e-30)), torch.zeros_like(p_bar))
    entropy = (-plogp.sum(-1)).clamp_min(0.0)
    uniform = math.log(teacher_logits.shape[1])
    return torch.where(has_neighbours.to(entropy.device), entropy, torch.full_like(entropy, uniform))
