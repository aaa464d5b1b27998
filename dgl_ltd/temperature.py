"""The temperature network: node-specific temperatures from student logits and teacher entropy."""
from __future__ import annotations

import math

import torch
from torch import nn

from .errors import UserInputError


class TemperatureNet(nn.Module):
    r"""tau_v = k * (sigmoid(MLP([z_v, ||z_v||_2, H_v])) - 0.2), in (-0.2k, 0.8k).

    ``z_v`` are the student's logits (C values, detached), ``H_v`` the neighbourhood entropy of
    the teacher. The MLP has one hidden layer (``hidden`` units, ReLU, dropout). Negative
    temperatures are allowed (they reverse the teacher's ranking); a guard moves any
    ``|tau_v| < min_abs`` to ``sign(tau_v) * min_abs`` without flipping its sign (the gradient passes
    straight through the guard).

    The output layer starts at zero weights and a bias that makes every ``tau_v`` equal
    ``init_tau``, so training starts from a global temperature (the paper starts from a random
    network, which with k=2 can start nodes at negative temperatures and wreck a seed).

    Parameters
    ----------
    n_classes : int
        Number of classes C; the MLP takes C + 2 inputs.
    k : float
        Temperature range. Default 1.
    hidden : int
        Hidden units. Default 64.
    dropout : float
        Dropout on the hidden layer. Default 0.
    init_tau : float or None
        Initial temperature of every node, in (-0.2k, 0.8k); ``None`` keeps PyTorch's random
        initialisation (the paper's behaviour). Default 0.5.
    min_abs : float
        Smallest allowed ``|tau|``. Default 0.01.

    Shapes: ``logits`` (N, C), ``entropy`` (N,) -> tau (N,).

    Examples
    --------
    >>> import torch
    >>> from dgl_ltd.temperature import TemperatureNet
    >>> net = TemperatureNet(3, k=1.0, init_tau=0.5)
    >>> net(torch.randn(4, 3), torch.rand(4))
    tensor([0.5000, 0.5000, 0.5000, 0.5000], grad_fn=<AddBackward0>)
    """

    def __init__(self, n_classes: int, k: float = 1.0, hidden: int = 64, dropout: float = 0.0,
                 init_tau: float | None = 0.5, min_abs: float = 0.01):
        super().__init__()
        if not isinstance(n_classes, int) or n_classes < 1:
            raise UserInputError(f"n_classes must be a positive int, got {n_classes!r}")
        if not k > 0:
            raise UserInputError(f"k must be > 0, got {k!r}")
        if init_tau is not None and not -0.2 * k < init_tau < 0.8 * k:
            raise UserInputError(
                f"init_tau must lie in (-0.2k, 0.8k) = ({-0.2 * k:g}, {0.8 * k:g}), got {init_tau!r}; "
                "raise k or lower init_tau"
            )
        if not 0 < min_abs < 0.2 * k:
            raise UserInputError(f"min_abs must be in (0, 0.2k), got {min_abs!r}")
        self.k, self.init_tau, self.min_abs = float(k), init_tau, float(min_abs)
        self.hidden = nn.Linear(n_classes + 2, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.hidden.reset_parameters()
        self.out.reset_parameters()
        if self.init_tau is not None:
            nn.init.zeros_(self.out.weight)
            frac = self.init_tau / self.k + 0.2
            nn.init.constant_(self.out.bias, math.log(frac / (1.0 - frac)))

    def features(self, logits: torch.Tensor, entropy: torch.Tensor) -> torch.Tensor:
        logits = logits.detach()
        return torch.cat([logits, logits.norm(dim=-1, keepdim=True), entropy.detach().reshape(-1, 1).to(logits)], -1)

    def forward(self, logits: torch.Tensor, entropy: torch.Tensor) -> torch.Tensor:
        score = self.out(self.dropout(torch.relu(self.hidden(self.features(logits, entropy))))).squeeze(-1)
        tau = self.k * (torch.sigmoid(score) - 0.2)
        sign = torch.where(tau >= 0, torch.ones_like(tau), -torch.ones_like(tau))
        guarded = torch.where(tau.abs() < self.min_abs, sign * self.min_abs, tau)
        return tau + (guarded - tau).detach()
