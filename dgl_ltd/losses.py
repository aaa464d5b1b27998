"""The LTD losses: distillation loss (tempered KD + lambda * CE on V_L^D) and evaluation loss (CE on V_L^E).

Reductions: ``'mean'`` averages the KD term over all nodes and the CE terms over their masks;
``'sum'`` sums over nodes, as the paper's code does (its hyper-parameters, e.g. alpha around
1e-5, assume sums: a sum over N nodes is N times a mean, so the SGD steps are N times larger).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import UserInputError
from .ops import tempered_kd_loss

REDUCTIONS = ("mean", "sum")


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise UserInputError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def kd_node_weight(num_nodes: int, reduction: str, kd_mask: torch.Tensor | None = None) -> float | torch.Tensor:
    """The weight of one node's KD term in the reduced loss (an (N, 1) column when ``kd_mask`` is given)."""
    if kd_mask is None:
        return 1.0 / max(num_nodes, 1) if reduction == "mean" else 1.0
    column = kd_mask.to(torch.get_default_dtype()).unsqueeze(-1)
    return column / max(int(kd_mask.sum()), 1) if reduction == "mean" else column


def distill_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    tau: torch.Tensor,
    labels: torch.Tensor,
    distill_mask: torch.Tensor,
    lam: float,
    reduction: str = "mean",
    kd_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""KD cross-entropy between softmax(t/tau) and the student over all nodes, plus lambda * CE on V_L^D.

    Only the teacher's logits are divided by ``tau`` (N,); the student stays at temperature 1.
    ``kd_mask`` (bool, N) restricts the KD term to some nodes (its mean is then over those nodes).
    Without any node in ``distill_mask`` the label term is left out.
    """
    kd = tempered_kd_loss(teacher_logits, tau, student_logits, weight=kd_mask, reduction=reduction)
    if lam == 0 or not bool(distill_mask.any()):  # a mini-batch may hold no node of V_L^D
        return kd
    ce = F.cross_entropy(student_logits[distill_mask], labels[distill_mask], reduction=reduction)
    return kd + lam * ce


def eval_loss(student_logits: torch.Tensor, labels: torch.Tensor, temp_mask: torch.Tensor,
              reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy on V_L^E, the loss the temperatures are learned to lower."""
    return F.cross_entropy(student_logits[temp_mask], labels[temp_mask], reduction=reduction)


def kd_grad_tau_sensitivity(teacher_logits: torch.Tensor, tau: torch.Tensor,
                            weight: float | torch.Tensor) -> torch.Tensor:
    r"""d/dtau_v of dl_v/dz_v for the tempered KD loss: ``weight * p_v * (t_v - <p_v, t_v>) / tau_v^2``.

    ``p_v = softmax(t_v / tau_v)``; ``weight`` is a float or an (N, 1) column. Shape (N, C). This is
    all the meta-gradient needs from the loss: ``dl_v/dz_v = weight * (softmax(z_v) - p_v)``.
    """
    t = teacher_logits.detach()
    tau = tau.detach().unsqueeze(-1)
    p = torch.softmax(t / tau, dim=-1)
    centred = t - (p * t).sum(-1, keepdim=True)
    return weight * p * centred / tau.square()
