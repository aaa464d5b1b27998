"""The six GNNs of the LTD paper on DGL's ``nn`` modules, usable as teacher or student, and an MLP student.

Every model has the signature ``forward(graph, feat) -> logits (N x C)`` and handles self-loops
itself: pass the raw graph. GCN, GAT and GraphSAGE also take one DGL block per layer
(``forward(blocks, feat)``, blocks sampled from :func:`sampling_graph` of the graph) and offer
layer-wise ``inference(graph, feat, batch_size)``; :func:`takes_blocks` tells which models do.
Defaults follow the paper's appendix:

========== ===================================================================================
GCN        2 layers, 64 hidden, dropout 0.8
GAT        2 layers, 8 heads x 8 hidden (ELU), one output head, feature and attention dropout 0.6
GraphSAGE  2 layers, 'gcn' aggregator, 128 hidden, dropout 0.5 (teachers: 3 layers, see
           ``build_teacher``)
APPNP      MLP 64 hidden, dropout 0.5, then K=10 propagation steps with alpha=0.1
SGC        K=2 propagation steps, then one linear layer
GCNII      GCNII paper's citation-graph settings (Chen et al., ICML 2020, Cora): 64 layers,
           64 hidden, alpha=0.1, lambda=0.5, dropout 0.6
MLP        2 layers, 128 hidden, dropout 0.5, no norm; reads only the features (``mlp(feat)``,
           or ``mlp(graph, feat)`` ignoring the graph): a student for graph-free inference;
           ``glnn_mlp(in_feats, n_classes, dataset)`` builds GLNN's per-dataset student
========== ===================================================================================

Modules: ``base`` (``NodeClassifier``, checks), ``graphs`` (self-loops and degrees added once
for sampling), ``layerwise`` (forward on a graph or blocks, layer-wise inference), ``conv`` (GCN,
GAT, GraphSAGE), ``propagation`` (APPNP, SGC, GCNII), ``mlp`` (MLP, GLNN's presets), ``registry``
(names and builders).
"""
from __future__ import annotations

from .base import NodeClassifier, as_block_list, takes_blocks
from .conv import GAT, GCN, GraphSAGE, graph_conv_on_block
from .graphs import IN_DEGREE_KEY, OUT_DEGREE_KEY, add_self_loops, is_self_looped, sampling_graph
from .layerwise import LayerwiseModel
from .mlp import GLNN_PRESETS, MLP, glnn_mlp
from .propagation import APPNP, GCNII, SGC, propagate_features
from .registry import ALIASES, MODELS, TEACHER_OVERRIDES, build_model, build_teacher, canonical_model_name

__all__ = [
    "ALIASES", "APPNP", "GAT", "GCN", "GCNII", "GLNN_PRESETS", "GraphSAGE", "IN_DEGREE_KEY", "LayerwiseModel", "MLP",
    "MODELS", "NodeClassifier", "OUT_DEGREE_KEY", "SGC", "TEACHER_OVERRIDES", "add_self_loops", "as_block_list",
    "build_model", "build_teacher", "canonical_model_name", "glnn_mlp", "graph_conv_on_block",
    "is_self_looped", "propagate_features", "sampling_graph", "takes_blocks",
]
