"""A multi-layer perceptron student that reads only node features (the GLNN setting).

``MLP`` answers from a node's own feature row, so it needs no graph at inference: it is called as
``mlp(feat)`` on rows (node mini-batches, ``sampler='node'``) or as ``mlp(graph, feat)`` like every
other model of the package, in which case the graph is ignored (full-graph distillation). Its class
attribute ``takes_graph = False`` is what tells the mini-batch loop to feed it plain rows, and
``takes_blocks = False`` refuses neighbour-sampled blocks with a one-line error naming
``--sampler node``.

``GLNN_PRESETS`` holds the student settings of GLNN (Zhang et al., ICLR 2022) by dataset;
:func:`glnn_mlp` builds one.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UserInputError
from .base import NodeClassifier, check_positive, check_prob

NORMS = (None, "batch", "layer")

# GLNN's MLP students: 2 layers of 128 on the CPF datasets (dropout per dataset, no norm), 3 layers of
# 256 with batch norm on the OGB graphs. Their learning rate and weight decay are the optimiser's.
GLNN_PRESETS = {
    "cora": {"num_layers": 2, "hidden": 128, "dropout": 0.6, "norm": None},
    "citeseer": {"num_layers": 2, "hidden": 128, "dropout": 0.1, "norm": None},
    "pubmed": {"num_layers": 2, "hidden": 128, "dropout": 0.4, "norm": None},
    "amazon-computers": {"num_layers": 2, "hidden": 128, "dropout": 0.3, "norm": None},
    "amazon-photo": {"num_layers": 2, "hidden": 128, "dropout": 0.3, "norm": None},
    "ogbn-arxiv": {"num_layers": 3, "hidden": 256, "dropout": 0.2, "norm": "batch"},
    "ogbn-products": {"num_layers": 3, "hidden": 256, "dropout": 0.5, "norm": "batch"},
}


def _norm_layer(norm: str | None, width: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm1d(width)
    if norm == "layer":
        return nn.LayerNorm(width)
    return nn.Identity()


class MLP(NodeClassifier):
    r"""Linear layers with ReLU, dropout and an optional norm between them: logits from features alone.

    Parameters
    ----------
    in_feats, n_classes : int
        Input size F and number of classes C.
    hidden : int
        Width of every hidden layer. Default 128 (GLNN's).
    num_layers : int
        Linear layers, the output layer included (1: logistic regression). Default 2.
    dropout : float
        Dropout before every linear layer but the first. Default 0.5.
    norm : {None, 'batch', 'layer'}
        Normalisation after every hidden linear layer. Default None.

    Shapes: ``mlp(feat)`` or ``mlp(graph, feat)`` with ``feat`` (N, F) -> logits (N, C); the graph
    is not read.

    Examples
    --------
    >>> import dgl, torch
    >>> from dgl_ltd.models import MLP
    >>> mlp = MLP(5, 3, hidden=8)
    >>> x = torch.randn(4, 5)
    >>> mlp.eval()(x).shape, bool((mlp(dgl.rand_graph(4, 6), x) == mlp(x)).all())
    (torch.Size([4, 3]), True)
    """

    self_loop = False
    takes_blocks = False
    takes_graph = False

    def __init__(self, in_feats: int, n_classes: int, hidden: int = 128, num_layers: int = 2, dropout: float = 0.5,
                 norm: str | None = None):
        super().__init__()
        for name, value in (("in_feats", in_feats), ("n_classes", n_classes), ("hidden", hidden),
                            ("num_layers", num_layers)):
            check_positive(name, value)
        check_prob("dropout", dropout)
        if norm not in NORMS:
            raise UserInputError(f"norm must be one of None, 'batch', 'layer', got {norm!r}")
        widths = [in_feats] + [hidden] * (num_layers - 1) + [n_classes]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.norms = nn.ModuleList(_norm_layer(norm, hidden) for _ in range(num_layers - 1))
        self.dropout = nn.Dropout(dropout)
        self.num_layers = num_layers

    def forward(self, *inputs) -> torch.Tensor:
        """``forward(feat)`` or ``forward(graph, feat)``: the logits of the rows of ``feat``."""
        if len(inputs) not in (1, 2) or not isinstance(inputs[-1], torch.Tensor):
            raise UserInputError("MLP takes mlp(feat) or mlp(graph, feat) with feat an (N, F) tensor, got "
                                 f"{len(inputs)} argument(s) ending in {type(inputs[-1]).__name__ if inputs else None}")
        h = self._checked(inputs[-1])
        for i, layer in enumerate(self.layers):
            if i > 0:
                h = self.dropout(h)
            h = layer(h)
            if i < len(self.norms):
                h = torch.relu(self.norms[i](h))
        return h

    def _checked(self, feat: torch.Tensor) -> torch.Tensor:
        if feat.dim() != 2 or feat.shape[1] != self.layers[0].in_features:
            raise UserInputError(f"MLP expects (N, {self.layers[0].in_features}) features, got {tuple(feat.shape)}; "
                                 f"build it with in_feats={feat.shape[-1]}")
        return feat

    @torch.no_grad()
    def inference(self, graph, feat: torch.Tensor, batch_size: int = 16384, device=None) -> torch.Tensor:
        """Logits of every row of ``feat`` in eval mode, ``batch_size`` rows at a time (``graph`` unused).

        The same logits as ``mlp.eval()(feat)`` (under autocast too), computed without the training
        path's copies: the ReLUs work in place on each chunk and each chunk's logits go straight into
        one preallocated result.
        """
        check_positive("batch_size", batch_size)
        self._checked(feat)
        was_training = self.training
        self.eval()
        try:
            device = feat.device if device is None else torch.device(device)
            out = None
            for start in range(0, feat.shape[0], batch_size):
                h = feat[start:start + batch_size].to(device)
                for layer, norm in zip(self.layers[:-1], self.norms):
                    h = norm(layer(h)).relu_()
                logits = self.layers[-1](h)
                if out is None:
                    out = logits.new_empty(feat.shape[0], logits.shape[1])
                out[start:start + logits.shape[0]] = logits
            if out is None:  # no rows: the dtype the forward would give
                out = self(feat[:0].to(device))
            return out.to(feat.device)
        finally:
            self.train(was_training)


def glnn_mlp(in_feats: int, n_classes: int, dataset: str, **overrides) -> MLP:
    """The MLP student GLNN trained on ``dataset`` (a key of ``GLNN_PRESETS``), with ``overrides``.

    Examples
    --------
    >>> from dgl_ltd.models import glnn_mlp
    >>> mlp = glnn_mlp(100, 47, "ogbn-products")
    >>> mlp.num_layers, mlp.layers[0].out_features
    (3, 256)
    """
    if dataset not in GLNN_PRESETS:
        raise UserInputError(f"GLNN publishes no MLP preset for {dataset!r}; choose one of: {', '.join(GLNN_PRESETS)}")
    return MLP(in_feats, n_classes, **{**GLNN_PRESETS[dataset], **overrides})
