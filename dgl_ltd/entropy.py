"""Neighbourhood entropy of the teacher's predictions, with one fused DGL aggregation."""
from __future__ import annotations

import math

import torch

from ._compat import dgl
from dgl import function as fn

from .errors import UserInputError


def neighbourhood_entropy(graph: "dgl.DGLGraph", teacher_logits: torch.Tensor) -> torch.Tensor:
    r"""Entropy of the mean of each node's neighbours' teacher distributions.

    .. math::
        H_v = -\sum_c \bar p_{vc} \log \bar p_{vc}, \qquad
        \bar p_v = \frac{1}{|N(v)|} \sum_{u \in N(v)} \mathrm{softmax}(t_u)

    ``N(v)`` are the in-neighbours of ``v`` in ``graph`` with ``v`` itself excluded (self-loops
    are ignored: weighted 0, so the graph is never copied). The mean is one fused
    ``update_all(copy_u, mean)`` (with self-loops: a weighted sum and a count): O(E*C) time and
    O(N*C + E) memory, no dense N x N matrix. ``0 * log 0`` counts as 0. A node without neighbours gets
    ``log C``, the entropy of the uniform distribution (no neighbourhood evidence).

    Parameters
    ----------
    graph : DGLGraph
        Homogeneous graph with N nodes.
    teacher_logits : Tensor
        Shape (N, C).

    Returns
    -------
    Tensor
        Shape (N,), values in [0, log C].

    Examples
    --------
    >>> import dgl, torch
    >>> from dgl_ltd.entropy import neighbourhood_entropy
    >>> g = dgl.graph(([0, 1], [1, 0]), num_nodes=3)
    >>> neighbourhood_entropy(g, torch.tensor([[9., 0.], [0., 9.], [1., 1.]])).round(decimals=3)
    tensor([0.0010, 0.0010, 0.6930])
    """
    if teacher_logits.dim() != 2 or teacher_logits.shape[0] != graph.num_nodes():
        raise UserInputError(
            f"teacher logits have shape {tuple(teacher_logits.shape)} but the graph has {graph.num_nodes()} "
            "nodes; pass an N x C tensor"
        )
    probs = torch.softmax(teacher_logits.detach().float(), dim=-1)
    src, dst = graph.edges()
    self_loop = src == dst
    with graph.local_scope():
        graph.srcdata["p"] = probs
        if bool(self_loop.any()):  # weigh self-loops 0 instead of copying the graph without them
            graph.edata["w"] = (~self_loop).to(probs.dtype).unsqueeze(-1)
            graph.update_all(fn.u_mul_e("p", "w", "m"), fn.sum("m", "p_sum"))
            graph.update_all(fn.copy_e("w", "m"), fn.sum("m", "count"))
            count = graph.dstdata["count"]
            p_bar = graph.dstdata["p_sum"] / count.clamp_min(1.0)
            has_neighbours = count.squeeze(-1) > 0
        else:
            graph.update_all(fn.copy_u("p", "m"), fn.mean("m", "p_bar"))
            p_bar = graph.dstdata["p_bar"]
            has_neighbours = graph.in_degrees() > 0
    plogp = torch.where(p_bar > 0, p_bar * torch.log(p_bar.clamp_min(1e-30)), torch.zeros_like(p_bar))
    entropy = (-plogp.sum(-1)).clamp_min(0.0)
    uniform = math.log(teacher_logits.shape[1])
    return torch.where(has_neighbours.to(entropy.device), entropy, torch.full_like(entropy, uniform))
