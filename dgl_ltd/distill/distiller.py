"""``Distiller``: distil teacher logits into any student, full-graph or on sampled mini-batches."""
from __future__ import annotations

import copy
import time
import warnings
from dataclasses import asdict

import torch
from torch import nn

from ..errors import UserInputError
from ..metrics import accuracy
from ..training import set_seed
from .callbacks import DivergenceGuard, EarlyStop, ProgressBar
from .config import DistillConfig
from .core import StepCore
from .full_graph import eval_logits, full_graph_batch, run_full_graph
from .inputs import check_inputs
from .result import DistillResult
from .schedule import schedule_for
from .start import temperature_network


class Distiller:
    r"""Distil teacher logits into any ``nn.Module`` student: LTD, LTD-S, FT or KD.

    Parameters
    ----------
    student : nn.Module
        Trained in place. Full-graph: called as ``student(graph, feat)`` and returning (N, C)
        logits; with ``fanouts``: ``student(blocks, x)``; with ``sampler='cluster'``:
        ``student(subgraph, x)``.
    method : {'ltd', 'ltd-s', 'ft', 'kd'}
        See :mod:`dgl_ltd.distill`.
    **config
        Any field of :class:`DistillConfig` (``lam``, ``alpha``, ``beta``, ``fanouts``, ...).

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
            raise UserInputError(f"unknown option(s) {sorted(unknown)}; see dgl_ltd.distill.DistillConfig")
        self.student = student
        self.config = DistillConfig(method=method, **config).validate()
        if self.config.minibatch:  # a student that cannot take the sampler's batches fails here, not mid-run
            from .minibatch import check_student

            check_student(self.config, student)
        if self.config.procs > 1 or self.config.minibatch:  # machine, port and torchrun checks of a parallel run
            from .launch import check_procs

            check_procs(self.config)

    def fit(self, graph, teacher_logits: torch.Tensor, feat: torch.Tensor | None = None,
            labels: torch.Tensor | None = None, distill_mask: torch.Tensor | None = None,
            temp_mask: torch.Tensor | None = None, val_mask: torch.Tensor | None = None,
            test_mask: torch.Tensor | None = None, seed: int = 0) -> DistillResult:
        """Run the distillation; arguments left as None come from ``graph.ndata``.

        ``teacher_logits`` (N, C) are the pretrained model's logits. ``distill_mask`` is V_L^D,
        the nodes of the label loss (default: ``ndata['distill_mask']``, else ``'train_mask'``);
        ``temp_mask`` is V_L^E, the nodes that judge the temperatures (LTD; default:
        ``ndata['temp_mask']``, else the validation nodes judge); ``val_mask`` the early-stopping
        nodes; ``test_mask`` is optional and only scored. The student is left with its best
        weights, also when training stops on an error or Ctrl-C (then its initial weights when no
        epoch finished).
        """
        set_seed(seed)  # checks the seed before anything else
        data = check_inputs(self.config, self.student, graph, teacher_logits, feat, labels, distill_mask,
                            temp_mask, val_mask, test_mask)
        if self.config.method == "ft" and self.config.ft_temperature() == "auto":
            result = self._fit_ft_grid(data, seed)
        else:
            result = self._fit(data, seed, self.config.ft_temperature() if self.config.method == "ft" else 1.0)
        warn_if_untrained(result, data, self.config)
        return result

    def make_run(self, data):
        """The loop of this run: :class:`FullGraphRun`, or a mini-batch one when ``fanouts``/``sampler`` are set.

        A run object has ``module`` (what the core steps), ``train(core, schedule, callbacks,
        history) -> epochs``, ``keep(core)`` (what early stopping keeps), ``all_logits(student)``
        and ``all_temperatures(kept, core, logits)``; subclasses
        (e.g. the PyG twin of the benchmarks) return their own.
        """
        if self.config.minibatch:
            from .minibatch import MiniBatchRun

            return MiniBatchRun(self.config, self.student, data)
        return FullGraphRun(self.config, self.student, data)

    def _fit_ft_grid(self, data, seed: int) -> DistillResult:
        """FT at each temperature of ``ft_grid`` from the same start; the best on validation wins."""
        initial = copy.deepcopy(self.student.state_dict())
        best, best_state, trials = None, None, []
        for temperature in self.config.ft_grid:
            self.student.load_state_dict(initial)
            res = self._fit(data, seed, float(temperature))
            trials.append({"temperature": float(temperature), "val_acc": res.val_acc, "val_loss": res.val_loss,
                           "test_acc": res.test_acc, "epochs": res.epochs})
            if best is None or (res.val_acc, -res.val_loss) > (best.val_acc, -best.val_loss):
                best, best_state = res, copy.deepcopy(self.student.state_dict())
        self.student.load_state_dict(best_state)
        best.config.update(temperature=best.config["resolved_temperature"], ft_trials=trials)
        return best

    def make_core(self, run, temperature: float, temp_net, temp_opt) -> StepCore:
        """The step core of this run (a data-parallel rank returns one that sums over the ranks; a
        subclass may bring its own, e.g. a reference meta-gradient)."""
        return StepCore(run.module, self.config, temperature, temp_net, temp_opt)

    def _fit(self, data, seed: int, temperature: float) -> DistillResult:
        """One run at one temperature: here, or in ``procs`` processes (or the ranks torchrun started)."""
        if self.config.minibatch:
            from .launch import fit_in_processes, torchrun_rank

            if self.config.procs > 1 or torchrun_rank() is not None:
                return fit_in_processes(self, data, seed, temperature)
        return self.fit_here(data, seed, temperature)

    def fit_here(self, data, seed: int, temperature: float) -> DistillResult:
        """One run at one temperature in this process."""
        cfg, student = self.config, self.student
        initial = copy.deepcopy(student.state_dict())
        set_seed(seed)
        run = self.make_run(data)
        temp_net = temp_opt = None
        resolved = {"resolved_temperature": temperature}
        if cfg.learns:
            temp_net, temp_opt, init_tau, k = temperature_network(cfg, data)
            resolved = {"resolved_init_tau": init_tau, "resolved_k": k, "meta_on": data.meta_on,
                        "calibrate_on": data.calibrate_on}
        core = self.make_core(run, temperature, temp_net, temp_opt)
        early = EarlyStop(cfg.patience, student, keep=lambda: run.keep(core))
        bar = ProgressBar(cfg.max_epochs, cfg.show_progress, cfg.method)
        callbacks = [DivergenceGuard(cfg, core.params), early, bar]
        history = []
        start = time.perf_counter()
        try:
            epochs = run.train(core, schedule_for(cfg, lazy=not cfg.minibatch), callbacks, history)
        except BaseException:  # a diverged run, Ctrl-C, ...: never leave the user's module half-trained
            student.load_state_dict(early.stopper.best_state or initial)
            raise
        finally:
            bar.close()
        seconds = time.perf_counter() - start
        early.stopper.restore(student)
        return self.finish(run, core, early, data, epochs, seconds, resolved, history)

    def finish(self, run, core, early, data, epochs: int, seconds: float, resolved: dict,
               history: list) -> DistillResult:
        """The result of a trained run (its best weights restored): logits, test accuracy, temperatures."""
        cfg, student = self.config, self.student
        logits = run.all_logits(student)
        test = data.test_mask
        test_acc = accuracy(logits, data.labels, test) if test is not None and bool(test.any()) else float("nan")
        temperatures = run.all_temperatures(early.stopper.extra, core, logits)
        config = asdict(cfg)
        config.update(resolved)
        return DistillResult(student, logits, temperatures, early.stopper.best_acc, test_acc,
                             early.stopper.best_epoch, epochs, seconds, seconds / epochs, config, history,
                             val_loss=early.stopper.best_loss)


def warn_if_untrained(result: DistillResult, data, cfg) -> None:
    """Warn when the student's best validation accuracy is under half the teacher's on the same nodes.

    A student that far below its teacher did not learn, e.g. because its first optimiser steps
    overshot (on raw, unnormalised features a step of ``alpha`` moves every logit a lot) and early
    stopping ended the run before it recovered. Healthy students score near their teacher.
    """
    teacher = accuracy(data.teacher, data.labels, data.val_mask)
    if result.val_acc < 0.5 * teacher:
        warnings.warn(f"dgl_ltd: the student's best validation accuracy {result.val_acc:.3f} is under half the "
                      f"teacher's {teacher:.3f}: it did not learn (best epoch {result.best_epoch} of "
                      f"{result.epochs}). Row-normalise the features (dgl.RowFeatNormalizer), lower alpha="
                      f"{cfg.alpha:g} (--alpha), or raise patience={cfg.patience} (--patience)", stacklevel=3)


class FullGraphRun:
    """Full-graph training: the whole graph is one batch, every epoch one step.

    ``inputs`` (default ``(graph, feat)``) is what the student is called with and ``entropy`` the
    (N,) neighbourhood entropy (default: :func:`dgl_ltd.entropy.neighbourhood_entropy`, computed
    for LTD only), so that another framework's graph (the PyG twin's ``(x, edge_index)``) runs the
    same loop.
    """

    def __init__(self, cfg, student, data, inputs: tuple | None = None, entropy: torch.Tensor | None = None):
        self.cfg, self.data, self.module = cfg, data, student
        if cfg.learns and entropy is None:
            from ..entropy import neighbourhood_entropy

            entropy = neighbourhood_entropy(data.graph, data.teacher)
        entropy = entropy.to(data.feat.dtype) if cfg.learns else None
        kd_mask = ~data.meta_mask if cfg.learns and cfg.kd_holdout else None
        self.batch = full_graph_batch(data, entropy, kd_mask)
        if inputs is not None:
            self.batch.inputs = inputs

    def train(self, core, schedule, callbacks, history) -> int:
        return run_full_graph(core, schedule, self.data, self.batch, callbacks, self.cfg.max_epochs, history)

    def all_logits(self, student):
        return eval_logits(student, *self.batch.inputs)

    def keep(self, core):
        """What early stopping keeps of the best epoch besides the weights: its temperatures."""
        return core.last_tau.clone()

    def all_temperatures(self, kept, core, logits):
        """The temperatures of the best epoch, as the distillation step used them."""
        return kept if kept is not None else core.last_tau
