"""Models built as a stack of graph layers: one forward for a whole graph or for blocks, and
layer-wise inference over all nodes.

A subclass holds its layers in ``self.layers`` and defines ``layer_step(i, graph, h)``: layer
``i`` (dropout, convolution, activation) on a whole graph or on one block. ``forward`` runs the
steps on the self-looped whole graph, or on block ``i`` for layer ``i``, as DGL's examples do
(``h = layer(block, h)``). ``inference`` computes every node's output one layer at a time over
batches of destination nodes, each with its full one-hop neighbourhood
(``MultiLayerFullNeighborSampler(1)``), so memory is bounded by the batch, not by the depth.
"""
from __future__ import annotations

import torch

from .._compat import dgl
from ..errors import UserInputError
from .base import NodeClassifier, as_block_list, check_positive
from .graphs import check_blocks_prepared, sampling_graph


class LayerwiseModel(NodeClassifier):
    """Base of GCN, GAT and GraphSAGE: ``forward(graph_or_blocks, feat)`` and ``inference``."""

    takes_blocks = True

    def layer_step(self, index: int, graph, h: torch.Tensor) -> torch.Tensor:
        """Layer ``index`` on ``graph`` (a whole graph or a block) and its input features ``h``."""
        raise NotImplementedError

    def forward(self, graph_or_blocks, feat: torch.Tensor) -> torch.Tensor:
        """Logits of every node of a whole graph, or of the last block's destination nodes.

        Parameters
        ----------
        graph_or_blocks : DGLGraph or list of DGLBlock
            The raw whole graph (self-loops are handled here), or one block per layer sampled from
            :func:`dgl_ltd.models.sampling_graph` of the graph.
        feat : Tensor
            Features of every node (whole graph) or of the first block's source nodes.
        """
        blocks = as_block_list(graph_or_blocks)
        if blocks is None:
            graph = self.prepare_graph(graph_or_blocks)
            with graph.local_scope():
                h = feat
                for index in range(len(self.layers)):
                    h = self.layer_step(index, graph, h)
                return h
        self.check_blocks(blocks, feat)
        h = feat
        for index, block in enumerate(blocks):
            h = self.layer_step(index, block, h)
        return h

    def check_blocks(self, blocks: list, feat: torch.Tensor) -> None:
        """One-line ``UserInputError`` for a block count other than the layer count, features of the
        wrong row count, or blocks of a self-looped model sampled from an unprepared graph."""
        name, layers = type(self).__name__, len(self.layers)
        if len(blocks) != layers:
            raise UserInputError(
                f"{name} has {layers} layers but got {len(blocks)} block(s); sample one block per layer "
                f"(--fanouts with one entry per layer, e.g. --fanouts {','.join(['10'] * layers)})"
            )
        if feat.shape[0] != blocks[0].num_src_nodes():
            raise UserInputError(
                f"features have {feat.shape[0]} rows but the first block has {blocks[0].num_src_nodes()} source "
                "nodes; pass the features of blocks[0].srcdata[dgl.NID] (the sampler's input nodes)"
            )
        check_blocks_prepared(self, blocks)

    @torch.no_grad()
    def inference(self, graph: "dgl.DGLGraph", feat: torch.Tensor, batch_size: int = 4096,
                  device=None) -> torch.Tensor:
        """Every node's logits in eval mode, one layer at a time over batches of nodes.

        Equals the whole-graph forward in eval mode up to floating-point rounding, with memory
        bounded by ``batch_size`` (plus one N x hidden table per layer) instead of the whole graph's
        activations. The training mode is restored afterwards.

        Parameters
        ----------
        graph : DGLGraph
            The raw whole graph (or :func:`dgl_ltd.models.sampling_graph` of it, which saves a copy).
        feat : Tensor
            Features of every node (N x F); the output is on its device.
        batch_size : int
            Destination nodes per block.
        device : torch.device, optional
            Where each block is computed (default: ``feat``'s device).

        Returns
        -------
        Tensor
            Logits, N x C.
        """
        check_positive("batch_size", batch_size)
        device = feat.device if device is None else torch.device(device)
        graph = sampling_graph(self, graph)
        sampler = dgl.dataloading.MultiLayerFullNeighborSampler(1)
        batches = torch.arange(graph.num_nodes(), device=graph.device).split(batch_size)
        was_training = self.training
        self.eval()
        try:
            h = feat
            for index in range(len(self.layers)):
                out = None
                for seeds in batches:
                    input_nodes, output_nodes, (block,) = sampler.sample(graph, seeds)
                    y = self.layer_step(index, block.to(device), h[input_nodes.to(h.device)].to(device))
                    if out is None:
                        out = torch.empty((graph.num_nodes(),) + y.shape[1:], dtype=y.dtype, device=feat.device)
                    out[output_nodes.to(feat.device)] = y.to(feat.device)
                h = out
            return h
        finally:
            self.train(was_training)
