"""The six GNNs of ``dgl_ltd.models`` on PyTorch Geometric layers, with the same defaults and maths.

Every model has the signature ``forward(x, edge_index) -> logits (N x C)`` and, like its DGL twin,
handles self-loops itself (pass the raw ``edge_index``). Layer by layer:

========== ========================================================================================
GCN        ``GCNConv`` (no self-loops added by the layer; edge weights = DGL's 'both' normalisation)
GAT        ``GATConv`` (``add_self_loops=False``), feature dropout before it (DGL's ``feat_drop``),
           attention dropout inside it (DGL's ``attn_drop``), ELU after the hidden layers
GraphSAGE  ``SAGEConv(aggr='mean', root_weight=False)`` on the self-looped graph, which is DGL's
           'gcn' aggregator: (sum of neighbours + self) / (in-degree + 1), one weight and a bias
APPNP      two ``Linear`` layers, then ``APPNP`` (K=10, alpha=0.1, normalisation as above)
SGC        ``SGConv(K=2)``; its propagated features are cached per graph and feature tensor
GCNII      ``GCN2Conv`` (shared weights, theta = DGL's lambda) plus the bias DGL's ``GCN2Conv`` has
========== ========================================================================================

Initialisation: each layer keeps PyG's own ``reset_parameters``, which differs from DGL's
(PyG: glorot-uniform weights everywhere, zero biases; DGL: ``GraphConv``/``SGConv`` xavier-uniform,
``GATConv`` xavier-normal with gain sqrt(2) on weights and attention vectors, ``SAGEConv``
xavier-uniform with gain sqrt(2), ``GCN2Conv`` standard normal). For a like-for-like comparison,
:func:`benchmarks.pyg.transfer.copy_dgl_weights` loads a DGL model's weights into its twin; the
outputs then agree to float rounding (``tests/test_pyg_parity.py``).

Dropout is an ``nn.Dropout`` at the same places and in the same order as in the DGL models, so a
shared RNG state gives both frameworks the same masks (GAT's attention masks included: the
self-looped edge list has DGL's edge order, see :mod:`.graph`).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import APPNP as APPNPProp
from torch_geometric.nn import GATConv, GCN2Conv, GCNConv, SAGEConv, SGConv

from .graph import GraphCache, PreparedGraph


class NodeClassifier(nn.Module):
    """Base class: caches the self-looped, normalised copy of the last ``edge_index`` it saw."""

    self_loop = True

    def __init__(self) -> None:
        super().__init__()
        self._graphs = GraphCache()

    def prepare(self, x: Tensor, edge_index: Tensor) -> PreparedGraph:
        return self._graphs.get(edge_index, x.size(0), x.dtype, self.self_loop)

    def __getstate__(self):
        state = dict(self.__dict__)  # never copy or pickle the cached graph
        state["_graphs"] = GraphCache()
        return state


class GCN(NodeClassifier):
    """Graph convolutional network: ``num_layers`` ``GCNConv`` layers, ReLU, dropout before every layer."""

    def __init__(self, in_feats: int, n_classes: int, hidden: int = 64, num_layers: int = 2, dropout: float = 0.8):
        super().__init__()
        sizes = [in_feats] + [hidden] * (num_layers - 1) + [n_classes]
        self.layers = nn.ModuleList(
            GCNConv(a, b, add_self_loops=False, normalize=False) for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        g = self.prepare(x, edge_index)
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(self.dropout(h), g.edge_index, g.edge_weight)
            if i < len(self.layers) - 1:
                h = F.relu(h)
        return h


class GAT(NodeClassifier):
    """Graph attention network: hidden ``GATConv`` layers of ``heads`` x ``hidden`` (ELU), one output head."""

    def __init__(self, in_feats: int, n_classes: int, hidden: int = 8, heads: int = 8, num_layers: int = 2,
                 feat_drop: float = 0.6, attn_drop: float = 0.6):
        super().__init__()
        self.layers = nn.ModuleList()
        size = in_feats
        for _ in range(num_layers - 1):
            self.layers.append(GATConv(size, hidden, heads, dropout=attn_drop, add_self_loops=False))
            size = hidden * heads
        self.layers.append(GATConv(size, n_classes, 1, dropout=attn_drop, add_self_loops=False))
        self.feat_drop = nn.ModuleList(nn.Dropout(feat_drop) for _ in self.layers)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        g = self.prepare(x, edge_index)
        h = x
        for i, (drop, layer) in enumerate(zip(self.feat_drop, self.layers)):
            h = layer(drop(h), g.edge_index)
            if i < len(self.layers) - 1:
                h = F.elu(h)
        return h


class GraphSAGE(NodeClassifier):
    """GraphSAGE with DGL's 'gcn' aggregator (mean over the neighbours and the node itself)."""

    def __init__(self, in_feats: int, n_classes: int, hidden: int = 128, num_layers: int = 2, dropout: float = 0.5):
        super().__init__()
        sizes = [in_feats] + [hidden] * (num_layers - 1) + [n_classes]
        self.layers = nn.ModuleList(
            SAGEConv(a, b, aggr="mean", root_weight=False) for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        g = self.prepare(x, edge_index)
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(self.dropout(h), g.edge_index)
            if i < len(self.layers) - 1:
                h = F.relu(h)
        return h


class APPNP(NodeClassifier):
    """Predict then propagate: a 2-layer MLP, then K steps of personalised PageRank."""

    def __init__(self, in_feats: int, n_classes: int, hidden: int = 64, dropout: float = 0.5, k: int = 10,
                 alpha: float = 0.1):
        super().__init__()
        self.lin1 = nn.Linear(in_feats, hidden)
        self.lin2 = nn.Linear(hidden, n_classes)
        self.dropout = nn.Dropout(dropout)
        self.propagate = APPNPProp(k, alpha, normalize=False, add_self_loops=False)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        g = self.prepare(x, edge_index)
        h = F.relu(self.lin1(self.dropout(x)))
        h = self.lin2(self.dropout(h))
        return self.propagate(h, g.edge_index, g.edge_weight)


class SGC(NodeClassifier):
    """Simplifying graph convolution: K normalised propagation steps (cached), then one linear layer."""

    def __init__(self, in_feats: int, n_classes: int, k: int = 2):
        super().__init__()
        self.conv = SGConv(in_feats, n_classes, K=k, cached=True, add_self_loops=False)
        self._feat_key = None

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        g = self.prepare(x, edge_index)
        key = (self._graphs._key, x.data_ptr(), tuple(x.shape), x._version)
        if x.requires_grad or key != self._feat_key:
            self.conv._cached_x = None  # SGConv caches unconditionally; invalidate it as DGL's SGC does
            self._feat_key = None if x.requires_grad else key
        return self.conv(x, g.edge_index)


class BiasedGCN2Conv(nn.Module):
    """PyG's ``GCN2Conv`` followed by the additive bias that DGL's ``GCN2Conv`` has (zeros at start)."""

    def __init__(self, channels: int, alpha: float, theta: float, layer: int):
        super().__init__()
        self.conv = GCN2Conv(channels, alpha, theta=theta, layer=layer, shared_weights=True,
                             add_self_loops=False, normalize=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, x_0: Tensor, edge_index: Tensor, edge_weight: Tensor) -> Tensor:
        return self.conv(x, x_0, edge_index, edge_weight) + self.bias


class GCNII(NodeClassifier):
    """GCNII with the GCNII paper's Cora settings (64 layers of 64, alpha 0.1, lambda 0.5, dropout 0.6)."""

    def __init__(self, in_feats: int, n_classes: int, hidden: int = 64, num_layers: int = 64, alpha: float = 0.1,
                 lambda_: float = 0.5, dropout: float = 0.6):
        super().__init__()
        self.lin_in = nn.Linear(in_feats, hidden)
        self.convs = nn.ModuleList(BiasedGCN2Conv(hidden, alpha, lambda_, i + 1) for i in range(num_layers))
        self.lin_out = nn.Linear(hidden, n_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        g = self.prepare(x, edge_index)
        h0 = F.relu(self.lin_in(self.dropout(x)))
        h = h0
        for conv in self.convs:
            h = F.relu(conv(self.dropout(h), h0, g.edge_index, g.edge_weight))
        return self.lin_out(self.dropout(h))


MODELS: dict[str, Callable[..., NodeClassifier]] = {
    "gcn": GCN,
    "gat": GAT,
    "graphsage": GraphSAGE,
    "appnp": APPNP,
    "sgc": SGC,
    "gcnii": GCNII,
}


def build_model(name: str, in_feats: int, n_classes: int, **kwargs) -> NodeClassifier:
    """Build a model by its ``dgl_ltd`` registry name (``gcn``, ``gat``, ...) with the same defaults."""
    key = {"sage": "graphsage"}.get(name.strip().lower(), name.strip().lower())
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[key](in_feats, n_classes, **kwargs)
