"""What a distillation run returns (:class:`DistillResult`)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class DistillResult:
    """The outcome of :meth:`~dgl_ltd.distill.Distiller.fit`.

    ``student`` holds its best weights (best validation accuracy, ties to the lower validation
    loss, ``val_loss`` its validation loss); ``logits`` are its eval-mode logits of every node, ``temperatures`` (N,) those of the
    best epoch. ``history`` has one dict per epoch (``epoch``, ``loss``, ``val_acc``, ``val_loss``,
    ``tau_mean``, ``tau_std``, ``meta_grad_norm``: None in epochs without a learning step).
    ``config`` is the run's :class:`~dgl_ltd.distill.DistillConfig` as a dict, plus what it
    resolved (``resolved_init_tau``, ``resolved_k``, ``meta_on``/``calibrate_on`` for LTD; the
    chosen ``temperature`` and every ``ft_trials`` entry for FT with ``temperature='auto'``).
    """

    student: nn.Module
    logits: torch.Tensor
    temperatures: torch.Tensor
    val_acc: float
    test_acc: float
    best_epoch: int
    epochs: int
    seconds: float
    seconds_per_epoch: float
    config: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    val_loss: float = float("nan")

    def save_temperatures(self, path: str) -> None:
        """Write the learned temperatures, one per node, as text (to a temporary name, then renamed)."""
        import numpy as np

        from ..files import atomic_write

        values = self.temperatures.detach().cpu().numpy()
        atomic_write(path, lambda tmp: np.savetxt(tmp, values, fmt="%.6f"))

    def report(self, out_dir, **kwargs):
        """Write PNG plots, ``report.md`` and ``report.html`` of this run into ``out_dir``.

        Keywords go to :func:`dgl_ltd.report.write_report` (``graph``, ``teacher_logits``, ...: the
        plots against degree, entropy and the teacher's correctness need them). Needs matplotlib.
        """
        from ..report import write_report

        return write_report(self, out_dir, **kwargs)
