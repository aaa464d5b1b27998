"""Distill a pretrained GNN into a student: LTD (learned node temperatures), LTD-S, FT and KD.

All four methods share the student optimiser, the early stopping (validation accuracy, patience
50, at most 600 epochs, best student restored) and the distillation loss
``KD(softmax(t / tau), student) + lam * CE(V_L^D)``; they differ in tau:

* ``kd``: tau = 1 for every node;
* ``ft``: one global temperature;
* ``ltd``: tau_v from a :class:`~dgl_ltd.temperature.TemperatureNet`, learned every epoch (after
  a warm-up) to lower the V_L^E loss of the student after its distillation step (the
  meta-gradient of :mod:`dgl_ltd.metagrad`);
* ``ltd-s``: the scalable variant: the same meta-gradient, but only every ``meta_every`` epochs
  (default 8); the epoch after each update evaluates the updated network once, and until the next
  update the temperatures are held fixed (the network is not evaluated), so those epochs cost
  what a KD epoch costs.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from numbers import Integral, Real

import numpy as np
import torch
from torch import nn

from .metrics import accuracy, check_finite, check_mask
from .entropy import neighbourhood_entropy
from .errors import UserInputError
from .settings import TUNED_BETA
from .losses import check_reduction, distill_loss, eval_loss, kd_grad_tau_sensitivity, kd_node_weight
from .metagrad import capture_rng, directional_logits, step_jacobian, temperature_meta_gradient
from .temperature import TemperatureNet
from .training import EarlyStopping, progress, set_seed

METHODS = ("ltd", "ltd-s", "ft", "kd")
OPTIMIZERS = ("adam", "sgd")
CALIBRATION_MASKS = ("temp", "val")


@dataclass
class DistillConfig:
    """Settings of a :class:`Distiller` (every field can be passed to it as a keyword).

    ``alpha`` is the student's learning rate, ``beta`` the temperature network's (default
    :data:`~dgl_ltd.settings.TUNED_BETA`, as in the tuned settings); ``optimizer``
    applies to both (``'sgd'`` with ``reduction='sum'`` is the paper's setting, see
    :func:`~dgl_ltd.settings.paper_config`). ``meta_center=True`` removes the mean of the per-node meta-gradient at
    every learning step, so that the temperatures learn node-specific deviations only (an
    experiment, off by default: see ``benchmarks/results/ltd_variants.md``).

    ``calibrate_on`` picks the labelled nodes on which ``init_tau='calibrated'`` fits the start
    temperature: ``'temp'`` (V_L^E) or ``'val'`` (the validation nodes). ``kd_holdout=True`` leaves
    the nodes that judge the temperatures out of the KD term, so the student never sees the teacher's
    targets there. ``meta_on`` picks those judging nodes, whose label loss the learning step lowers:
    ``'temp'`` (V_L^E, the paper's choice) or ``'val'`` (the validation nodes, which also drive early
    stopping: the temperatures are then tuned on held-out labels like any other hyper-parameter; use
    it when the teacher was trained on V_L^E, as the paper's shipped teachers were).
    """

    method: str = "ltd"
    lam: float = 1.0
    temperature: float = 1.0
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
    calibrate_on: str = "temp"
    kd_holdout: bool = False
    meta_on: str = "temp"
    show_progress: bool = True

    def validate(self) -> "DistillConfig":
        numeric = ["lam", "temperature", "alpha", "beta", "weight_decay", "temp_weight_decay", "temp_dropout", "fd_eps"]
        numeric += [name for name in ("k", "min_abs_tau", "init_tau")  # these may also be None or 'calibrated'
                    if not isinstance(getattr(self, name), (str, type(None)))]
        for name in numeric:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
                raise UserInputError(f"{name} must be a finite number, got {value!r}")
        for name in ("max_epochs", "patience", "meta_every", "warmup", "temp_hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise UserInputError(f"{name} must be an integer, got {value!r}")
        if self.method not in METHODS:
            raise UserInputError(f"unknown method {self.method!r}; choose one of: {', '.join(METHODS)}")
        if self.optimizer not in OPTIMIZERS:
            raise UserInputError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        check_reduction(self.reduction)
        if self.k is None and not (self.init_tau == "calibrated" or isinstance(self.init_tau, (int, float))):
            raise UserInputError("k=None (range relative to the start temperature) needs a numeric or 'calibrated' init_tau")
        if self.k is None and isinstance(self.init_tau, (int, float)) and not self.init_tau > 0:
            raise UserInputError(f"k=None needs a positive init_tau, got {self.init_tau!r}")
        for name in ("alpha", "beta", "fd_eps") + (("k",) if self.k is not None else ()):
            if not getattr(self, name) > 0:
                raise UserInputError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.temperature == 0:
            raise UserInputError("temperature must be non-zero; use e.g. --temperature 1")
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
        if self.kd_holdout and self.method not in ("ltd", "ltd-s"):
            raise UserInputError(f"kd_holdout=True only applies to 'ltd' and 'ltd-s' (V_L^E is split off for "
                                 f"temperature learning), got method {self.method!r}; drop kd_holdout")
        if self.calibrate_on not in CALIBRATION_MASKS:
            raise UserInputError(f"calibrate_on must be one of {CALIBRATION_MASKS}, got {self.calibrate_on!r}")
        if self.meta_on not in CALIBRATION_MASKS:
            raise UserInputError(f"meta_on must be one of {CALIBRATION_MASKS}, got {self.meta_on!r}")
        if isinstance(self.init_tau, str) and self.init_tau != "calibrated":
            raise UserInputError(f"init_tau must be a number, None or 'calibrated', got {self.init_tau!r}")
        if (self.method in ("ltd", "ltd-s") and self.k is not None and isinstance(self.init_tau, Real)
                and not -0.2 * self.k < self.init_tau < 0.8 * self.k):
            raise UserInputError(f"init_tau must lie in (-0.2k, 0.8k) = ({-0.2 * self.k:g}, {0.8 * self.k:g}), got "
                                 f"{self.init_tau!r}; raise k or lower init_tau")
        return self


@dataclass
class DistillResult:
    """The outcome of :meth:`Distiller.fit`; ``temperatures`` are those of the best epoch (N,)."""

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

    def save_temperatures(self, path: str) -> None:
        """Write the learned temperatures, one per node, as text."""
        import numpy as np

        np.savetxt(path, self.temperatures.detach().cpu().numpy(), fmt="%.6f")


class Distiller:
    r"""Distil teacher logits into any DGL ``nn.Module`` student with ``forward(graph, feat)``.

    Parameters
    ----------
    student : nn.Module
        Called as ``student(graph, feat)`` and returning (N, C) logits. It is trained in place.
    method : {'ltd', 'ltd-s', 'ft', 'kd'}
        See the module docstring.
    **config
        Any field of :class:`DistillConfig` (``lam``, ``alpha``, ``beta``, ``k``, ...).

    Examples
    --------
    >>> from dgl_ltd.data import load_dataset
    >>> from dgl_ltd.models import GCN
    >>> from dgl_ltd import Distiller
    >>> g = load_dataset("cora")
    >>> teacher = GCN(g.ndata["feat"].shape[1], 7)   # any trained model's logits will do
    >>> t = teacher(g, g.ndata["feat"]).detach()
    >>> res = Distiller(GCN(g.ndata["feat"].shape[1], 7), "ltd", max_epochs=3, warmup=1,
    ...                 show_progress=False).fit(g, t)
    >>> res.temperatures.shape
    torch.Size([2485])
    """

    def __init__(self, student: nn.Module, method: str = "ltd", **config):
        if not isinstance(student, nn.Module):
            raise UserInputError(f"student must be a torch.nn.Module, got {type(student).__name__}")
        unknown = set(config) - set(DistillConfig.__dataclass_fields__)
        if unknown:
            raise UserInputError(f"unknown option(s) {sorted(unknown)}; see dgl_ltd.distillers.DistillConfig")
        self.student = student
        self.config = DistillConfig(method=method, **config).validate()

    def _optimizer(self, params, lr: float, weight_decay: float):
        if self.config.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)

    def fit(
        self,
        graph,
        teacher_logits: torch.Tensor,
        feat: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        distill_mask: torch.Tensor | None = None,
        temp_mask: torch.Tensor | None = None,
        val_mask: torch.Tensor | None = None,
        test_mask: torch.Tensor | None = None,
        seed: int = 0,
    ) -> DistillResult:
        """Run the distillation; arguments left as None come from ``graph.ndata``.

        ``teacher_logits`` (N, C) are the pretrained model's logits; ``distill_mask`` is V_L^D
        (label loss), ``temp_mask`` V_L^E (temperature learning, LTD only; not needed with
        ``meta_on='val'`` and ``calibrate_on='val'``), ``val_mask`` the
        early-stopping nodes; ``test_mask`` is optional and only scored.
        """
        cfg = self.config
        nd = graph.ndata
        n = graph.num_nodes()
        if isinstance(feat, np.ndarray) and np.issubdtype(feat.dtype, np.floating):
            weights = [p for p in self.student.parameters() if p.is_floating_point()]
            feat = torch.as_tensor(feat, dtype=weights[0].dtype if weights else torch.get_default_dtype())
        feat = _node_data(nd, "feat", feat)
        labels = _node_data(nd, "label", labels)
        if isinstance(labels, torch.Tensor) and not labels.is_floating_point() and labels.dtype != torch.bool:
            labels = labels.long()  # any integer class indices
        distill_mask = check_mask(_node_data(nd, "distill_mask", distill_mask), "distill_mask", n)
        val_mask = check_mask(_node_data(nd, "val_mask", val_mask), "val_mask", n)
        learns = cfg.method in ("ltd", "ltd-s")
        if learns and "temp" in (cfg.meta_on, cfg.calibrate_on):  # V_L^E is needed only where it is used
            temp_mask = check_mask(_node_data(nd, "temp_mask", temp_mask), "temp_mask", n)
        if test_mask is None and "test_mask" in nd:
            test_mask = nd["test_mask"]
        if isinstance(test_mask, np.ndarray):
            test_mask = torch.as_tensor(test_mask)
        if test_mask is not None:  # may be empty: then test_acc is NaN
            if not isinstance(test_mask, torch.Tensor) or test_mask.dtype != torch.bool:
                what = f"dtype {test_mask.dtype}" if isinstance(test_mask, torch.Tensor) else type(test_mask).__name__
                raise UserInputError(f"test_mask must be a boolean tensor, got {what}; pass a bool mask")
            if tuple(test_mask.shape) != (n,):
                raise UserInputError(f"test_mask has shape {tuple(test_mask.shape)} but the graph has {n} nodes; "
                                     f"pass one entry per node")
        if not isinstance(teacher_logits, torch.Tensor):
            teacher_logits = torch.as_tensor(teacher_logits)
        if teacher_logits.dim() != 2 or teacher_logits.shape[0] != n:
            raise UserInputError(
                f"teacher logits have shape {tuple(teacher_logits.shape)} but the graph has {n} nodes; pass N x C logits"
            )
        if feat.shape[0] != n or not feat.is_floating_point():
            raise UserInputError(f"node features have shape {tuple(feat.shape)} and dtype {feat.dtype}; the graph "
                                 f"has {n} nodes: pass one floating-point row per node")
        if tuple(labels.shape) != (n,) or labels.dtype != torch.long:
            raise UserInputError(f"labels have shape {tuple(labels.shape)} and dtype {labels.dtype}; pass one int64 "
                                 f"class index per node ({n})")
        classes = teacher_logits.shape[1]
        if n and not 0 <= int(labels.min()) <= int(labels.max()) < classes:
            raise UserInputError(f"labels range over [{int(labels.min())}, {int(labels.max())}] but the teacher logits "
                                 f"have {classes} columns; pass one logit column per class")
        check_finite(teacher_logits, "teacher logits")
        check_finite(feat, "node features")
        teacher = teacher_logits.detach().to(feat.device, feat.dtype)

        set_seed(seed)
        student = self.student
        names = [name for name, p in student.named_parameters() if p.requires_grad]
        params = [p for p in student.parameters() if p.requires_grad]
        optimizer = self._optimizer(params, cfg.alpha, cfg.weight_decay)
        meta_mask = val_mask if cfg.meta_on == "val" else temp_mask  # whose loss the learning step lowers
        kd_mask = ~meta_mask if learns and cfg.kd_holdout else None
        weight = kd_node_weight(n, cfg.reduction, kd_mask)
        if cfg.method == "ft":
            fixed_tau = torch.full((n,), float(cfg.temperature), dtype=feat.dtype, device=feat.device)
        else:
            fixed_tau = torch.ones(n, dtype=feat.dtype, device=feat.device)
        if learns:
            entropy = neighbourhood_entropy(graph, teacher).to(feat.dtype)
            init_tau = cfg.init_tau
            if init_tau == "calibrated":
                calibration_mask = temp_mask if cfg.calibrate_on == "temp" else val_mask
                init_tau = calibrated_temperature(teacher, labels, calibration_mask, cfg.k)
            k = cfg.k if cfg.k is not None else 2.0 * init_tau  # init_tau then sits at 0.5k: (-0.4, 1.6) x init
            min_abs = cfg.min_abs_tau if cfg.min_abs_tau is not None else min(0.01, 0.02 * k)
            temp_net = TemperatureNet(teacher.shape[1], k, cfg.temp_hidden, cfg.temp_dropout, init_tau, min_abs).to(
                feat.device, feat.dtype)
            temp_opt = self._optimizer(temp_net.parameters(), cfg.beta, cfg.temp_weight_decay)
        stopper = EarlyStopping(cfg.patience)
        history = []
        start = time.perf_counter()
        tau = fixed_tau
        learned = False  # whether the previous epoch updated the temperature network
        epoch = 0
        for epoch in progress(range(cfg.max_epochs), cfg.show_progress, cfg.method):
            student.train()
            rng = capture_rng(feat.device)
            logits = student(graph, feat)
            learn = learns and learn_epoch(epoch, cfg)
            if learn:
                tau = temp_net(logits, entropy)
            elif learns and (cfg.method == "ltd" or epoch == 0 or learned):  # LTD-S: once after each update
                with torch.no_grad():
                    tau = temp_net(logits, entropy)
            learned = learn
            loss = distill_loss(logits, teacher, tau.detach(), labels, distill_mask, cfg.lam, cfg.reduction, kd_mask)
            optimizer.zero_grad()
            loss.backward()
            old = [p.detach().clone() for p in params] if learn else None
            optimizer.step()
            if learn:
                after, meta = self._learn_temperatures(
                    graph, feat, labels, meta_mask, teacher, tau, weight, names, params, old, optimizer, rng,
                    temp_opt)
            else:
                after, meta = None, None
            val_logits = after if after is not None else _eval_logits(student, graph, feat)
            val_acc = accuracy(val_logits, labels, val_mask)
            val_loss = float(eval_loss(val_logits, labels, val_mask))
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the distillation loss became {float(loss)} at epoch {epoch}; lower alpha (--alpha) or use "
                    f"reduction='mean' (--reduction mean)"
                )
            history.append({"epoch": epoch, "loss": float(loss), "val_acc": val_acc, "val_loss": val_loss,
                            "tau_mean": float(tau.mean()), "tau_std": float(tau.std()) if n > 1 else 0.0,
                            "meta_grad_norm": meta})
            if stopper.step(epoch, val_acc, val_loss, student, extra=tau.detach().clone()):
                break
        seconds = time.perf_counter() - start
        stopper.restore(student)
        logits = _eval_logits(student, graph, feat)
        test_acc = accuracy(logits, labels, test_mask) if test_mask is not None and test_mask.any() else float("nan")
        temperatures = stopper.extra if stopper.extra is not None else tau.detach()
        config = asdict(cfg)
        if learns:  # the start temperature and range actually used (init_tau may be 'calibrated', k None)
            config.update(resolved_init_tau=init_tau, resolved_k=k)
        return DistillResult(student, logits, temperatures, stopper.best_acc, test_acc, stopper.best_epoch,
                             epoch + 1, seconds, seconds / (epoch + 1), config, history)

    def _learn_temperatures(self, graph, feat, labels, meta_mask, teacher, tau, weight, names, params, old,
                            optimizer, rng, temp_opt):
        """One learning step of the temperature network; returns the student's eval-mode logits at theta'."""
        cfg = self.config
        student = self.student
        directions = step_jacobian(optimizer, params, old)
        student.eval()
        after = student(graph, feat)
        loss_eval = eval_loss(after, labels, meta_mask, cfg.reduction)
        grads = torch.autograd.grad(loss_eval, params, allow_unused=True)
        direction = [d * (g if g is not None else torch.zeros_like(d)) for d, g in zip(directions, grads)]
        student.train()
        jvp = directional_logits(student, names, old, direction, rng, graph, feat, cfg.fd_eps)
        sens = kd_grad_tau_sensitivity(teacher, tau, weight)
        meta = temperature_meta_gradient(jvp, sens, center=cfg.meta_center)
        temp_opt.zero_grad()
        tau.backward(meta.to(tau.dtype))
        temp_opt.step()
        return after.detach(), float(meta.norm())


def calibrated_temperature(teacher_logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
                           k: float | None = None) -> float:
    """The global temperature that minimises the teacher's cross-entropy on ``mask`` (temperature scaling).

    Searched on a log grid over [0.01, 10], or inside the temperature network's positive range
    (0, 0.8k) when ``k`` is given; LTD starts every node there and learns node-specific deviations.
    """
    if k is None:
        grid = torch.logspace(-2, 1, 121, dtype=torch.float64)
    else:
        grid = torch.logspace(-2, 0, 81, dtype=torch.float64) * 0.79 * k
    t = teacher_logits[mask].double()
    y = labels[mask]
    losses = torch.stack([torch.nn.functional.cross_entropy(t / T, y) for T in grid])
    return float(grid[int(torch.argmin(losses))])


def _node_data(ndata, key: str, given):
    """``given``, else ``ndata[key]``, with a one-line error when neither is there."""
    if isinstance(given, np.ndarray):  # NumPy masks, features and labels are welcome
        return torch.as_tensor(given)
    if given is not None:
        return given
    if key not in ndata:
        argument = "labels" if key == "label" else key
        raise UserInputError(f"graph.ndata has no {key!r}; store it there or pass {argument}=...")
    return ndata[key]


def learn_epoch(epoch: int, cfg: DistillConfig) -> bool:
    """Whether the temperature network learns at ``epoch`` (every epoch after warm-up for LTD)."""
    if cfg.method == "ltd":
        return epoch >= cfg.warmup
    return epoch >= cfg.warmup and (epoch - cfg.warmup) % cfg.meta_every == 0


def _eval_logits(student: nn.Module, graph, feat: torch.Tensor) -> torch.Tensor:
    student.eval()
    with torch.no_grad():
        out = student(graph, feat)
    student.train()
    return out
