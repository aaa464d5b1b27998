"""The mini-batch loop: memory bounded by the batch, for graphs that do not fit one full-graph pass.

Three samplers (``DistillConfig.sampler``):

* ``'neighbor'`` (with ``fanouts``): ``dgl.dataloading.NeighborSampler`` blocks, ``student(blocks, x)``;
  blocks are sampled from :func:`dgl_ltd.models.sampling_graph` of the graph (self-loops added once).
* ``'cluster'``: ``dgl.dataloading.ClusterGCNSampler`` subgraphs, ``student(subgraph, x)``, for
  models that take no blocks (APPNP, GCNII); the judging nodes are scored on the subgraph of the
  batch's nodes and themselves, validation and the final logits on the whole graph.
* ``'node'``: plain node mini-batches of a feature table, for students that read one row per node:
  SGC on its propagated features (``precompute`` once, then ``classify`` rows), or a module whose
  ``takes_graph`` attribute is False (``student(x)``).

Computed once, globally: the neighbourhood entropy, the calibrated start temperature, the teacher
logits table. Per batch: the step core on the seed nodes and the step's label batch
(:mod:`~dgl_ltd.distill.label_batches`; KD over the seeds, the label loss over the label batch); on
learning steps, g' from all judging nodes through their own freshly sampled
blocks, the JVP through the batch's blocks with its dropout masks replayed. DGL samples on one
thread, each batch from a seed of its own drawn from the run's random stream, so that the same seed
gives the same run, with or without worker processes (``num_workers``).
"""
from __future__ import annotations

import copy
import tempfile

import torch
from torch import nn

from ..errors import UserInputError
from ..losses import eval_loss
from ..metrics import accuracy
from ..sampling import neighbor_sampler, one_sampling_thread, sample_in_order, sample_seeded
from .callbacks import notify
from .core import Batch, MetaBatch
from .label_batches import LabelBatches, seed_part, with_label_batch


class RowClassifier(nn.Module):
    """``student.classify(x)`` (SGC on precomputed rows) or ``student(x)`` as a module of its own."""

    def __init__(self, student: nn.Module):
        super().__init__()
        self.student = student

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        classify = getattr(self.student, "classify", None)
        return classify(rows) if classify is not None else self.student(rows)


def _takes_rows(student: nn.Module) -> bool:
    return hasattr(student, "precompute") and hasattr(student, "classify") or getattr(student, "takes_graph", True) is False


def check_fanouts(model: nn.Module, fanouts) -> None:
    """One fanout per layer of ``model`` (a user's module without ``layers`` is taken at its word)."""
    layers = getattr(model, "num_layers", None) or len(getattr(model, "layers", fanouts))
    if layers != len(fanouts):
        raise UserInputError(f"{type(model).__name__} has {layers} layers but fanouts has {len(fanouts)} entries; "
                             f"give one fanout per layer, e.g. fanouts={tuple([10] * layers)}")


def check_sampler(cfg, student: nn.Module) -> str:
    """The sampler this student can train with, or a one-line error naming the one it needs."""
    from ..models import takes_blocks

    kind = cfg.sampler or "neighbor"
    name = type(student).__name__
    if kind == "neighbor" and _takes_rows(student):
        raise UserInputError(f"{name} reads one feature row per node; train it with sampler='node' "
                             f"(--sampler node) instead of neighbour-sampled blocks (drop fanouts)")
    if kind == "neighbor" and not takes_blocks(student):
        raise UserInputError(f"{name} cannot take DGL blocks; train it on subgraphs with sampler='cluster' "
                             f"(--sampler cluster) instead of fanouts")
    if kind == "node" and not _takes_rows(student):
        raise UserInputError(f"{name} needs the graph; sampler='node' is for students that read one feature row "
                             f"per node (SGC, MLP); use fanouts=(10, 10) or sampler='cluster'")
    return kind


def check_student(cfg, student: nn.Module) -> None:
    """The student can train with ``cfg``'s sampler (and has one layer per fanout)."""
    if check_sampler(cfg, student) == "neighbor":
        check_fanouts(student, cfg.fanouts)


class MiniBatchRun:
    """Mini-batch training of ``student`` on ``data`` (see the module docstring)."""

    def __init__(self, cfg, student: nn.Module, data):
        from ..entropy import neighbourhood_entropy

        self.cfg, self.student, self.data = cfg, student, data
        self.kind = check_sampler(cfg, student)
        self.entropy = neighbourhood_entropy(data.graph, data.teacher).to(data.feat.dtype) if cfg.learns else None
        self.kd_mask = ~data.meta_mask if cfg.learns and cfg.kd_holdout else None
        self.module = student
        self.step_count, self.learned_last = 0, False
        self.label_batches = self.label_stream()
        if self.kind == "neighbor":
            self._setup_blocks()
        elif self.kind == "node":
            precompute = getattr(student, "precompute", None)
            self.table = precompute(data.graph, data.feat) if precompute is not None else data.feat
            self.module = RowClassifier(student)
        else:
            self._setup_clusters()

    def _setup_blocks(self) -> None:
        from ..models import sampling_graph

        fanouts = list(self.cfg.fanouts)
        check_fanouts(self.student, fanouts)
        self.graph = sampling_graph(self.student, self.data.graph)
        self.sampler = neighbor_sampler(fanouts)

    def _setup_clusters(self) -> None:
        from .._compat import dgl

        self.cache = tempfile.TemporaryDirectory(prefix="dgl_ltd_cluster_")
        parts = min(self.cfg.cluster_parts, self.data.num_nodes)
        self.cluster = dgl.dataloading.ClusterGCNSampler(self.data.graph, parts,
                                                         cache_path=f"{self.cache.name}/partition.pkl")
        self.parts = parts

    # -- batches ---------------------------------------------------------------------------------

    def label_pool(self) -> torch.Tensor:
        """The labelled nodes (V_L^D) this process draws its label batches from."""
        return self.data.distill_mask.nonzero().squeeze(-1)

    def label_share(self, size: int) -> int:
        """How many of a label batch of ``size`` this process scores."""
        return size

    def label_stream(self) -> LabelBatches:
        cfg = self.cfg
        size = cfg.batch_size if cfg.label_batch_size is None else cfg.label_batch_size
        return LabelBatches(self.label_pool(), self.label_share(size) if cfg.lam != 0 else 0)

    def _with_labels(self, nodes: torch.Tensor, subgraph=None) -> tuple:
        """(seeds, rows, subgraph of the rows or None, label mask or None): ``nodes`` and this step's label batch."""
        rows, label_mask = with_label_batch(nodes, self.label_batches.next())
        if subgraph is not None and rows.numel() > nodes.numel():
            from .._compat import dgl

            subgraph = dgl.node_subgraph(self.data.graph, rows)
        return nodes, rows, subgraph, label_mask

    def _seed_chunks(self) -> list:
        """This epoch's (seed nodes, their subgraph or None) in batches: a permutation of all nodes (of
        the ClusterGCN parts), at most batches_per_epoch of them."""
        cfg = self.cfg
        if self.kind == "cluster":
            from .._compat import dgl

            order = torch.randperm(self.parts)
            per_batch = max(1, cfg.batch_size * self.parts // max(self.data.num_nodes, 1))
            groups = order.split(per_batch)[:cfg.batches_per_epoch]
            with one_sampling_thread():
                subgraphs = [self.cluster.sample(self.data.graph, ids) for ids in groups]
            return [(sub.ndata[dgl.NID], sub) for sub in subgraphs]
        chunks = list(torch.randperm(self.data.num_nodes).split(cfg.batch_size))[:cfg.batches_per_epoch]
        return [(nodes, None) for nodes in chunks]

    @staticmethod
    def sampling_seed() -> int:
        """A seed for one batch's neighbour sampling, drawn from the run's (torch's) random stream."""
        return int(torch.randint(0, 2 ** 31 - 1, (1,)))

    def _inputs(self, nodes: torch.Tensor, sampled: tuple | None = None) -> tuple:
        """The student's inputs whose output rows are ``nodes`` (in that order); ``sampled`` holds the
        ``(input nodes, blocks)`` already sampled for them (else they are sampled here, seeded)."""
        data = self.data
        if self.kind == "neighbor":
            input_nodes, blocks = sampled or sample_seeded(self.sampler, self.graph, nodes, self.sampling_seed())
            return blocks, data.feat[input_nodes]
        if self.kind == "node":
            return (self.table[nodes],)
        from .._compat import dgl

        return dgl.node_subgraph(data.graph, nodes), data.feat[nodes]

    def batch(self, nodes: torch.Tensor, subgraph=None, sampled: tuple | None = None, seeds: int | None = None,
              label_mask: torch.Tensor | None = None) -> Batch:
        """The :class:`Batch` whose rows are ``nodes`` (on ``subgraph``, the ClusterGCN part they came
        from; from ``sampled`` blocks, see :meth:`_inputs`): the first ``seeds`` of them (all when None)
        the batch's seeds, the rest its label batch; ``label_mask`` marks the rows the label loss
        scores (default: those in V_L^D)."""
        data = self.data
        rows = lambda t: None if t is None else t[nodes]  # noqa: E731
        inputs = (subgraph, data.feat[nodes]) if subgraph is not None else self._inputs(nodes, sampled)
        label_mask = data.distill_mask[nodes] if label_mask is None else label_mask
        return seed_part(Batch(inputs, data.teacher[nodes], data.labels[nodes], label_mask, rows(self.entropy),
                               rows(self.kd_mask)), seeds)

    def _batches(self):
        """This epoch's (seed nodes, Batch) pairs. Neighbour blocks are sampled from a seed per batch,
        all drawn at the start of the epoch, in ``num_workers`` worker processes or, with none, here."""
        chunks = [self._with_labels(nodes, subgraph) for nodes, subgraph in self._seed_chunks()]
        if self.kind != "neighbor":
            for nodes, rows, subgraph, label_mask in chunks:
                yield nodes, self.batch(rows, subgraph, seeds=nodes.numel(), label_mask=label_mask)
            return
        jobs = [(rows, self.sampling_seed()) for _, rows, _, _ in chunks]
        for (nodes, rows, _, label_mask), sampled in zip(chunks, sample_in_order(self.sampler, self.graph, jobs,
                                                                                  self.cfg.num_workers)):
            yield nodes, self.batch(rows, sampled=sampled, seeds=nodes.numel(), label_mask=label_mask)

    def meta_batch(self, nodes: torch.Tensor) -> MetaBatch:
        """The judging nodes' inputs: their own sampled blocks (their subgraph with the batch's, for clusters)."""
        data = self.data
        judges = data.meta_mask.nonzero().squeeze(-1)
        if self.kind != "cluster":
            return MetaBatch(self._inputs(judges), data.labels[judges])
        union = torch.cat([nodes, judges]).unique()
        return MetaBatch(self._inputs(union), data.labels[union], data.meta_mask[union])

    # -- the loop --------------------------------------------------------------------------------

    def train(self, core, schedule, callbacks: list, history: list) -> int:
        epoch = 0
        for epoch in range(self.cfg.max_epochs):
            record = self._epoch(core, schedule, epoch)
            history.append(record)
            if notify(callbacks, epoch, record):
                break
        return epoch + 1

    def _epoch(self, core, schedule, epoch: int) -> dict:
        losses, taus, norms = [], [], []
        for nodes, batch in self._batches():
            learn = schedule.learn(self.step_count)
            meta = self.meta_batch(nodes) if learn else None
            out = core.step(batch, learn, schedule.refresh(self.step_count, self.learned_last), meta)
            self.learned_last, self.step_count = learn, self.step_count + 1
            losses.append(out.loss)
            taus.append(batch.of_seeds(out.tau))
            if out.meta_grad_norm is not None:
                norms.append(out.meta_grad_norm)
        tau = torch.cat(taus)
        val = self.data.val_mask.nonzero().squeeze(-1)
        logits = self.logits_of(val)
        labels = self.data.labels[val]
        every = torch.ones_like(labels, dtype=torch.bool)
        return {"epoch": epoch, "loss": sum(losses) / len(losses), "val_acc": accuracy(logits, labels, every),
                "val_loss": float(eval_loss(logits, labels, every)), "tau_mean": float(tau.mean()),
                "tau_std": float(tau.std()) if tau.numel() > 1 else 0.0,
                "meta_grad_norm": sum(norms) / len(norms) if norms else None, "batches": len(losses)}

    @torch.no_grad()
    def logits_of(self, nodes: torch.Tensor) -> torch.Tensor:
        """Eval-mode logits of ``nodes``: through sampled blocks (so that memory stays bounded by the
        batch), of rows, or of the whole graph (clusters)."""
        module = self.module
        module.eval()
        try:
            if self.kind == "cluster":
                return module(self.data.graph, self.data.feat)[nodes]
            return torch.cat([module(*self._inputs(chunk)) for chunk in nodes.split(self.cfg.batch_size)])
        finally:
            module.train()

    def all_logits(self, student) -> torch.Tensor:
        """Every node's eval-mode logits: layer-wise ``inference`` over full neighbourhoods where the
        model offers it, else through sampled blocks."""
        inference = getattr(student, "inference", None)
        if inference is not None:
            return inference(self.data.graph, self.data.feat, batch_size=max(self.cfg.batch_size, 4096))
        return self.logits_of(torch.arange(self.data.num_nodes))

    def keep(self, core):
        """What early stopping keeps of the best epoch besides the weights: the temperature network."""
        return copy.deepcopy(core.temp_net.state_dict()) if core.temp_net is not None else None

    @torch.no_grad()
    def all_temperatures(self, kept, core, logits: torch.Tensor) -> torch.Tensor:
        """Every node's temperature: the best epoch's network on the final logits (fixed for KD, FT)."""
        if core.temp_net is None:
            return torch.full((logits.shape[0],), core.temperature, dtype=logits.dtype)
        if kept is not None:
            core.temp_net.load_state_dict(kept)
        core.temp_net.eval()
        return core.temp_net(logits, self.entropy_of_final_rows())

    def entropy_of_final_rows(self) -> torch.Tensor:
        """The neighbourhood entropy of the rows :meth:`all_logits` returns (every node's, here)."""
        return self.entropy
