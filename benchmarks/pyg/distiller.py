"""``PyGDistiller``: ``dgl_ltd.distill.Distiller`` on a PyG student and a PyG ``Data``.

Everything but the graph is ``dgl_ltd.distill``'s own, imported and run as is (none of it imports
DGL): the settings (``DistillConfig``), the input checks, LTD's start (calibrated temperature,
temperature network), the step core, the schedules, the callbacks (early stopping, progress,
divergence guard), the full-graph loop and the result. This module adds only what touches the
graph: the checks of ``x``/``edge_index``/``y``, a view of the ``Data`` that the shared checks read,
and the inputs of the shared full-graph run: ``(x, edge_index)`` with the entropy of :mod:`.entropy`.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from dgl_ltd.distill import Distiller, DistillResult, FullGraphRun
from dgl_ltd.errors import UserInputError

from .entropy import neighbourhood_entropy

MASKS = ("distill_mask", "train_mask", "temp_mask", "val_mask", "test_mask")


def check_edge_index(edge_index, num_nodes: int) -> Tensor:
    """A (2, E) integer tensor of (source, target) rows, every id in [0, num_nodes)."""
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.shape[0] != 2:
        shape = tuple(edge_index.shape) if hasattr(edge_index, "shape") else type(edge_index).__name__
        raise UserInputError(f"data.edge_index has shape {shape}; pass a (2, E) tensor of (source, target) rows")
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise UserInputError(f"data.edge_index has dtype {edge_index.dtype}; pass int64 node ids")
    if edge_index.numel() and not 0 <= int(edge_index.min()) <= int(edge_index.max()) < num_nodes:
        raise UserInputError(f"data.edge_index holds node ids in [{int(edge_index.min())}, {int(edge_index.max())}] "
                             f"but data.x has {num_nodes} rows; pass ids in [0, {num_nodes})")
    return edge_index.long()


class DataGraph:
    """A PyG ``Data`` seen as the homogeneous graph that ``dgl_ltd.distill.inputs.check_inputs`` reads.

    ``ndata`` maps ``feat`` to ``x``, ``label`` to ``y`` and holds the masks that ``data`` has;
    ``edge_index`` is checked. Missing attributes are named in PyG's terms here, so the shared
    checks only see what is present.
    """

    ntypes = ("_N",)
    canonical_etypes = (("_N", "_E", "_N"),)
    is_block = False

    def __init__(self, data, cfg):
        if not isinstance(getattr(data, "x", None), Tensor):
            raise UserInputError("data has no node features; set data.x to an (N, F) float tensor")
        if getattr(data, "y", None) is None:
            raise UserInputError("data has no labels; set data.y to one class index per node")
        self._num_nodes = int(data.x.shape[0])
        self.edge_index = check_edge_index(getattr(data, "edge_index", None), self._num_nodes)
        self.ndata = {"feat": data.x, "label": data.y}
        self.ndata.update({name: getattr(data, name) for name in MASKS if getattr(data, name, None) is not None})
        if "val_mask" not in self.ndata:
            raise UserInputError("data has no val_mask; set data.val_mask (the early-stopping nodes)")
        if "distill_mask" not in self.ndata and "train_mask" not in self.ndata:
            raise UserInputError("data has neither distill_mask nor train_mask; set one (the label-loss nodes)")
        if cfg.learns and "temp_mask" not in self.ndata and "temp" in (cfg.meta_on, cfg.calibrate_on):
            raise UserInputError("meta_on/calibrate_on='temp' needs V_L^E; set data.temp_mask or use 'val'")

    def num_nodes(self) -> int:
        return self._num_nodes


class PyGDistiller(Distiller):
    """:class:`dgl_ltd.distill.Distiller` for a PyG student called as ``student(x, edge_index)``.

    Parameters
    ----------
    student : nn.Module
        Returns (N, C) logits from ``(x, edge_index)``; trained in place.
    method : {'ltd', 'ltd-s', 'ft', 'kd'}
        As in ``dgl_ltd.Distiller``.
    **config
        Any field of ``dgl_ltd.distill.DistillConfig``; this twin trains full-graph only.
    """

    def __init__(self, student: nn.Module, method: str = "ltd", **config):
        super().__init__(student, method, **config)
        if self.config.minibatch:
            raise UserInputError("the PyG twin trains full-graph only; drop fanouts/sampler")

    def fit(self, data, teacher_logits: Tensor, seed: int = 0) -> DistillResult:
        """Distil on a PyG ``Data``: ``x``, ``edge_index``, ``y``, ``val_mask``, ``distill_mask`` (else
        ``train_mask``), optionally ``temp_mask`` (V_L^E; else the validation nodes judge) and ``test_mask``.

        The same run as ``Distiller.fit(graph, teacher_logits, seed=seed)`` on the DGL twin of ``data``.
        """
        return super().fit(DataGraph(data, self.config), teacher_logits, seed=seed)

    def make_run(self, data):
        """The shared full-graph loop, on ``(x, edge_index)`` with the entropy of :mod:`.entropy`."""
        edge_index = data.graph.edge_index
        entropy = neighbourhood_entropy(edge_index, data.teacher) if self.config.learns else None
        return FullGraphRun(self.config, self.student, data, inputs=(data.feat, edge_index), entropy=entropy)
