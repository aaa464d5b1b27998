"""The base class of the bundled models, argument checks, and what a model takes as input.

A model takes either one whole graph (``forward(graph, feat)``) or, when :func:`takes_blocks` says
so, a list of DGL blocks, one per layer (``forward(blocks, feat)``), as sampled by
``dgl.dataloading.NeighborSampler``.
"""
from __future__ import annotations

import numbers
import weakref

import torch
from torch import nn

from .._compat import dgl
from ..errors import UserInputError
from .graphs import add_self_loops


def check_positive(name: str, value, kind=int) -> None:
    """Raise a one-line ``UserInputError`` unless ``value`` is a positive ``kind`` (never a bool)."""
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        shown = f"{value!r}" if type(value) in (int, float) else f"{value!r} of type {type(value).__name__}"
        raise UserInputError(f"{name} must be a positive {kind.__name__}, got {shown}")


def check_prob(name: str, value: float) -> None:
    """Raise a one-line ``UserInputError`` unless ``value`` lies in [0, 1)."""
    if not 0.0 <= float(value) < 1.0:
        raise UserInputError(f"{name} must be in [0, 1), got {value!r}")


def as_int(value):
    """NumPy integers and 0-d integer tensors (e.g. from ``feat.shape`` or ``labels.max() + 1``) as int."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point():
        return int(value)
    return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value


def as_block_list(graph_or_blocks) -> list | None:
    """The blocks in ``graph_or_blocks`` as a list, or ``None`` when it is one whole graph.

    A single block counts as a list of one, so that a model of several layers reports the count.
    """
    if isinstance(graph_or_blocks, (list, tuple)):
        blocks = list(graph_or_blocks)
        if not blocks or not all(isinstance(b, dgl.DGLGraph) and b.is_block for b in blocks):
            raise UserInputError("expected one DGLGraph or a non-empty list of DGL blocks (one per layer, as "
                                 "dgl.dataloading.NeighborSampler returns them)")
        return blocks
    if not isinstance(graph_or_blocks, dgl.DGLGraph):
        raise UserInputError(f"expected a DGLGraph or a list of DGL blocks, got {type(graph_or_blocks).__name__}")
    return [graph_or_blocks] if graph_or_blocks.is_block else None


def takes_blocks(model: nn.Module) -> bool:
    """Whether ``model.forward`` takes a list of DGL blocks (so it can train with the neighbour sampler).

    Reads the class attribute ``takes_blocks``; a module without it (a user's own) is assumed to take
    blocks, as DGL's examples write them (``forward(blocks, x)``).

    Examples
    --------
    >>> import torch
    >>> from dgl_ltd.models import GCN, APPNP, takes_blocks
    >>> takes_blocks(GCN(4, 2)), takes_blocks(APPNP(4, 2)), takes_blocks(torch.nn.Linear(4, 2))
    (True, False, True)
    """
    return bool(getattr(model, "takes_blocks", True))


class NodeClassifier(nn.Module):
    """Base class: ``forward(graph, feat) -> logits``, self-loops added for the whole-graph path.

    Class attributes: ``self_loop`` (the model wants one self-loop per node; blocks must then be
    sampled from :func:`dgl_ltd.models.add_self_loops` of the graph) and ``takes_blocks``.

    The self-looped copy of the last whole graph seen is cached: the cache holds a weak reference to
    that graph object and its node and edge counts, so passing another graph (or the same graph
    after ``add_edges``) builds a new copy, and a freed graph is never mistaken for a new one that
    Python gives the same ``id``. A graph that :func:`add_self_loops` returned is used as it is.
    """

    self_loop = True
    takes_blocks = True

    def __init__(self):
        super().__init__()
        self._graph_ref = None
        self._graph_key = None
        self._graph_prepared = None

    def prepare_graph(self, graph: "dgl.DGLGraph") -> "dgl.DGLGraph":
        """``graph`` without its self-loops, plus one self-loop per node (cached)."""
        if not self.self_loop:
            return graph
        key = (graph.num_nodes(), graph.num_edges(), graph.device)
        cached = self._graph_ref() if self._graph_ref is not None else None
        if cached is not graph or key != self._graph_key:
            self._graph_prepared = add_self_loops(graph)
            self._graph_ref, self._graph_key = weakref.ref(graph), key
        return self._graph_prepared

    def refuse_blocks(self, graph_or_blocks, fix: str) -> None:
        """Raise a one-line ``UserInputError`` naming ``fix`` when given blocks instead of a graph."""
        if as_block_list(graph_or_blocks) is not None:
            raise UserInputError(f"{type(self).__name__} cannot take DGL blocks; {fix}")

    @torch.no_grad()
    def inference(self, graph: "dgl.DGLGraph", feat: torch.Tensor, batch_size: int = 4096,
                  device=None) -> torch.Tensor:
        """Logits of every node in eval mode (this base version: one whole-graph forward).

        Models that take blocks override it with layer-wise inference whose memory is bounded by
        ``batch_size``; propagation models (APPNP, GCNII) need the whole graph at once.
        """
        check_positive("batch_size", batch_size)
        was_training = self.training
        self.eval()
        try:
            device = feat.device if device is None else torch.device(device)
            return self(graph.to(device), feat.to(device)).to(feat.device)
        finally:
            self.train(was_training)

    def __getstate__(self):
        state = dict(self.__dict__)  # do not copy or pickle the cached graph, nor weak references
        state.update((name, None) for name, value in state.items() if isinstance(value, weakref.ref))
        state["_graph_key"] = state["_graph_prepared"] = None
        return state
