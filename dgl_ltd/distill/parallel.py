r"""Data-parallel pieces that know nothing of DGL: the collectives a run needs, and a step core whose
sums over nodes run over every rank's rows.

Every rank holds the same student and temperature network and steps them with the same summed
gradients, so that all ranks stay bit-identical. The student is not wrapped in
``DistributedDataParallel``: its gradient hooks do not see ``torch.autograd.grad`` (how g' is taken)
and it does not support double backward; summing by hand serves the distillation step and the
learning step alike. Each loss over nodes is the sum over the rank's rows divided by the count over
all ranks, so the all-reduced SUM of the ranks' gradients is the single-process gradient of the
union of their rows:

* the distillation loss: KD over the batch's rows, CE over its rows in V_L^D (global counts);
* g' = grad L_eval(theta'): the judging nodes V_L^E are split across ranks, their gradients summed;
* the meta-gradient of each row is local (its own JVP), the temperature network's gradients summed.

The finite-difference step ``eps = rel_eps * ||theta|| / ||D g'||`` then agrees on every rank, as does
the decision to skip a step whose direction is zero, because theta and g' agree.
"""
from __future__ import annotations

import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..losses import kd_node_weight
from ..metagrad import temperature_meta_gradient
from ..ops import tempered_kd_loss
from .core import Batch, StepCore

RANK_SEED_STRIDE = 100_003  # rank r draws dropout and sampling from seed + r * RANK_SEED_STRIDE


class Comm:
    """This process's place in the default process group, and the collectives of a run.

    Parameters
    ----------
    rank, world : int
        This process's rank and the number of processes.
    device : torch.device
        Where collective buffers live: the CPU for gloo, this rank's GPU for NCCL.
    """

    def __init__(self, rank: int, world: int, device: torch.device | str = "cpu"):
        self.rank, self.world, self.device = rank, world, torch.device(device)
        self.seconds = 0.0  # wall time spent in collectives (including waiting for the slowest rank)

    def _reduce(self, tensor: torch.Tensor) -> None:
        start = time.perf_counter()
        dist.all_reduce(tensor)
        self.seconds += time.perf_counter() - start

    def share(self, items: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of ``items`` (sizes differ by at most one between ranks)."""
        return items.tensor_split(self.world)[self.rank]

    def sum(self, values: list) -> list:
        """Element-wise sums over all ranks of a list of numbers (float64)."""
        if not values:
            return []
        buffer = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        self._reduce(buffer)
        return buffer.tolist()

    def sum_gradients(self, grads: list, params: list) -> list:
        """Sums over all ranks of ``grads`` (one per parameter, None where unused), in one collective.

        A gradient stays None only where it is None on every rank, as in a single process.
        """
        parts = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
        present = torch.tensor([g is not None for g in grads], dtype=parts[0].dtype, device=parts[0].device)
        flat = torch.cat([t.reshape(-1) for t in parts] + [present])
        self._reduce(flat)
        out, start = [], 0
        for p in params:
            out.append(flat[start:start + p.numel()].view_as(p))
            start += p.numel()
        return [g if bool(flat[start + i] > 0) else None for i, g in enumerate(out)]

    def broadcast_module(self, module: nn.Module, buffers_only: bool = False) -> None:
        """Copy rank 0's parameters (unless ``buffers_only``) and buffers into every rank's ``module``."""
        tensors = [] if buffers_only else [p.data for p in module.parameters()]
        tensors += [b for b in module.buffers() if b.is_floating_point() or b.dtype == torch.long]
        for tensor in tensors:
            dist.broadcast(tensor, 0)


class ParallelStepCore(StepCore):
    """:class:`~dgl_ltd.distill.core.StepCore` over this rank's rows, summed over all ranks (module docstring).

    Parameters
    ----------
    student, cfg, temperature, temp_net, temp_opt
        As for :class:`~dgl_ltd.distill.core.StepCore`, identical on every rank.
    comm : Comm
        The process group's collectives.
    """

    def __init__(self, student: nn.Module, cfg, temperature: float = 1.0, temp_net: nn.Module | None = None,
                 temp_opt: torch.optim.Optimizer | None = None, comm: Comm | None = None):
        super().__init__(student, cfg, temperature, temp_net, temp_opt)
        self.comm = comm
        self.kd_rows = None  # the KD rows of the current global batch, over all ranks

    @property
    def _mean(self) -> bool:
        return self.cfg.reduction == "mean"

    def distillation_loss(self, logits: torch.Tensor, batch: Batch, tau: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        kd_rows = batch.rows if batch.kd_mask is None else int(batch.kd_mask.sum())
        labelled = int(batch.label_mask.sum())
        self.kd_rows, all_labelled = self.comm.sum([kd_rows, labelled])
        loss = tempered_kd_loss(batch.teacher, tau, logits, weight=batch.kd_mask, reduction="sum")
        if self._mean:
            loss = loss / max(self.kd_rows, 1.0)
        if cfg.lam != 0 and labelled:
            mask = batch.label_mask
            ce = F.cross_entropy(logits[mask], batch.labels[mask], reduction="sum")
            loss = loss + cfg.lam * (ce / all_labelled if self._mean else ce)
        return loss

    def kd_weight(self, batch: Batch):
        weight = kd_node_weight(batch.rows, "sum", batch.kd_mask)
        return weight / max(self.kd_rows, 1.0) if self._mean else weight

    def judging_loss(self, logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        (judges,) = self.comm.sum([int(mask.sum())])
        loss = F.cross_entropy(logits[mask], labels[mask], reduction="sum")
        return loss / max(judges, 1.0) if self._mean else loss

    def judging_gradient(self, loss_eval: torch.Tensor) -> list:
        return self.comm.sum_gradients(super().judging_gradient(loss_eval), self.params)

    def meta_gradient(self, jvp: torch.Tensor | None, sensitivity: torch.Tensor) -> torch.Tensor:
        meta = temperature_meta_gradient(jvp, sensitivity, center=False)
        if self.cfg.meta_center:  # the mean over every rank's rows
            total, rows = self.comm.sum([float(meta.sum()), meta.shape[0]])
            meta = meta - total / max(rows, 1.0)
        return meta

    def reduce_gradients(self, params: list) -> None:
        summed = self.comm.sum_gradients([p.grad for p in params], params)
        for p, grad in zip(params, summed):
            p.grad = grad
