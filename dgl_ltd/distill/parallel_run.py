"""One rank of a data-parallel mini-batch run: its share of every global batch, global validation.

All ranks draw the same permutation of the nodes each epoch (a generator seeded with the run's
seed, so no ``set_epoch`` is needed) and cut it into the same global batches of ``batch_size``
seeds; rank r trains on its contiguous slice of each (what ``DataLoader(use_ddp=True)`` would give
for that batch). A global batch with fewer seeds than ranks (the last one, at most) is dropped.
The judging nodes and the validation nodes are split the same way; the epoch's figures (loss,
validation accuracy and loss, temperatures) are summed over the ranks, so early stopping, the
divergence guard and the restored best epoch agree everywhere; each epoch's record also holds
``comm_seconds``, rank 0's wall time in all-reduces (waiting for the other ranks included).
Dropout and neighbour sampling draw from a seed per rank (:data:`~.parallel.RANK_SEED_STRIDE`).
"""
from __future__ import annotations

import copy
import math
from dataclasses import fields, replace

import torch
import torch.nn.functional as F

from ..metrics import accuracy
from ..training import set_seed
from .distiller import Distiller
from .minibatch import MiniBatchRun
from .parallel import RANK_SEED_STRIDE, Comm, ParallelStepCore
from .result import DistillResult


class ShardedMiniBatchRun(MiniBatchRun):
    """:class:`~.minibatch.MiniBatchRun` on this rank's share of each global batch (module docstring)."""

    def __init__(self, cfg, student, data, comm: Comm, seed: int):
        self.comm = comm
        super().__init__(cfg, student, data)
        self.order = torch.Generator().manual_seed(seed)

    def _seed_chunks(self) -> list:
        cfg, world = self.cfg, self.comm.world
        chunks = [c for c in torch.randperm(self.node_count(), generator=self.order).split(cfg.batch_size)
                  if c.numel() >= world]
        chunks = chunks[:cfg.batches_per_epoch] if cfg.batches_per_epoch is not None else chunks
        return [(self.comm.share(chunk), None) for chunk in chunks]

    def node_count(self) -> int:
        """The number of nodes whose permutation makes the epoch's batches."""
        return self.data.num_nodes

    def label_pool(self) -> torch.Tensor:
        """This rank's share of the labelled nodes: its label batches are drawn from it."""
        return self.comm.share(super().label_pool())

    def label_share(self, size: int) -> int:
        return math.ceil(size / self.comm.world)

    def judging_nodes(self) -> torch.Tensor:
        """This rank's share of the judging nodes (the ranks' shares are disjoint and cover them all)."""
        return self.comm.share(self.data.meta_mask.nonzero().squeeze(-1))

    def validation_nodes(self) -> torch.Tensor:
        """This rank's share of the validation nodes."""
        return self.comm.share(self.data.val_mask.nonzero().squeeze(-1))

    def labels_of(self, nodes: torch.Tensor) -> torch.Tensor:
        return self.data.labels[nodes]

    def meta_batch(self, nodes: torch.Tensor):
        from .core import MetaBatch

        judges = self.judging_nodes()
        return MetaBatch(self._inputs(judges), self.labels_of(judges))

    def _epoch(self, core, schedule, epoch: int) -> dict:
        loss, taus, norms, waited, batches = 0.0, [], [], self.comm.seconds, 0
        for nodes, batch in self._batches():
            batches += 1
            learn = schedule.learn(self.step_count)
            meta = self.meta_batch(nodes) if learn else None
            out = core.step(batch, learn, schedule.refresh(self.step_count, self.learned_last), meta)
            self.learned_last, self.step_count = learn, self.step_count + 1
            loss += out.loss
            taus.append(batch.of_seeds(out.tau).double())
            if out.meta_grad_norm is not None:
                norms.append(out.meta_grad_norm ** 2)
        self.comm.broadcast_module(self.module, buffers_only=True)  # e.g. BatchNorm statistics: rank 0's
        val = self.validation_nodes()
        logits, labels = self.logits_of(val), self.labels_of(val)
        every = torch.ones_like(labels, dtype=torch.bool)
        correct = round(accuracy(logits, labels, every) * len(val)) if len(val) else 0
        tau = torch.cat(taus)
        totals = self.comm.sum([loss, correct, len(val), float(F.cross_entropy(logits, labels, reduction="sum")),
                                float(tau.sum()), float(tau.square().sum()), tau.numel()])
        loss, correct, judged, val_loss, tau_sum, tau_sq, rows = totals
        norms = [math.sqrt(n) for n in self.comm.sum(norms)]  # each learning step's norm over all rows
        mean = tau_sum / rows
        return {"epoch": epoch, "loss": loss / batches, "val_acc": correct / judged, "val_loss": val_loss / judged,
                "tau_mean": mean, "tau_std": math.sqrt(max(tau_sq - rows * mean ** 2, 0.0) / max(rows - 1, 1)),
                "meta_grad_norm": sum(norms) / len(norms) if norms else None, "batches": batches,
                "comm_seconds": self.comm.seconds - waited}


class RankDistiller(Distiller):
    """The :class:`~.distiller.Distiller` of one rank: a sharded run and a core summed over the ranks.

    Parameters
    ----------
    student : nn.Module
        This rank's copy; rank 0's weights are broadcast to every rank before training.
    config : DistillConfig
        Already validated (progress shown on rank 0 only).
    comm : Comm
        The process group's collectives.
    seed : int
        The run's seed: the batches' order; dropout and sampling draw from a seed per rank.
    """

    def __init__(self, student, config, comm: Comm, seed: int):
        self.student, self.comm, self.seed = student, comm, seed
        self.config = replace(config, show_progress=config.show_progress and comm.rank == 0)

    def make_run(self, data):
        return ShardedMiniBatchRun(self.config, self.student, data, self.comm, self.seed)

    def make_core(self, run, temperature: float, temp_net, temp_opt):
        self.comm.broadcast_module(run.module)
        if temp_net is not None:
            self.comm.broadcast_module(temp_net)
        set_seed(self.seed + RANK_SEED_STRIDE * self.comm.rank)
        return ParallelStepCore(run.module, self.config, temperature, temp_net, temp_opt, self.comm)


def fit_rank(comm: Comm, student, config, data, seed: int, temperature: float) -> dict | None:
    """Train this rank (:func:`~.launch.run_ranks` calls it); rank 0 returns the packed result.

    The student arrives through shared memory (how torch.multiprocessing passes tensors), so every
    rank would step the same parameter storage: each trains a private copy.
    """
    student = copy.deepcopy(student)
    if comm.device.type == "cuda":
        student = student.to(comm.device)
        data = replace(data, **{f.name: getattr(data, f.name).to(comm.device) for f in fields(data)
                                if hasattr(getattr(data, f.name), "to")})
    result = RankDistiller(student, config, comm, seed).fit_here(data, seed, temperature)
    return pack_result(result) if comm.rank == 0 else None


def pack_result(result: DistillResult) -> dict:
    """A :class:`DistillResult` as plain data: the student's weights instead of the module, on the CPU."""
    packed = {f.name: getattr(result, f.name) for f in fields(result) if f.name != "student"}
    packed["state"] = {k: v.cpu() for k, v in result.student.state_dict().items()}
    packed.update(logits=result.logits.cpu(), temperatures=result.temperatures.cpu())
    return packed


def unpack_result(student, packed: dict) -> DistillResult:
    """The packed result with its weights loaded into ``student`` (in place)."""
    packed = dict(packed)
    student.load_state_dict(packed.pop("state"))
    return DistillResult(student, **packed)
