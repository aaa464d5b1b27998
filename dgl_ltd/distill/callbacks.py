"""What runs at the end of every epoch: divergence guard, early stopping, progress bar.

Each callback's ``on_epoch_end(epoch, record)`` returns True to stop training; ``record`` is the
epoch's history entry (``loss``, ``val_acc``, ``val_loss``, ...).
"""
from __future__ import annotations

import math

import torch

from ..training import EarlyStopping, tqdm


class TrainingDiverged(FloatingPointError):
    """The student's loss or weights blew up; the message names the setting to change."""


class DivergenceGuard:
    """Stop a run whose loss is not finite or grew, or whose weights grew, by orders of magnitude.

    ``growth`` is the factor over the first epoch's loss (and over the initial weight norm, at
    least 1) that counts as blowing up; healthy runs stay far below it.
    """

    def __init__(self, cfg, params: list, growth: float = 1e4):
        self.cfg, self.params, self.growth = cfg, params, growth
        self.first_loss = None
        self.first_norm = max(self._norm(), 1.0)

    def _norm(self) -> float:
        with torch.no_grad():
            return math.sqrt(sum(float(p.detach().double().square().sum()) for p in self.params))

    def _fix(self) -> str:
        cfg = self.cfg
        fix = f"lower the student learning rate alpha={cfg.alpha:g} (--alpha), e.g. to {cfg.alpha / 10:g}"
        if cfg.reduction == "sum":
            fix += ", or use reduction='mean' (--reduction mean)"
        return fix

    def on_epoch_end(self, epoch: int, record: dict) -> bool:
        loss = record["loss"]
        if not math.isfinite(loss):
            raise TrainingDiverged(f"the distillation loss became {loss} at epoch {epoch}; {self._fix()}")
        if self.first_loss is None:
            self.first_loss = loss
        elif loss > self.growth * max(self.first_loss, 1e-2):
            raise TrainingDiverged(f"the distillation loss grew from {self.first_loss:.4g} to {loss:.4g} by epoch "
                                   f"{epoch}; {self._fix()}")
        norm = self._norm()
        if not math.isfinite(norm) or norm > self.growth * self.first_norm:
            raise TrainingDiverged(f"the student's weights grew from norm {self.first_norm:.4g} to {norm:.4g} by "
                                   f"epoch {epoch}; {self._fix()}")
        return False


class EarlyStop:
    """Keep the best epoch's weights (validation accuracy, ties to the lower loss) and what ``keep()`` returns."""

    def __init__(self, patience: int, module, keep=None):
        self.stopper = EarlyStopping(patience)
        self.module, self.keep = module, keep

    def on_epoch_end(self, epoch: int, record: dict) -> bool:
        extra = self.keep() if self.keep is not None else None
        return self.stopper.step(epoch, record["val_acc"], record["val_loss"], self.module, extra=extra)


class ProgressBar:
    """A tqdm bar over the epochs (nothing when ``enable`` is False or tqdm is missing)."""

    def __init__(self, total: int, enable: bool, desc: str):
        self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True) if enable and tqdm else None

    def on_epoch_end(self, epoch: int, record: dict) -> bool:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(val_acc=f"{record['val_acc']:.3f}", refresh=False)
        return False

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def notify(callbacks: list, epoch: int, record: dict) -> bool:
    """Call every callback (all of them, in order); True when any asks to stop."""
    stop = False
    for callback in callbacks:
        stop = callback.on_epoch_end(epoch, record) or stop
    return stop
