"""One trainer of a DistDGL run: the data-parallel mini-batch loop on a ``dgl.distributed.DistGraph``.

The loop is :class:`~.parallel_run.ShardedMiniBatchRun`'s: every trainer draws the same permutation
of the graph's nodes each epoch and trains on its slice of every global batch, with the step core
summed over the trainers (:class:`~.parallel.ParallelStepCore`, gloo). What differs is where the
rows come from: blocks are sampled from the ``DistGraph`` (``dgl.dataloading.NeighborSampler``,
remote neighbours fetched from the servers) and the features, teacher logits, neighbourhood
entropy, labels and masks of the sampled nodes are read from its ``DistTensor`` node data, which
:mod:`dgl_ltd.partition` stored before partitioning. The judging, validation and test nodes are
split over the trainers by their gloo rank (:func:`split_nodes`); the test nodes are scored with full
neighbourhoods through a ``DistNodeDataLoader`` (what layer-wise inference computes on one machine).
LTD's calibrated start temperature is fitted on the calibration nodes gathered from every trainer.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.distributed as dist

from ..errors import UserInputError
from ..partition import ENTROPY_KEY, ORIG_ID_KEY, TEACHER_KEY
from ..sampling import neighbor_sampler, sample_seeded
from .core import Batch
from .label_batches import seed_part
from .parallel_run import RankDistiller, ShardedMiniBatchRun
from .result import DistillResult


@dataclass
class DistNodeData:
    """What a run on a ``DistGraph`` keeps in memory: the graph, and the calibration nodes' rows.

    ``teacher`` and ``labels`` hold the calibration nodes of every trainer (all of them True in
    ``calibration_mask``), which is all :func:`~.start.temperature_network` reads; ``feat`` is an
    empty tensor of the features' dtype.
    """

    graph: object
    feat: torch.Tensor
    teacher: torch.Tensor
    labels: torch.Tensor
    calibration_mask: torch.Tensor
    meta_key: str | None = None
    meta_on: str | None = None
    calibrate_on: str | None = None


def split_nodes(graph, key: str, comm) -> torch.Tensor:
    """This trainer's contiguous share of the nodes whose mask ``key`` is set (disjoint shares that cover them).

    The mask is read one partition's worth of rows at a time, as ``dgl.distributed.node_split``
    reads it, but the share is cut by the trainer's gloo rank: ``node_split`` takes the partition
    from the machine a trainer runs on (found by its IP), so trainers of several partitions on one
    machine would all get the first partition's share. Partitioning numbers each partition's nodes
    contiguously, so with the trainers ordered by machine a share still lies mostly in its own partition.
    """
    mask = graph.ndata[key]
    total = graph.num_nodes()
    step = max(1, -(-total // graph.get_partition_book().num_partitions()))
    nodes = torch.cat([mask[start:min(start + step, total)].nonzero().squeeze(-1) + start
                       for start in range(0, total, step)])
    return comm.share(nodes)


def dist_node_data(graph, cfg, comm) -> DistNodeData:
    """The :class:`DistNodeData` of ``graph`` for ``cfg``: judging and calibration masks resolved as on one machine."""
    from .inputs import _judging

    has_temp = "temp_mask" in graph.ndata
    feat = torch.empty(0, dtype=graph.ndata["feat"].dtype)
    data = DistNodeData(graph, feat, torch.empty(0, 1), torch.empty(0, dtype=torch.long), torch.empty(0, dtype=bool))
    if not cfg.learns:
        return data
    data.meta_on = _judging(cfg.meta_on, True if has_temp else None, "meta_on")
    data.calibrate_on = _judging(cfg.calibrate_on, True if has_temp else None, "calibrate_on")
    data.meta_key = f"{data.meta_on}_mask"
    nodes = split_nodes(graph, f"{data.calibrate_on}_mask", comm)
    mine = (graph.ndata[TEACHER_KEY][nodes].to(feat.dtype), graph.ndata["label"][nodes])
    every = [None] * comm.world
    dist.all_gather_object(every, mine)
    data.teacher = torch.cat([rows for rows, _ in every])
    data.labels = torch.cat([labels for _, labels in every])
    data.calibration_mask = torch.ones(data.labels.shape[0], dtype=torch.bool)
    return data


class DistMiniBatchRun(ShardedMiniBatchRun):
    """:class:`~.parallel_run.ShardedMiniBatchRun` on a ``DistGraph`` (module docstring)."""

    def __init__(self, cfg, student, data: DistNodeData, comm, seed: int):
        from .minibatch import check_fanouts, check_sampler

        if cfg.fanouts is None or check_sampler(cfg, student) != "neighbor":
            raise UserInputError("a DistGraph trains on neighbour-sampled blocks; give fanouts, e.g. --fanouts 10,10")
        check_fanouts(student, cfg.fanouts)
        self.cfg, self.student, self.module, self.data, self.comm = cfg, student, student, data, comm
        self.graph, self.kind = data.graph, "neighbor"
        self.order = torch.Generator().manual_seed(seed)
        self.sampler = neighbor_sampler(cfg.fanouts)
        self.step_count, self.learned_last = 0, False
        self.self_loop = bool(getattr(student, "self_loop", False))
        self._judges = split_nodes(self.graph, data.meta_key, comm) if cfg.learns else None
        self._val = split_nodes(self.graph, "val_mask", comm)
        self.label_batches = self.label_stream()
        self.test_nodes = split_nodes(self.graph, "test_mask", comm)

    def node_count(self) -> int:
        return self.graph.num_nodes()

    def label_pool(self) -> torch.Tensor:
        return split_nodes(self.graph, "distill_mask", self.comm)

    def judging_nodes(self) -> torch.Tensor:
        return self._judges

    def validation_nodes(self) -> torch.Tensor:
        return self._val

    def labels_of(self, nodes: torch.Tensor) -> torch.Tensor:
        return self.graph.ndata["label"][nodes]

    def _rows(self, key: str, nodes: torch.Tensor) -> torch.Tensor:
        return self.graph.ndata[key][nodes]

    def _with_degrees(self, blocks: list) -> list:
        """GCN's whole-graph degrees on each block, read from the DistGraph (its sampler does not copy node data)."""
        if self.self_loop:
            from .._compat import dgl
            from ..models import IN_DEGREE_KEY, OUT_DEGREE_KEY

            for block in blocks:
                for key in (OUT_DEGREE_KEY, IN_DEGREE_KEY):
                    block.srcdata[key] = self._rows(key, block.srcdata[dgl.NID])
                block.dstdata[IN_DEGREE_KEY] = self._rows(IN_DEGREE_KEY, block.dstdata[dgl.NID])
        return blocks

    def _inputs(self, nodes: torch.Tensor, sampled: tuple | None = None) -> tuple:
        input_nodes, blocks = sampled or sample_seeded(self.sampler, self.graph, nodes, self.sampling_seed())
        return self._with_degrees(blocks), self._rows("feat", input_nodes)

    def batch(self, nodes: torch.Tensor, subgraph=None, sampled: tuple | None = None, seeds: int | None = None,
              label_mask: torch.Tensor | None = None) -> Batch:
        cfg = self.cfg
        entropy = self._rows(ENTROPY_KEY, nodes).float() if cfg.learns else None
        kd_mask = ~self._rows(self.data.meta_key, nodes).bool() if cfg.learns and cfg.kd_holdout else None
        label_mask = self._rows("distill_mask", nodes).bool() if label_mask is None else label_mask
        return seed_part(Batch(self._inputs(nodes, sampled), self._rows(TEACHER_KEY, nodes).float(),
                               self.labels_of(nodes), label_mask, entropy, kd_mask), seeds)

    @torch.no_grad()
    def all_logits(self, student) -> torch.Tensor:
        """Eval-mode logits of this trainer's test nodes, over full neighbourhoods (``DistNodeDataLoader``);
        ``test_nodes`` becomes the nodes of the rows, in the loader's order."""
        from .._compat import dgl

        full = dgl.dataloading.NeighborSampler([-1] * len(self.cfg.fanouts))
        loader = dgl.dataloading.DistNodeDataLoader(self.graph, self.test_nodes, full, batch_size=self.cfg.batch_size,
                                                    shuffle=False, drop_last=False)
        student.eval()
        try:
            out, scored = [], []
            for input_nodes, output_nodes, blocks in loader:
                out.append(student(self._with_degrees(blocks), self._rows("feat", input_nodes)))
                scored.append(output_nodes)
        finally:
            student.train()
        self.test_nodes = torch.cat(scored) if scored else self.test_nodes  # the rows' nodes, as the loader gave them
        classes = self.graph.ndata[TEACHER_KEY].shape[1]
        return torch.cat(out) if out else torch.empty(0, classes)

    def entropy_of_final_rows(self) -> torch.Tensor:
        """The test nodes' entropy: :meth:`all_logits` returns the rows of this trainer's test nodes."""
        return self._rows(ENTROPY_KEY, self.test_nodes).float()


class DistRankDistiller(RankDistiller):
    """The :class:`~.parallel_run.RankDistiller` of one DistDGL trainer (module docstring).

    Its result's ``logits`` and ``temperatures`` are those of this trainer's test nodes, whose
    original node IDs are in ``config['test_orig_ids']``; ``test_acc`` is over every trainer's.
    """

    def make_run(self, data):
        return DistMiniBatchRun(self.config, self.student, data, self.comm, self.seed)

    def finish(self, run, core, early, data, epochs: int, seconds: float, resolved: dict,
               history: list) -> DistillResult:
        logits = run.all_logits(self.student)
        labels = run.labels_of(run.test_nodes)
        correct, total = self.comm.sum([int((logits.argmax(-1) == labels).sum()), labels.shape[0]])
        temperatures = run.all_temperatures(early.stopper.extra, core, logits)
        config = dict(asdict(self.config), **resolved, test_count=int(total),
                      test_orig_ids=run._rows(ORIG_ID_KEY, run.test_nodes).tolist())
        return DistillResult(self.student, logits, temperatures, early.stopper.best_acc,
                             correct / total if total else float("nan"), early.stopper.best_epoch, epochs, seconds,
                             seconds / epochs, config, history, val_loss=early.stopper.best_loss)
