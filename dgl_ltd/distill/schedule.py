"""When the temperature network learns, and when it is evaluated, step by step.

A step is an epoch of full-graph training or a batch of mini-batch training:

* :class:`FixedTemperatures` (KD, FT): never;
* :class:`EveryStep` (LTD): a learning step at every step after the warm-up, the network
  evaluated at every step;
* :class:`EveryKSteps` (LTD-S): a learning step every ``every`` steps after the warm-up; with
  ``lazy=True`` (full-graph) the network is evaluated only at the first step and at the step after
  each update, and the temperatures are held in between; mini-batches see new nodes at every step,
  so there (``lazy=False``) the frozen network is evaluated, without gradients, at every step.
"""
from __future__ import annotations


class FixedTemperatures:
    """KD and FT: the temperatures never change."""

    learns = False

    def learn(self, step: int) -> bool:
        return False

    def refresh(self, step: int, learned_last: bool) -> bool:
        return False


class EveryStep:
    """LTD: learn at every step from ``warmup`` on."""

    learns = True

    def __init__(self, warmup: int):
        self.warmup = warmup

    def learn(self, step: int) -> bool:
        return step >= self.warmup

    def refresh(self, step: int, learned_last: bool) -> bool:
        return True


class EveryKSteps(EveryStep):
    """LTD-S: learn at steps ``warmup, warmup + every, ...``."""

    def __init__(self, warmup: int, every: int, lazy: bool = True):
        super().__init__(warmup)
        self.every, self.lazy = every, lazy

    def learn(self, step: int) -> bool:
        return step >= self.warmup and (step - self.warmup) % self.every == 0

    def refresh(self, step: int, learned_last: bool) -> bool:
        return not self.lazy or step == 0 or learned_last


def schedule_for(cfg, lazy: bool = True):
    """The schedule of ``cfg.method`` (``lazy``: hold LTD-S's temperatures between updates)."""
    if cfg.method == "ltd":
        return EveryStep(cfg.warmup)
    if cfg.method == "ltd-s":
        return EveryKSteps(cfg.warmup, cfg.meta_every, lazy)
    return FixedTemperatures()
