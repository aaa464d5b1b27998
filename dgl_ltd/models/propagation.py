"""APPNP, SGC and GCNII: models that propagate over the whole graph, so they take no blocks.

DGL 2.1's ``APPNPConv`` and ``GCN2Conv`` run on one graph, not on blocks: train these on
subgraphs (``dgl.dataloading.ClusterGCNSampler``, ``--sampler cluster``) with the same
``forward(graph, feat)``. SGC's propagation has no weights: :meth:`SGC.precompute` computes it once,
and node mini-batches train its linear layer (:meth:`SGC.classify`) on rows of that table.
"""
from __future__ import annotations

import weakref

import torch
from torch import nn
import torch.nn.functional as F

from .._compat import dgl
from dgl.nn.pytorch import APPNPConv, GCN2Conv, SGConv

from ..errors import UserInputError
from .base import NodeClassifier, check_positive, check_prob
from .graphs import add_self_loops

CLUSTER_FIX = "train it on subgraphs with --sampler cluster (dgl.dataloading.ClusterGCNSampler) and pass each subgraph"
SGC_FIX = ("train its linear layer on rows of model.precompute(graph, feat) with model.classify (node mini-batches), "
           "or use --sampler cluster")


def propagate_features(graph: "dgl.DGLGraph", feat: torch.Tensor, k: int) -> torch.Tensor:
    r"""``k`` steps of :math:`D^{-1/2} A D^{-1/2}` on ``feat`` (SGC's propagation; in-degrees of ``graph``)."""
    with graph.local_scope():
        norm = torch.pow(graph.in_degrees().float().clamp(min=1), -0.5).to(feat.device).unsqueeze(1)
        h = feat
        for _ in range(k):
            h = h * norm
            graph.ndata["h"] = h
            graph.update_all(dgl.function.copy_u("h", "m"), dgl.function.sum("m", "h"))
            h = graph.ndata.pop("h") * norm
    return h


class APPNP(NodeClassifier):
    r"""Predict then propagate (Klicpera et al., 2019): an MLP, then K steps of personalised PageRank.

    Parameters
    ----------
    in_feats, n_classes : int
        Input size F and number of classes C.
    hidden : int
        Hidden size of the 2-layer MLP. Default 64.
    dropout : float
        Dropout before each MLP layer. Default 0.5.
    k : int
        Propagation steps. Default 10.
    alpha : float
        Teleport probability. Default 0.1.

    Shapes: ``feat`` (N, F) -> logits (N, C).

    Examples
    --------
    >>> import dgl, torch
    >>> from dgl_ltd.models import APPNP
    >>> g = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> APPNP(5, 3)(g, torch.randn(3, 5)).shape
    torch.Size([3, 3])
    """

    takes_blocks = False

    def __init__(self, in_feats: int, n_classes: int, hidden: int = 64, dropout: float = 0.5, k: int = 10,
                 alpha: float = 0.1):
        super().__init__()
        for name, value in (("in_feats", in_feats), ("n_classes", n_classes), ("hidden", hidden), ("k", k)):
            check_positive(name, value)
        check_prob("dropout", dropout)
        if not 0.0 < alpha <= 1.0:
            raise UserInputError(f"alpha must be in (0, 1], got {alpha!r}")
        self.lin1 = nn.Linear(in_feats, hidden)
        self.lin2 = nn.Linear(hidden, n_classes)
        self.dropout = nn.Dropout(dropout)
        self.propagate = APPNPConv(k, alpha)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, graph, feat):
        self.refuse_blocks(graph, CLUSTER_FIX)
        graph = self.prepare_graph(graph)
        with graph.local_scope():
            h = F.relu(self.lin1(self.dropout(feat)))
            h = self.lin2(self.dropout(h))
            return self.propagate(graph, h)


class SGC(NodeClassifier):
    r"""Simplifying graph convolution (Wu et al., 2019): K propagation steps, then a linear layer.

    The propagated features do not depend on the weights, so they are cached per graph and
    feature tensor (the cache is rebuilt when either changes or when ``feat`` requires grad).

    Parameters
    ----------
    in_feats, n_classes : int
        Input size F and number of classes C.
    k : int
        Propagation steps. Default 2.

    Shapes: ``feat`` (N, F) -> logits (N, C).

    Examples
    --------
    >>> import dgl, torch
    >>> from dgl_ltd.models import SGC
    >>> g = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> SGC(5, 3)(g, torch.randn(3, 5)).shape
    torch.Size([3, 3])
    """

    takes_blocks = False

    def __init__(self, in_feats: int, n_classes: int, k: int = 2):
        super().__init__()
        for name, value in (("in_feats", in_feats), ("n_classes", n_classes), ("k", k)):
            check_positive(name, value)
        self.conv = SGConv(in_feats, n_classes, k=k, cached=False)
        self._feat_graph = None  # weak reference to the graph the cached features were propagated on
        self._feat_key = None
        self._feat_cache = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()

    def _propagated(self, graph, feat):
        key = (feat.data_ptr(), tuple(feat.shape), feat._version, feat.device)
        same_graph = self._feat_graph is not None and self._feat_graph() is graph
        if feat.requires_grad or not same_graph or key != self._feat_key:
            h = propagate_features(graph, feat, self.conv._k)
            if feat.requires_grad:
                return h
            self._feat_graph, self._feat_key, self._feat_cache = weakref.ref(graph), key, h
        return self._feat_cache

    def forward(self, graph, feat):
        self.refuse_blocks(graph, SGC_FIX)
        graph = self.prepare_graph(graph)
        return self.conv.fc(self._propagated(graph, feat))

    @torch.no_grad()
    def precompute(self, graph: "dgl.DGLGraph", feat: torch.Tensor) -> torch.Tensor:
        r"""The propagated features :math:`\hat{A}^K X` of every node, computed once (O(K E F), sparse).

        The same normalisation and the same numbers as ``forward``'s: on mini-batches of nodes, SGC
        is then the linear model :meth:`classify` on rows of this table.

        Examples
        --------
        >>> import dgl, torch
        >>> from dgl_ltd.models import SGC
        >>> g, x = dgl.graph(([0, 1, 2], [1, 2, 0])), torch.randn(3, 5)
        >>> model = SGC(5, 3).eval()
        >>> torch.allclose(model.classify(model.precompute(g, x)[[0, 2]]), model(g, x)[[0, 2]])
        True
        """
        return propagate_features(add_self_loops(graph), feat, self.conv._k)

    def classify(self, propagated: torch.Tensor) -> torch.Tensor:
        """Logits of the rows of :meth:`precompute`'s table (SGC's one linear layer)."""
        return self.conv.fc(propagated)

    @torch.no_grad()
    def inference(self, graph, feat, batch_size: int = 4096, device=None) -> torch.Tensor:
        """Logits of every node: :meth:`precompute`, then :meth:`classify` over batches of rows."""
        check_positive("batch_size", batch_size)
        device = feat.device if device is None else torch.device(device)
        table = self.precompute(graph, feat)
        return torch.cat([self.classify(rows.to(device)).to(feat.device) for rows in table.split(batch_size)])


class GCNII(NodeClassifier):
    r"""GCNII (Chen et al., 2020): deep GCN with initial residual and identity mapping.

    Defaults are the GCNII paper's Cora settings: 64 layers of 64 units, alpha=0.1, lambda=0.5,
    dropout 0.6 (the paper trains with weight decay 0.01 on the convolutions and 5e-4 on the
    dense layers; :func:`dgl_ltd.training.train_teacher` and the Distiller applies one weight decay to all).

    Parameters
    ----------
    in_feats, n_classes : int
        Input size F and number of classes C.
    hidden : int
        Width of every layer. Default 64.
    num_layers : int
        Number of ``GCN2Conv`` layers. Default 64.
    alpha : float
        Initial-residual weight. Default 0.1.
    lambda_ : float
        Identity-mapping strength (beta_l = log(lambda_/l + 1)). Default 0.5.
    dropout : float
        Dropout before every layer. Default 0.6.

    Shapes: ``feat`` (N, F) -> logits (N, C).

    Examples
    --------
    >>> import dgl, torch
    >>> from dgl_ltd.models import GCNII
    >>> g = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> GCNII(5, 3, num_layers=4)(g, torch.randn(3, 5)).shape
    torch.Size([3, 3])
    """

    takes_blocks = False

    def __init__(self, in_feats: int, n_classes: int, hidden: int = 64, num_layers: int = 64, alpha: float = 0.1,
                 lambda_: float = 0.5, dropout: float = 0.6):
        super().__init__()
        for name, value in (("in_feats", in_feats), ("n_classes", n_classes), ("hidden", hidden), ("num_layers", num_layers)):
            check_positive(name, value)
        check_prob("dropout", dropout)
        if not 0.0 < alpha <= 1.0:
            raise UserInputError(f"alpha must be in (0, 1], got {alpha!r}")
        self.lin_in = nn.Linear(in_feats, hidden)
        self.convs = nn.ModuleList(
            GCN2Conv(hidden, layer=i + 1, alpha=alpha, lambda_=lambda_, project_initial_features=True)
            for i in range(num_layers)
        )
        self.lin_out = nn.Linear(hidden, n_classes)
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin_in.reset_parameters()
        self.lin_out.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, graph, feat):
        self.refuse_blocks(graph, CLUSTER_FIX)
        graph = self.prepare_graph(graph)
        with graph.local_scope():
            h0 = F.relu(self.lin_in(self.dropout(feat)))
            h = h0
            for conv in self.convs:
                h = F.relu(conv(graph, self.dropout(h), h0))
            return self.lin_out(self.dropout(h))
