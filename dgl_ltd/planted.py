"""A seeded planted-partition graph: large node-classification graphs to measure mini-batch training on.

Each node gets one of ``num_classes`` classes (sizes as equal as possible). Each undirected edge
joins a node drawn uniformly to a node of the same class with probability ``homophily``, else to
a node of another class, so the edge homophily (the fraction of edges inside a class) is
``homophily``. Features are a class centre (standard normal, one per class) plus isotropic normal
noise of standard deviation ``feature_noise``: features alone classify above chance but far from
perfectly, and neighbourhoods help. Edges are stored in both directions, without self-loops or
duplicates. The defaults resemble ogbn-products (average degree about 50, 47 classes, 100 features,
edge homophily about 0.8). The same options and seed give the same graph and split.

Everything is vectorised NumPy with int64 edge arrays and float32 features; edges are drawn in
chunks so that the peak memory stays near that of the final graph.
"""
from __future__ import annotations

import numpy as np
import torch

from ._compat import dgl
from .data import SPLIT_COUNTS, attach_split
from .errors import UserInputError
from .metrics import check_seed

PRODUCTS_LIKE = {"num_nodes": 2_449_029, "avg_degree": 50.0, "num_classes": 47, "num_feats": 100}
OPTION_NAMES = ("num_nodes", "avg_degree", "num_classes", "num_feats", "homophily", "feature_noise")
EDGE_CHUNK = 1 << 22  # edges drawn per chunk
MAX_ROUNDS = 8  # rounds of top-up draws that replace duplicate edges


def _check_options(num_nodes, avg_degree, num_classes, num_feats, homophily, feature_noise) -> None:
    for name, value in (("num_nodes", num_nodes), ("num_classes", num_classes), ("num_feats", num_feats)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise UserInputError(f"{name} must be a positive integer, got {value!r}")
    for name, value in (("avg_degree", avg_degree), ("feature_noise", feature_noise)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
            raise UserInputError(f"{name} must be a finite number >= 0, got {value!r}")
    if isinstance(homophily, bool) or not isinstance(homophily, (int, float)) or not 0.0 <= homophily <= 1.0:
        raise UserInputError(f"homophily must be in [0, 1], got {homophily!r}")
    if num_classes < 2:
        raise UserInputError(f"num_classes must be at least 2, got {num_classes}")
    needed = (sum(SPLIT_COUNTS) + 10) * num_classes
    if num_nodes < needed:
        raise UserInputError(f"num_nodes={num_nodes} is too small for {num_classes} classes (the split takes "
                             f"{sum(SPLIT_COUNTS)} per class); use num_nodes >= {needed} or fewer classes")
    class_size = num_nodes // num_classes
    if avg_degree * max(homophily, 1.0 / num_classes) > class_size / 4:
        raise UserInputError(f"avg_degree={avg_degree} is too dense for classes of {class_size} nodes; use "
                             f"avg_degree <= {class_size / 4 / max(homophily, 1.0 / num_classes):.0f}, more "
                             "nodes or fewer classes")


def _draw_edge_keys(rng, labels, by_class, class_start, class_size, count, homophily) -> np.ndarray:
    """``count`` undirected edges as keys ``min(u, v) * N + max(u, v)``, self-loops dropped."""
    num_nodes, num_classes = len(labels), len(class_size)
    keys = []
    for start in range(0, count, EDGE_CHUNK):
        size = min(EDGE_CHUNK, count - start)
        u = rng.integers(0, num_nodes, size)
        target = labels[u].astype(np.int64)
        other = rng.random(size) >= homophily
        target[other] = (target[other] + rng.integers(1, num_classes, int(other.sum()))) % num_classes
        offset = (rng.random(size) * class_size[target]).astype(np.int64)
        v = by_class[class_start[target] + np.minimum(offset, class_size[target] - 1)]
        low, high = np.minimum(u, v), np.maximum(u, v)
        keep = low != high
        keys.append(low[keep] * num_nodes + high[keep])
    return np.concatenate(keys) if keys else np.empty(0, dtype=np.int64)


def _unique_edge_keys(rng, labels, num_edges, homophily) -> np.ndarray:
    """Sorted distinct keys of exactly ``num_edges`` undirected edges (fewer only if too dense)."""
    by_class = np.argsort(labels, kind="stable")
    class_size = np.bincount(labels).astype(np.int64)
    class_start = np.concatenate([[0], np.cumsum(class_size)[:-1]])
    keys = np.empty(0, dtype=np.int64)
    for _ in range(MAX_ROUNDS):
        missing = num_edges - len(keys)
        if missing <= 0:
            break
        draw = missing if not len(keys) else int(missing * 1.1) + 16
        keys = np.concatenate([keys, _draw_edge_keys(rng, labels, by_class, class_start, class_size, draw, homophily)])
        keys.sort()
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys
    surplus = len(keys) - num_edges
    if surplus > 0:
        keys = np.delete(keys, rng.choice(len(keys), surplus, replace=False))
    return keys


def _features(rng, labels, num_classes, num_feats, feature_noise) -> np.ndarray:
    centres = rng.standard_normal((num_classes, num_feats), dtype=np.float32)
    feat = rng.standard_normal((len(labels), num_feats), dtype=np.float32)
    for start in range(0, len(labels), 1 << 18):  # in place, chunk by chunk: no second N x F array
        rows = slice(start, start + (1 << 18))
        feat[rows] *= np.float32(feature_noise)
        feat[rows] += centres[labels[rows]]
    return feat


def planted_partition_graph(num_nodes: int = PRODUCTS_LIKE["num_nodes"], avg_degree: float = 50.0,
                            num_classes: int = 47, num_feats: int = 100, seed: int = 0, homophily: float = 0.8,
                            feature_noise: float = 4.0) -> "dgl.DGLGraph":
    """Build a seeded planted-partition graph with features, labels and the paper's split masks.

    Parameters
    ----------
    num_nodes : int
        Nodes N (default: ogbn-products' 2,449,029).
    avg_degree : float
        Average in-degree (= out-degree): the graph has ``round(N * avg_degree / 2)`` undirected
        edges, stored in both directions. Default 50.
    num_classes : int
        Classes C. Default 47.
    num_feats : int
        Feature size F. Default 100.
    seed : int
        Seeds the graph, the features and the split (``attach_split``).
    homophily : float
        Probability that an edge joins two nodes of the same class. Default 0.8.
    feature_noise : float
        Standard deviation of the feature noise around the class centres. Default 4.0.

    Returns
    -------
    DGLGraph
        With ``ndata`` ``feat`` (float32, N x F), ``label`` (int64) and the masks of
        :func:`dgl_ltd.data.attach_split`: ``distill_mask``, ``temp_mask``, ``val_mask`` (20, 20
        and 10 nodes per class), ``train_mask`` and ``test_mask``.

    Examples
    --------
    >>> from dgl_ltd.planted import planted_partition_graph
    >>> g = planted_partition_graph(num_nodes=3000, avg_degree=10, num_classes=5, num_feats=8)
    >>> g.num_nodes(), g.num_edges(), tuple(g.ndata["feat"].shape), int(g.ndata["distill_mask"].sum())
    (3000, 30000, (3000, 8), 100)
    """
    _check_options(num_nodes, avg_degree, num_classes, num_feats, homophily, feature_noise)
    seed = check_seed(seed, "the planted graph's seed")
    label_rng, edge_rng, feat_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    labels = label_rng.permutation(np.arange(num_nodes, dtype=np.int64) % num_classes)
    keys = _unique_edge_keys(edge_rng, labels, int(round(num_nodes * avg_degree / 2)), homophily)
    low, high = np.divmod(keys, num_nodes)
    del keys
    src = torch.from_numpy(np.concatenate([low, high]))
    dst = torch.from_numpy(np.concatenate([high, low]))
    del low, high
    graph = dgl.graph((src, dst), num_nodes=num_nodes)
    del src, dst
    graph.ndata["feat"] = torch.from_numpy(_features(feat_rng, labels, num_classes, num_feats, feature_noise))
    graph.ndata["label"] = torch.from_numpy(labels)
    return attach_split(graph, seed)


def planted_from_options(seed: int, options: dict) -> "dgl.DGLGraph":
    """:func:`planted_partition_graph` with ``options`` by name; unknown names are a one-line error."""
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise UserInputError(f"unknown option(s) {', '.join(unknown)} of the 'planted' dataset; choose from: "
                             f"{', '.join(OPTION_NAMES)}")
    return planted_partition_graph(seed=seed, **options)


def edge_homophily(graph: "dgl.DGLGraph") -> float:
    """The fraction of edges whose endpoints share a label."""
    src, dst = graph.edges()
    labels = graph.ndata["label"]
    return float((labels[src] == labels[dst]).float().mean()) if graph.num_edges() else float("nan")
