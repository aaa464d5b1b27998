"""Graph preparation for the PyG models: self-loops and symmetric GCN normalisation, cached per graph.

``dgl_ltd.models`` passes every model ``dgl.add_self_loop(dgl.remove_self_loop(graph))``; the
same edge list here is :func:`with_self_loops`: the non-loop edges in their original order, then
one loop per node in node order (the order DGL uses), so edge-wise tensors (attention scores and
their dropout masks) line up edge for edge between the two frameworks.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import add_self_loops, remove_self_loops


def with_self_loops(edge_index: Tensor, num_nodes: int) -> Tensor:
    """``edge_index`` without its self-loops, followed by one self-loop per node (0..N-1)."""
    edge_index, _ = remove_self_loops(edge_index)
    edge_index, _ = add_self_loops(edge_index, num_nodes=num_nodes)
    return edge_index


@dataclass
class PreparedGraph:
    """A graph as the convolutions consume it.

    ``edge_index`` is the input with exactly one self-loop per node; ``edge_weight`` holds
    ``deg_in(dst)^-1/2 * deg_in(src)^-1/2`` per edge of it (PyG's ``gcn_norm``, the 'both'
    normalisation of DGL's ``GraphConv``, ``APPNPConv`` and ``GCN2Conv`` on a symmetric graph).
    """

    edge_index: Tensor
    edge_weight: Tensor
    num_nodes: int


class GraphCache:
    """Remembers the :class:`PreparedGraph` of the last ``edge_index`` seen (by identity and shape).

    Like ``dgl_ltd.models.NodeClassifier.prepare_graph``: passing another tensor (or one with
    another size or device) rebuilds it.
    """

    def __init__(self) -> None:
        self._key = None
        self._prepared: PreparedGraph | None = None

    def get(self, edge_index: Tensor, num_nodes: int, dtype: torch.dtype, self_loops: bool = True) -> PreparedGraph:
        key = (id(edge_index), tuple(edge_index.shape), num_nodes, edge_index.device, dtype, self_loops)
        if key != self._key or self._prepared is None:
            looped = with_self_loops(edge_index, num_nodes) if self_loops else edge_index
            _, weight = gcn_norm(looped, None, num_nodes, improved=False, add_self_loops=False, dtype=dtype)
            self._prepared = PreparedGraph(looped, weight, num_nodes)
            self._key = key
        return self._prepared

    def clear(self) -> None:
        self._key, self._prepared = None, None
