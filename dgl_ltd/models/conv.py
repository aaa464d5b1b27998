"""GCN, GAT and GraphSAGE: stacks of DGL graph layers that take a whole graph or one block per layer.

On whole graphs they compute exactly what DGL's ``GraphConv``, ``GATConv`` and ``SAGEConv`` compute
(GCN and GAT on the graph with one self-loop per node). On blocks sampled with full neighbourhoods
from :func:`dgl_ltd.models.sampling_graph` they give the same outputs for the blocks' destination
nodes, up to floating-point rounding (see :func:`graph_conv_on_block` for GCN's normalisation).
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .._compat import dgl
from dgl.nn.pytorch import GATConv, GraphConv, SAGEConv

from ..errors import UserInputError
from .base import check_positive, check_prob
from .graphs import IN_DEGREE_KEY, OUT_DEGREE_KEY
from .layerwise import LayerwiseModel


def graph_conv_on_block(conv: GraphConv, block, feat: torch.Tensor) -> torch.Tensor:
    r"""``conv`` (a ``GraphConv`` with ``norm='both'``) on a sampled block, normalised by whole-graph degrees.

    DGL's ``GraphConv`` on a block normalises a source node by its out-degree *in the block*, which
    counts only the block's destination nodes, so it differs from the whole-graph layer even with
    full neighbourhoods. Here node ``u``'s factor is :math:`d_u^{-1/2}` with its whole-graph
    out-degree, and destination ``v``'s is :math:`d_v^{-1/2} \cdot d_v / s_v` with its whole-graph
    in-degree :math:`d_v` and its :math:`s_v` sampled in-edges: the sum over the sampled neighbours
    is rescaled to estimate the sum over all of them without bias, and with full neighbourhoods
    (:math:`s_v = d_v`, a factor of exactly 1) the layer is the whole-graph layer. The degrees
    come from the ``ndata`` that :func:`dgl_ltd.models.add_self_loops` stored. The weight is applied
    before or after the aggregation as ``GraphConv`` does (first when it shrinks the features).
    """
    src_degree = block.srcdata[OUT_DEGREE_KEY].to(feat).clamp(min=1)
    dst_degree = block.dstdata[IN_DEGREE_KEY].to(feat).clamp(min=1)
    sampled = block.in_degrees().to(feat).clamp(min=1)
    src_norm = torch.pow(src_degree, -0.5).unsqueeze(1)
    dst_norm = (torch.pow(dst_degree, -0.5) * (dst_degree / sampled)).unsqueeze(1)
    weight_first = conv._in_feats > conv._out_feats
    with block.local_scope():
        h = feat * src_norm
        block.srcdata["h"] = torch.matmul(h, conv.weight) if weight_first else h
        block.update_all(dgl.function.copy_u("h", "m"), dgl.function.sum("m", "h"))
        out = block.dstdata["h"] if weight_first else torch.matmul(block.dstdata["h"], conv.weight)
    out = out * dst_norm
    return out + conv.bias if conv.bias is not None else out


class GCN(LayerwiseModel):
    r"""Graph convolutional network (Kipf & Welling, 2017).

    Parameters
    ----------
    in_feats : int
        Input feature size F.
    n_classes : int
        Number of classes C (output size).
    hidden : int
        Hidden size. Default 64.
    num_layers : int
        Number of ``GraphConv`` layers (>= 1). Default 2.
    dropout : float
        Dropout before every layer. Default 0.8.

    Shapes: ``feat`` (N, F) -> logits (N, C) on a whole graph; on blocks, ``feat`` of the first
    block's source nodes -> logits of the last block's destination nodes.

    Examples
    --------
    >>> import dgl, torch
    >>> from dgl_ltd.models import GCN
    >>> g = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> GCN(5, 3)(g, torch.randn(3, 5)).shape
    torch.Size([3, 3])
    """

    def __init__(self, in_feats: int, n_classes: int, hidden: int = 64, num_layers: int = 2, dropout: float = 0.8):
        super().__init__()
        for name, value in (("in_feats", in_feats), ("n_classes", n_classes), ("hidden", hidden), ("num_layers", num_layers)):
            check_positive(name, value)
        check_prob("dropout", dropout)
        sizes = [in_feats] + [hidden] * (num_layers - 1) + [n_classes]
        self.layers = nn.ModuleList(GraphConv(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()

    def layer_step(self, index, graph, h):
        conv = self.layers[index]
        h = self.dropout(h)
        h = graph_conv_on_block(conv, graph, h) if graph.is_block else conv(graph, h)
        return F.relu(h) if index < len(self.layers) - 1 else h


class GAT(LayerwiseModel):
    r"""Graph attention network (Velickovic et al., 2018).

    Parameters
    ----------
    in_feats, n_classes : int
        Input size F and number of classes C.
    hidden : int
        Hidden size per head. Default 8.
    heads : int
        Attention heads of the hidden layers. Default 8.
    num_layers : int
        Number of ``GATConv`` layers; the last has one head. Default 2.
    feat_drop, attn_drop : float
        Feature and attention dropout. Default 0.6 each.

    Shapes: ``feat`` (N, F) -> logits (N, C) on a whole graph; on blocks, ``feat`` of the first
    block's source nodes -> logits of the last block's destination nodes.

    Examples
    --------
    >>> import dgl, torch
    >>> from dgl_ltd.models import GAT
    >>> g = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> GAT(5, 3)(g, torch.randn(3, 5)).shape
    torch.Size([3, 3])
    """

    def __init__(self, in_feats: int, n_classes: int, hidden: int = 8, heads: int = 8, num_layers: int = 2,
                 feat_drop: float = 0.6, attn_drop: float = 0.6):
        super().__init__()
        for name, value in (("in_feats", in_feats), ("n_classes", n_classes), ("hidden", hidden), ("heads", heads), ("num_layers", num_layers)):
            check_positive(name, value)
        check_prob("feat_drop", feat_drop)
        check_prob("attn_drop", attn_drop)
        self.layers = nn.ModuleList()
        size = in_feats
        for _ in range(num_layers - 1):
            self.layers.append(GATConv(size, hidden, heads, feat_drop, attn_drop, activation=F.elu))
            size = hidden * heads
        self.layers.append(GATConv(size, n_classes, 1, feat_drop, attn_drop))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()

    def layer_step(self, index, graph, h):
        return self.layers[index](graph, h).flatten(1)


class GraphSAGE(LayerwiseModel):
    r"""GraphSAGE (Hamilton et al., 2017) with the 'gcn' aggregator (self included, no self-loops needed).

    Parameters
    ----------
    in_feats, n_classes : int
        Input size F and number of classes C.
    hidden : int
        Hidden size. Default 128.
    num_layers : int
        Number of ``SAGEConv`` layers. Default 2.
    dropout : float
        Feature dropout before every layer. Default 0.5.
    aggregator : str
        ``gcn``, ``mean``, ``pool`` or ``lstm``. Default ``gcn``.

    Shapes: ``feat`` (N, F) -> logits (N, C) on a whole graph; on blocks, ``feat`` of the first
    block's source nodes -> logits of the last block's destination nodes.

    Examples
    --------
    >>> import dgl, torch
    >>> from dgl_ltd.models import GraphSAGE
    >>> g = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> GraphSAGE(5, 3)(g, torch.randn(3, 5)).shape
    torch.Size([3, 3])
    """

    self_loop = False
    AGGREGATORS = ("gcn", "mean", "pool", "lstm")

    def __init__(self, in_feats: int, n_classes: int, hidden: int = 128, num_layers: int = 2, dropout: float = 0.5,
                 aggregator: str = "gcn"):
        super().__init__()
        for name, value in (("in_feats", in_feats), ("n_classes", n_classes), ("hidden", hidden), ("num_layers", num_layers)):
            check_positive(name, value)
        check_prob("dropout", dropout)
        if aggregator not in self.AGGREGATORS:
            raise UserInputError(f"aggregator must be one of {self.AGGREGATORS}, got {aggregator!r}")
        sizes = [in_feats] + [hidden] * (num_layers - 1) + [n_classes]
        self.layers = nn.ModuleList(SAGEConv(a, b, aggregator) for a, b in zip(sizes[:-1], sizes[1:]))
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()

    def layer_step(self, index, graph, h):
        h = self.layers[index](graph, self.dropout(h))
        return F.relu(h) if index < len(self.layers) - 1 else h
