"""Graphs prepared once for sampling: one self-loop per node, and the degrees GCN normalises by.

A block cannot gain self-loops (its source and destination nodes are different node sets), so a
model that wants them (``model.self_loop``) must have its blocks sampled from a graph that already
has them. :func:`add_self_loops` builds that graph once; it also stores every node's in- and
out-degree (self-loop included) in ``ndata``, which DGL's samplers carry into each block's
``srcdata``/``dstdata``: GCN on a sampled block normalises by the degrees of the whole graph, not
by those of the block. The stored degrees mark the graph as prepared.
"""
from __future__ import annotations

from torch import nn

from .._compat import dgl
from ..errors import UserInputError

OUT_DEGREE_KEY = "_ltd_out_degree"
IN_DEGREE_KEY = "_ltd_in_degree"


def is_self_looped(graph: "dgl.DGLGraph") -> bool:
    """Whether ``graph`` came from :func:`add_self_loops` and has not gained or lost edges since."""
    if graph.is_block or IN_DEGREE_KEY not in graph.ndata or OUT_DEGREE_KEY not in graph.ndata:
        return False
    return int(graph.ndata[IN_DEGREE_KEY].sum()) == graph.num_edges()


def add_self_loops(graph: "dgl.DGLGraph") -> "dgl.DGLGraph":
    """``graph`` without its self-loops, plus one self-loop per node, with its degrees in ``ndata``.

    Call it once on the whole graph before sampling blocks for a model whose ``self_loop`` is true
    (GCN, GAT); :func:`sampling_graph` does so for a given model. A graph it returned is returned
    as it is. The edges are those of ``dgl.add_self_loop(dgl.remove_self_loop(graph))``, in the same
    order; the removal (a copy of the graph) is skipped when there is no self-loop to remove.

    Parameters
    ----------
    graph : DGLGraph
        A homogeneous graph (not a block).

    Returns
    -------
    DGLGraph
        A new graph sharing ``graph``'s node features, with ``ndata`` keys ``OUT_DEGREE_KEY`` and
        ``IN_DEGREE_KEY`` (int64 degrees, self-loop included).

    Examples
    --------
    >>> import dgl
    >>> from dgl_ltd.models import add_self_loops
    >>> g = add_self_loops(dgl.graph(([0, 1, 1], [1, 0, 1])))
    >>> g.num_edges(), g.ndata["_ltd_in_degree"].tolist()
    (4, [2, 2])
    """
    if not isinstance(graph, dgl.DGLGraph) or graph.is_block:
        raise UserInputError("add_self_loops takes the whole DGLGraph, not a block; call it once before sampling")
    if is_self_looped(graph):
        return graph
    src, dst = graph.edges()
    if bool((src == dst).any()):
        graph = dgl.remove_self_loop(graph)
    looped = dgl.add_self_loop(graph)
    looped.ndata[OUT_DEGREE_KEY] = looped.out_degrees()
    looped.ndata[IN_DEGREE_KEY] = looped.in_degrees()
    return looped


def sampling_graph(model: nn.Module, graph: "dgl.DGLGraph") -> "dgl.DGLGraph":
    """The graph to sample ``model``'s blocks from, prepared once before sampling.

    :func:`add_self_loops` of ``graph`` when the model wants self-loops (``model.self_loop``: GCN,
    GAT), else ``graph`` itself (GraphSAGE's 'gcn' aggregator counts the node itself already; a
    user's own module gets the graph as given).
    """
    return add_self_loops(graph) if getattr(model, "self_loop", False) else graph


def check_blocks_prepared(model: nn.Module, blocks: list) -> None:
    """One-line ``UserInputError`` when a self-looped model gets blocks from an unprepared graph."""
    if getattr(model, "self_loop", False) and IN_DEGREE_KEY not in blocks[0].srcdata:
        raise UserInputError(
            f"{type(model).__name__} needs blocks sampled from a graph with self-loops; sample from "
            "dgl_ltd.models.sampling_graph(model, graph) (add_self_loops, called once before sampling)"
        )
