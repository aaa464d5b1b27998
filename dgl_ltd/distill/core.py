r"""The per-step core: one distillation step, and the temperature learning step when asked.

It knows nothing of DGL: a :class:`Batch` is the student's inputs (a tuple, e.g. ``(graph, feat)``,
``(blocks, x)`` or ``(edge_index, x)``) with the rows of teacher logits, labels, masks and entropy of
the nodes whose logits the student returns; a :class:`MetaBatch` holds the inputs and labels of the
nodes that judge the temperatures. Full-graph, mini-batch and PyG loops all call
:meth:`StepCore.step`.

The learning step moves the temperature network to lower the judging nodes' loss of the updated
student theta' (:mod:`dgl_ltd.metagrad`): ``g' = grad L_eval(theta')`` by one backward pass,
scaled by the optimiser's step Jacobian, pushed through the batch's forward by a central difference
that replays its dropout masks, and contracted with the KD gradient's sensitivity to tau.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from ..dropout_tape import DropoutTape
from ..losses import distill_loss, eval_loss, kd_grad_tau_sensitivity, kd_node_weight
from ..metagrad import capture_rng, directional_logits, step_jacobian, temperature_meta_gradient


@dataclass
class Batch:
    """One distillation step's inputs and the rows (output nodes) they produce, B of them."""

    inputs: tuple
    teacher: torch.Tensor  # (B, C)
    labels: torch.Tensor  # (B,)
    label_mask: torch.Tensor  # (B,) bool: rows in V_L^D, whose label loss counts
    entropy: torch.Tensor | None = None  # (B,), LTD only
    kd_mask: torch.Tensor | None = None  # (B,) bool: rows whose KD term counts (None: all)
    seed_rows: int | None = None  # the leading rows that are the batch's seeds; the rest, its label batch (None: all)

    @property
    def rows(self) -> int:
        return int(self.teacher.shape[0])

    def of_seeds(self, per_row: torch.Tensor) -> torch.Tensor:
        """The seeds' part of a per-row tensor (the label batch's rows left out)."""
        return per_row if self.seed_rows is None else per_row[:self.seed_rows]


@dataclass
class MetaBatch:
    """The judging nodes: ``student(*inputs)`` rows, their labels, and which rows count (None: all)."""

    inputs: tuple
    labels: torch.Tensor
    mask: torch.Tensor | None = None


@dataclass
class StepOutput:
    """What a step reports: the distillation loss, the (B,) temperatures used, the learning step's figures."""

    loss: float
    tau: torch.Tensor
    meta_grad_norm: float | None = None
    meta_logits: torch.Tensor | None = None  # eval-mode logits of the MetaBatch at theta' (learning steps)


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)


class StepCore:
    """The distillation and learning steps of one run (see the module docstring).

    Parameters
    ----------
    student : nn.Module
        Trained in place; called as ``student(*batch.inputs)``.
    cfg : DistillConfig
        ``optimizer``, ``alpha``, ``weight_decay``, ``lam``, ``reduction``, ``fd_eps``, ``meta_center``.
    temperature : float
        The fixed temperature of KD (1) and FT.
    temp_net, temp_opt : optional
        The temperature network and its optimiser (LTD, LTD-S).
    """

    def __init__(self, student: nn.Module, cfg, temperature: float = 1.0, temp_net: nn.Module | None = None,
                 temp_opt: torch.optim.Optimizer | None = None):
        self.student, self.cfg = student, cfg
        self.names = [name for name, p in student.named_parameters() if p.requires_grad]
        self.params = [p for p in student.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(cfg.optimizer, self.params, cfg.alpha, cfg.weight_decay)
        self.temperature = float(temperature)
        self.temp_net, self.temp_opt = temp_net, temp_opt
        self.held_tau = None  # the temperatures of the last evaluation of temp_net (held between LTD-S updates)
        self.last_tau = None  # the temperatures of the last step

    def temperatures(self, logits: torch.Tensor, batch: Batch, learn: bool, refresh: bool) -> torch.Tensor:
        """The (B,) temperatures of the step: learned (with gradient), re-evaluated, held, or fixed."""
        if self.temp_net is None:
            return torch.full((batch.rows,), self.temperature, dtype=logits.dtype, device=logits.device)
        if learn:
            self.held_tau = self.temp_net(logits, batch.entropy)
        elif refresh or self.held_tau is None or self.held_tau.shape[0] != batch.rows:
            with torch.no_grad():
                self.held_tau = self.temp_net(logits, batch.entropy)
        return self.held_tau

    def step(self, batch: Batch, learn: bool = False, refresh: bool = True, meta: MetaBatch | None = None) -> StepOutput:
        """One optimiser step of the student on ``batch``; then, if ``learn``, one of the temperature network."""
        cfg, student = self.cfg, self.student
        student.train()
        rng = capture_rng(batch.teacher.device)
        tape = DropoutTape() if learn else None
        with tape.recording() if learn else contextlib.nullcontext():
            logits = student(*batch.inputs)
        tau = self.temperatures(logits, batch, learn, refresh)
        loss = self.distillation_loss(logits, batch, tau.detach())
        self.optimizer.zero_grad()
        loss.backward()
        self.reduce_gradients(self.params)
        old = [p.detach().clone() for p in self.params] if learn else None
        self.optimizer.step()
        out = StepOutput(float(loss), tau.detach())
        self.last_tau = out.tau
        if learn:
            out.meta_logits, out.meta_grad_norm = self._learn(batch, meta, tau, old, rng, tape)
        return out

    def _learn(self, batch: Batch, meta: MetaBatch, tau: torch.Tensor, old: list, rng: tuple,
               tape: DropoutTape | None = None):
        """The learning step; returns the judging nodes' eval-mode logits at theta' and the meta-gradient's norm.

        ``tape`` holds the distillation forward's dropout masks (without one they are drawn again from ``rng``).
        """
        cfg, student = self.cfg, self.student
        directions = step_jacobian(self.optimizer, self.params, old)
        student.eval()
        after = student(*meta.inputs)
        mask = meta.mask if meta.mask is not None else torch.ones_like(meta.labels, dtype=torch.bool)
        loss_eval = self.judging_loss(after, meta.labels, mask)
        grads = self.judging_gradient(loss_eval)
        direction = [d * (g if g is not None else torch.zeros_like(d)) for d, g in zip(directions, grads)]
        student.train()
        jvp = directional_logits(student, self.names, old, direction, rng, *batch.inputs, rel_eps=cfg.fd_eps,
                                 tape=tape)
        sens = kd_grad_tau_sensitivity(batch.teacher, tau, self.kd_weight(batch))
        meta_grad = self.meta_gradient(jvp, sens)
        self.temp_opt.zero_grad()
        tau.backward(meta_grad.to(tau.dtype))
        self.reduce_gradients(list(self.temp_net.parameters()))
        self.temp_opt.step()
        return after.detach(), float(meta_grad.norm())

    # -- the reductions over nodes: one process sees every node; a data-parallel core
    #    (dgl_ltd.distill.parallel) overrides these to normalise by counts over all ranks and all-reduce

    def distillation_loss(self, logits: torch.Tensor, batch: Batch, tau: torch.Tensor) -> torch.Tensor:
        """The distillation loss of the batch's rows (``tau`` detached)."""
        cfg = self.cfg
        return distill_loss(logits, batch.teacher, tau, batch.labels, batch.label_mask, cfg.lam, cfg.reduction,
                            batch.kd_mask)

    def kd_weight(self, batch: Batch):
        """One row's weight in the KD term (see :func:`dgl_ltd.losses.kd_node_weight`)."""
        return kd_node_weight(batch.rows, self.cfg.reduction, batch.kd_mask)

    def judging_loss(self, logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The judging nodes' label loss at theta'."""
        return eval_loss(logits, labels, mask, self.cfg.reduction)

    def meta_gradient(self, jvp: torch.Tensor | None, sensitivity: torch.Tensor) -> torch.Tensor:
        """Per-row ``dL_eval(theta')/dtau`` (centred over the rows with ``meta_center``)."""
        return temperature_meta_gradient(jvp, sensitivity, center=self.cfg.meta_center)

    def reduce_gradients(self, params: list) -> None:
        """Called after each backward, before the optimiser's step; data-parallel runs sum ``p.grad`` here."""

    def judging_gradient(self, loss_eval: torch.Tensor) -> list:
        """``g' = grad L_eval(theta')`` per parameter (None where unused); data-parallel runs average it here."""
        return list(torch.autograd.grad(loss_eval, self.params, allow_unused=True))
