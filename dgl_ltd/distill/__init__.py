"""Distil a pretrained GNN into a student: LTD (learned node temperatures), LTD-S, FT and KD.

All four methods share the student optimiser, the early stopping (validation accuracy, patience
50, at most 600 epochs, best student restored) and the distillation loss
``KD(softmax(t / tau), student) + lam * CE(V_L^D)``; they differ in tau:

* ``kd``: tau = 1 for every node;
* ``ft``: one global temperature (by default the one of a small grid that validates best);
* ``ltd``: tau_v from a :class:`~dgl_ltd.temperature.TemperatureNet`, learned at every step (after
  a warm-up) to lower the judging nodes' loss of the student after its distillation step (the
  meta-gradient of :mod:`dgl_ltd.metagrad`);
* ``ltd-s``: the scalable variant: the same meta-gradient, but only every ``meta_every`` steps.

Layout: :mod:`~.config` (settings), :mod:`~.inputs` (checks), :mod:`~.start` (LTD's start),
:mod:`~.core` (one step, DGL-free), :mod:`~.schedule` (when temperatures learn),
:mod:`~.callbacks` (early stopping, progress, divergence), :mod:`~.full_graph` and
:mod:`~.minibatch` (the loops), :mod:`~.distiller` (:class:`Distiller`, which ties them).
"""
from .config import METHODS, DistillConfig
from .core import Batch, MetaBatch, StepCore
from .distiller import Distiller, FullGraphRun
from .result import DistillResult
from .start import calibrated_temperature

__all__ = ["METHODS", "Batch", "DistillConfig", "DistillResult", "Distiller", "FullGraphRun", "MetaBatch", "StepCore",
           "calibrated_temperature"]
