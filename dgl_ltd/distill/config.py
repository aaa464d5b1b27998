"""The settings of a distillation run (:class:`DistillConfig`) and their checks."""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

from ..errors import UserInputError
from ..losses import check_reduction
from ..settings import TUNED_BETA

METHODS = ("ltd", "ltd-s", "ft", "kd")
OPTIMIZERS = ("adam", "sgd")
JUDGING_MASKS = ("auto", "temp", "val")
SAMPLERS = ("neighbor", "cluster", "node")
FT_GRID = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass
class DistillConfig:
    """Settings of a :class:`~dgl_ltd.distill.Distiller` (every field can be passed to it as a keyword).

    Student and temperatures
        ``alpha`` is the student's learning rate, ``beta`` the temperature network's (default
        :data:`~dgl_ltd.settings.TUNED_BETA`), both per optimiser step: mini-batch training takes a
        step per batch, so rates tuned full-graph (a step per epoch) want dividing, ``beta`` by
        about the batches of an epoch (README, mini-batch); ``optimizer`` applies to both (``'sgd'`` with
        ``reduction='sum'`` is the paper's setting, see :func:`~dgl_ltd.settings.paper_config`).
        ``lam`` weighs the label loss on the distillation nodes. ``temperature`` is FT's global
        temperature: a positive number, or ``'auto'`` (FT's default) to pick the one of ``ft_grid``
        whose student scores best on the validation nodes (ties to the lower validation loss).
    Which labelled nodes do what
        ``meta_on`` picks the nodes whose label loss the learning step lowers and ``calibrate_on``
        those on which ``init_tau='calibrated'`` fits the start temperature: ``'temp'`` (V_L^E, the
        paper's choice), ``'val'`` (the validation nodes), or ``'auto'`` (V_L^E when the run has a
        ``temp_mask``, else the validation nodes). ``kd_holdout=True`` leaves the judging nodes out
        of the KD term. ``meta_center=True`` keeps only the node-specific part of each meta-gradient
        (an experiment, see ``benchmarks/results/reports/ltd_variants.md``).
    Mini-batches
        ``fanouts`` (one neighbour count per layer, e.g. ``(10, 10)``) trains on neighbour-sampled
        blocks (``student(blocks, x)``); ``sampler='cluster'`` trains on ClusterGCN subgraphs
        (``student(subgraph, x)``, for models that take no blocks, ``cluster_parts`` parts);
        ``sampler='node'`` on plain node batches of a feature table (SGC's propagated features,
        or ``student(x)`` for a module with ``takes_graph = False``).
        ``batch_size`` seed nodes per batch, at most ``batches_per_epoch`` batches per epoch (all
        nodes when None). Without ``fanouts`` and ``sampler`` the run is full-graph.
        The label loss of every step runs over a label batch of its own: ``label_batch_size``
        nodes of V_L^D (default: ``batch_size``; all of V_L^D when it holds fewer), taken in turn
        from a permutation of them and appended to the batch's seeds, so that each step's loss
        estimates the full-graph loss without the few labelled nodes a random batch happens to
        hold deciding it; ``label_batch_size=0`` scores only the labelled nodes among the seeds.
        ``num_workers`` > 0 samples the neighbour-sampled blocks of the training batches in that
        many worker processes, ahead of the step that uses them. Every batch is sampled from a
        seed of its own, drawn from the run's random stream, so the run is the same for any
        ``num_workers``.
    Several processes
        ``procs`` > 1 trains data-parallel in that many processes on this machine (mini-batch
        training with ``fanouts`` or ``sampler='node'``; ``batch_size`` stays the global batch, see
        :mod:`dgl_ltd.distill.launch`).
    """

    method: str = "ltd"
    lam: float = 1.0
    temperature: float | str | None = None
    ft_grid: tuple = FT_GRID
    k: float | None = None
    init_tau: float | str | None = "calibrated"
    min_abs_tau: float | None = None
    alpha: float = 0.01
    beta: float = TUNED_BETA
    optimizer: str = "adam"
    weight_decay: float = 5e-4
    temp_weight_decay: float = 0.0
    reduction: str = "mean"
    warmup: int = 20
    max_epochs: int = 600
    patience: int = 50
    temp_hidden: int = 64
    temp_dropout: float = 0.0
    fd_eps: float = 1e-3
    meta_every: int = 8
    meta_center: bool = False
    calibrate_on: str = "auto"
    kd_holdout: bool = False
    meta_on: str = "auto"
    fanouts: tuple | None = None
    sampler: str | None = None
    batch_size: int = 1024
    batches_per_epoch: int | None = None
    label_batch_size: int | None = None
    cluster_parts: int = 32
    show_progress: bool = True
    procs: int = 1
    num_workers: int = 0

    @property
    def learns(self) -> bool:
        """Whether the method learns temperatures (LTD, LTD-S)."""
        return self.method in ("ltd", "ltd-s")

    @property
    def minibatch(self) -> bool:
        """Whether the run trains on sampled mini-batches."""
        return self.fanouts is not None or self.sampler is not None

    def ft_temperature(self):
        """FT's temperature as given: a number, or ``'auto'`` (also when left unset)."""
        return "auto" if self.temperature is None else self.temperature

    def validate(self) -> "DistillConfig":
        """Check every field; a bad one raises a one-line :class:`UserInputError` naming the fix."""
        self._check_types()
        if self.method not in METHODS:
            raise UserInputError(f"unknown method {self.method!r}; choose one of: {', '.join(METHODS)}")
        if self.optimizer not in OPTIMIZERS:
            raise UserInputError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        check_reduction(self.reduction)
        self._check_temperatures()
        self._check_ranges()
        self._check_minibatch()
        self._check_procs()
        return self

    def _check_types(self) -> None:
        numeric = ["lam", "alpha", "beta", "weight_decay", "temp_weight_decay", "temp_dropout", "fd_eps"]
        numeric += [name for name in ("k", "min_abs_tau", "init_tau", "temperature")  # may be None or a word
                    if not isinstance(getattr(self, name), (str, type(None)))]
        for name in numeric:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
                raise UserInputError(f"{name} must be a finite number, got {value!r}")
        integers = ("max_epochs", "patience", "meta_every", "warmup", "temp_hidden", "batch_size", "cluster_parts",
                    "procs", "num_workers")
        optional = tuple(name for name in ("batches_per_epoch", "label_batch_size") if getattr(self, name) is not None)
        for name in integers + optional:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise UserInputError(f"{name} must be an integer, got {value!r}")

    def _check_temperatures(self) -> None:
        if isinstance(self.temperature, str) and self.temperature != "auto":
            raise UserInputError(f"temperature must be a positive number or 'auto', got {self.temperature!r}")
        if isinstance(self.temperature, Real) and not self.temperature > 0:
            raise UserInputError(f"temperature must be > 0 (a negative one reverses the teacher's ranking), got "
                                 f"{self.temperature!r}; use e.g. temperature=1 or 'auto'")
        grid = tuple(self.ft_grid)
        if not grid or any(isinstance(t, bool) or not isinstance(t, Real) or not (math.isfinite(t) and t > 0)
                           for t in grid):
            raise UserInputError(f"ft_grid must hold positive temperatures, got {self.ft_grid!r}")
        if self.k is None and not (self.init_tau == "calibrated" or isinstance(self.init_tau, Real)):
            raise UserInputError("k=None (range relative to the start temperature) needs a numeric or 'calibrated' init_tau")
        if self.k is None and isinstance(self.init_tau, Real) and not self.init_tau > 0:
            raise UserInputError(f"k=None needs a positive init_tau, got {self.init_tau!r}")
        if isinstance(self.init_tau, str) and self.init_tau != "calibrated":
            raise UserInputError(f"init_tau must be a number, None or 'calibrated', got {self.init_tau!r}")
        if (self.learns and self.k is not None and isinstance(self.init_tau, Real)
                and not -0.2 * self.k < self.init_tau < 0.8 * self.k):
            raise UserInputError(f"init_tau must lie in (-0.2k, 0.8k) = ({-0.2 * self.k:g}, {0.8 * self.k:g}), got "
                                 f"{self.init_tau!r}; raise k or lower init_tau")

    def _check_ranges(self) -> None:
        for name in ("alpha", "beta", "fd_eps") + (("k",) if self.k is not None else ()):
            if not getattr(self, name) > 0:
                raise UserInputError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.lam < 0:
            raise UserInputError(f"lam must be >= 0, got {self.lam!r}")
        for name in ("weight_decay", "temp_weight_decay"):
            if getattr(self, name) < 0:
                raise UserInputError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 <= self.temp_dropout < 1:
            raise UserInputError(f"temp_dropout must be in [0, 1), got {self.temp_dropout!r}")
        if self.temp_hidden < 1:
            raise UserInputError(f"temp_hidden must be >= 1, got {self.temp_hidden!r}")
        if self.min_abs_tau is not None and not self.min_abs_tau > 0:
            raise UserInputError(f"min_abs_tau must be > 0, got {self.min_abs_tau!r}")
        for name in ("max_epochs", "patience", "meta_every"):
            if getattr(self, name) < 1:
                raise UserInputError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.warmup < 0:
            raise UserInputError(f"warmup must be >= 0, got {self.warmup!r}")
        if self.kd_holdout and not self.learns:
            raise UserInputError(f"kd_holdout=True only applies to 'ltd' and 'ltd-s' (V_L^E is split off for "
                                 f"temperature learning), got method {self.method!r}; drop kd_holdout")
        for name in ("calibrate_on", "meta_on"):
            if getattr(self, name) not in JUDGING_MASKS:
                raise UserInputError(f"{name} must be one of {JUDGING_MASKS}, got {getattr(self, name)!r}")

    def _check_minibatch(self) -> None:
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise UserInputError(f"unknown sampler {self.sampler!r}; choose one of: {', '.join(SAMPLERS)}")
        if self.fanouts is not None:
            fanouts = tuple(self.fanouts)
            if not fanouts or any(isinstance(f, bool) or not isinstance(f, Integral) or not (f > 0 or f == -1)
                                  for f in fanouts):
                raise UserInputError(f"fanouts must be positive integers (or -1 for all neighbours), one per layer, "
                                     f"got {self.fanouts!r}; e.g. fanouts=(10, 10)")
            if self.sampler in ("cluster", "node"):
                raise UserInputError(f"fanouts apply to the neighbour sampler, not to sampler={self.sampler!r}; drop one")
        if self.sampler == "neighbor" and self.fanouts is None:
            raise UserInputError("the neighbour sampler needs fanouts, one per layer; e.g. fanouts=(10, 10)")
        if self.batch_size < 1:
            raise UserInputError(f"batch_size must be >= 1, got {self.batch_size!r}")
        if self.batches_per_epoch is not None and self.batches_per_epoch < 1:
            raise UserInputError(f"batches_per_epoch must be >= 1, got {self.batches_per_epoch!r}")
        if self.batches_per_epoch is not None and not self.minibatch:
            raise UserInputError("batches_per_epoch applies to mini-batch training; add fanouts (e.g. (10, 10)) or "
                                 "sampler='cluster', or drop it")
        if self.label_batch_size is not None and self.label_batch_size < 0:
            raise UserInputError(f"label_batch_size must be >= 0, got {self.label_batch_size!r}")
        if self.label_batch_size is not None and not self.minibatch:
            raise UserInputError("label_batch_size applies to mini-batch training (the full graph scores every "
                                 "labelled node each step); add fanouts (e.g. (10, 10)) or a sampler, or drop it")
        if self.cluster_parts < 1:
            raise UserInputError(f"cluster_parts must be >= 1, got {self.cluster_parts!r}")
        if self.num_workers < 0:
            raise UserInputError(f"num_workers must be >= 0, got {self.num_workers!r}")
        if self.num_workers > 0 and self.fanouts is None:
            raise UserInputError(f"num_workers={self.num_workers} samples neighbour blocks in worker processes; add "
                                 f"fanouts (e.g. (10, 10), --fanouts 10,10) or use num_workers=0")

    def _check_procs(self) -> None:
        if self.procs < 1:
            raise UserInputError(f"procs must be >= 1, got {self.procs!r}")
        if self.procs > 1 and not self.minibatch:
            raise UserInputError(f"procs={self.procs} splits mini-batches over processes; add fanouts (e.g. (10, 10), "
                                 f"--fanouts 10,10) or sampler='node', or use procs=1 for full-graph training")
        if self.procs > 1 and self.sampler == "cluster":
            raise UserInputError(f"procs={self.procs} supports fanouts and sampler='node', not sampler='cluster'; "
                                 f"use procs=1 for ClusterGCN batches")
