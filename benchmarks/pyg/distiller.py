"""``PyGDistiller``: ``dgl_ltd.distill.Distiller.fit`` step for step, on a PyG student.

Shared with ``dgl_ltd`` (imported, not copied): the tempered KD loss and its fused kernel
(``dgl_ltd.losses``/``dgl_ltd.ops``), the temperature network (``dgl_ltd.temperature``) and the
meta-gradient (``dgl_ltd.metagrad``: the optimiser's step Jacobian, the central-difference JVP by
``torch.func.functional_call`` with the distillation step's dropout RNG replayed, the per-node
temperature gradient). Re-implemented because their modules import DGL: the configuration
dataclass, ``calibrated_temperature`` and ``learn_epoch`` (copies; the parity test compares them
with the originals) and the neighbourhood entropy (:mod:`.entropy`, by scatter).

Per epoch, exactly as ``Distiller.fit``: train-mode forward (RNG state captured first); the
temperature network's forward when it learns this epoch (every epoch for LTD); the distillation
loss with detached temperatures; Adam (or SGD) step; on learning epochs the meta-gradient (step
Jacobian, eval-mode look-ahead at theta', gradient of the V_L^E loss, JVP at theta along
``D * g'``, back-propagated through the temperature network) whose eval-mode logits double as the
validation pass; otherwise one eval-mode forward for validation; early stopping.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from dgl_ltd.losses import distill_loss, eval_loss, kd_grad_tau_sensitivity, kd_node_weight
from dgl_ltd.metagrad import capture_rng, directional_logits, step_jacobian, temperature_meta_gradient
from dgl_ltd.settings import TUNED_BETA
from dgl_ltd.temperature import TemperatureNet

from .entropy import neighbourhood_entropy
from .training import EarlyStopping, accuracy, check_mask, set_seed

METHODS = ("ltd", "ltd-s", "ft", "kd")


@dataclass
class DistillConfig:
    """The fields and defaults of ``dgl_ltd.distill.DistillConfig`` (checked equal by the parity test)."""

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
    show_progress: bool = True  # accepted for compatibility; this twin never draws a progress bar

    def validate(self) -> "DistillConfig":
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of: {', '.join(METHODS)}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {self.reduction!r}")
        if self.k is None and not (self.init_tau == "calibrated" or
                                   (isinstance(self.init_tau, (int, float)) and self.init_tau > 0)):
            raise ValueError("k=None (range relative to the start temperature) needs init_tau 'calibrated' or > 0")
        for name in ("alpha", "beta", "fd_eps") + (("k",) if self.k is not None else ()):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("max_epochs", "patience", "meta_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.temperature == 0 or self.lam < 0 or self.warmup < 0:
            raise ValueError("temperature must be non-zero, lam >= 0 and warmup >= 0")
        return self


@dataclass
class DistillResult:
    """The fields of ``dgl_ltd.distill.DistillResult``."""

    student: nn.Module
    logits: Tensor
    temperatures: Tensor
    val_acc: float
    test_acc: float
    best_epoch: int
    epochs: int
    seconds: float
    seconds_per_epoch: float
    config: dict = field(default_factory=dict)
    history: list = field(default_factory=list)


def calibrated_temperature(teacher_logits: Tensor, labels: Tensor, mask: Tensor, k: float | None = None) -> float:
    """The global temperature minimising the teacher's cross-entropy on ``mask``.

    Log grid over [0.01, 10], or inside the temperature network's positive range (0, 0.8k) when
    ``k`` is given.
    """
    if k is None:
        grid = torch.logspace(-2, 1, 121, dtype=torch.float64)
    else:
        grid = torch.logspace(-2, 0, 81, dtype=torch.float64) * 0.79 * k
    t = teacher_logits[mask].double()
    y = labels[mask]
    losses = torch.stack([torch.nn.functional.cross_entropy(t / T, y) for T in grid])
    return float(grid[int(torch.argmin(losses))])


def learn_epoch(epoch: int, cfg: DistillConfig) -> bool:
    """Whether the temperature network learns at ``epoch``."""
    if cfg.method == "ltd":
        return epoch >= cfg.warmup
    return epoch >= cfg.warmup and (epoch - cfg.warmup) % cfg.meta_every == 0


def _eval_logits(student: nn.Module, x: Tensor, edge_index: Tensor) -> Tensor:
    student.eval()
    with torch.no_grad():
        out = student(x, edge_index)
    student.train()
    return out


class PyGDistiller:
    """Distil teacher logits into a PyG student called as ``student(x, edge_index)``.

    Parameters
    ----------
    student : nn.Module
        Returns (N, C) logits from ``(x, edge_index)``; trained in place.
    method : {'ltd', 'ltd-s', 'ft', 'kd'}
        As in ``dgl_ltd.Distiller``.
    **config
        Any field of :class:`DistillConfig`.
    """

    def __init__(self, student: nn.Module, method: str = "ltd", **config):
        unknown = set(config) - set(DistillConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}")
        self.student = student
        self.config = DistillConfig(method=method, **config).validate()

    def _optimizer(self, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        if self.config.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)

    def fit(self, data, teacher_logits: Tensor, seed: int = 0) -> DistillResult:
        """Run the distillation on a PyG ``Data`` with ``x``, ``edge_index``, ``y`` and the masks
        ``distill_mask``, ``temp_mask`` (LTD), ``val_mask`` and optionally ``test_mask``."""
        cfg = self.config
        x, edge_index, labels = data.x, data.edge_index, data.y
        distill_mask = check_mask(data.distill_mask, "distill_mask")
        val_mask = check_mask(data.val_mask, "val_mask")
        test_mask = getattr(data, "test_mask", None)
        learns = cfg.method in ("ltd", "ltd-s")
        temp_mask = check_mask(data.temp_mask, "temp_mask") if learns else None
        n = x.shape[0]
        if teacher_logits.dim() != 2 or teacher_logits.shape[0] != n:
            raise ValueError(f"teacher logits have shape {tuple(teacher_logits.shape)} but the graph has {n} nodes")
        teacher = teacher_logits.detach().to(x.device, x.dtype)

        set_seed(seed)
        student = self.student
        names = [name for name, p in student.named_parameters() if p.requires_grad]
        params = [p for p in student.parameters() if p.requires_grad]
        optimizer = self._optimizer(params, cfg.alpha, cfg.weight_decay)
        meta_mask = val_mask if cfg.meta_on == "val" else temp_mask  # whose loss the learning step lowers
        kd_mask = ~meta_mask if learns and cfg.kd_holdout else None
        weight = kd_node_weight(n, cfg.reduction, kd_mask)
        if cfg.method == "ft":
            fixed_tau = torch.full((n,), float(cfg.temperature), dtype=x.dtype, device=x.device)
        else:
            fixed_tau = torch.ones(n, dtype=x.dtype, device=x.device)
        if learns:
            entropy = neighbourhood_entropy(edge_index, teacher, n).to(x.dtype)
            init_tau = cfg.init_tau
            if init_tau == "calibrated":
                init_tau = calibrated_temperature(teacher, labels, temp_mask if cfg.calibrate_on == "temp" else val_mask,
                                                  cfg.k)
            k = cfg.k if cfg.k is not None else 2.0 * init_tau  # init_tau then sits at 0.5k
            min_abs = cfg.min_abs_tau if cfg.min_abs_tau is not None else min(0.01, 0.02 * k)
            self.init_tau_, self.k_ = init_tau, k
            temp_net = TemperatureNet(teacher.shape[1], k, cfg.temp_hidden, cfg.temp_dropout, init_tau, min_abs).to(
                x.device, x.dtype)
            temp_opt = self._optimizer(temp_net.parameters(), cfg.beta, cfg.temp_weight_decay)
        stopper = EarlyStopping(cfg.patience)
        history = []
        start = time.perf_counter()
        tau = fixed_tau
        learned = False  # whether the previous epoch updated the temperature network
        epoch = 0
        for epoch in range(cfg.max_epochs):
            student.train()
            rng = capture_rng(x.device)
            logits = student(x, edge_index)
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
                    x, edge_index, labels, meta_mask, teacher, tau, weight, names, params, old, optimizer, rng,
                    temp_opt)
            else:
                after, meta = None, None
            val_logits = after if after is not None else _eval_logits(student, x, edge_index)
            val_acc = accuracy(val_logits, labels, val_mask)
            val_loss = float(eval_loss(val_logits, labels, val_mask))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the distillation loss became {float(loss)} at epoch {epoch}")
            history.append({"epoch": epoch, "loss": float(loss), "val_acc": val_acc, "val_loss": val_loss,
                            "tau_mean": float(tau.mean()), "tau_std": float(tau.std()) if n > 1 else 0.0,
                            "meta_grad_norm": meta})
            if stopper.step(epoch, val_acc, val_loss, student, extra=tau.detach().clone()):
                break
        seconds = time.perf_counter() - start
        stopper.restore(student)
        logits = _eval_logits(student, x, edge_index)
        test_acc = accuracy(logits, labels, test_mask) if test_mask is not None and test_mask.any() else float("nan")
        temperatures = stopper.extra if stopper.extra is not None else tau.detach()
        return DistillResult(student, logits, temperatures, stopper.best_acc, test_acc, stopper.best_epoch,
                             epoch + 1, seconds, seconds / (epoch + 1), asdict(cfg), history)

    def _learn_temperatures(self, x, edge_index, labels, meta_mask, teacher, tau, weight, names, params, old,
                            optimizer, rng, temp_opt):
        """One learning step of the temperature network; returns the student's eval-mode logits at theta'."""
        cfg = self.config
        student = self.student
        directions = step_jacobian(optimizer, params, old)
        student.eval()
        after = student(x, edge_index)
        loss_eval = eval_loss(after, labels, meta_mask, cfg.reduction)
        grads = torch.autograd.grad(loss_eval, params, allow_unused=True)
        direction = [d * (g if g is not None else torch.zeros_like(d)) for d, g in zip(directions, grads)]
        student.train()
        # directional_logits calls student(*args) via functional_call: its (graph, feat) are (x, edge_index) here
        jvp = directional_logits(student, names, old, direction, rng, x, edge_index, cfg.fd_eps)
        sens = kd_grad_tau_sensitivity(teacher, tau, weight)
        meta = temperature_meta_gradient(jvp, sens, center=cfg.meta_center)
        temp_opt.zero_grad()
        tau.backward(meta.to(tau.dtype))
        temp_opt.step()
        return after.detach(), float(meta.norm())
