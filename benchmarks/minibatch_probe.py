"""Instruments for the mini-batch benchmarks: a Distiller whose run records where time and memory go.

:class:`ProbedDistiller` is a :class:`~dgl_ltd.distill.Distiller` whose run (full-graph or
mini-batch, through the documented ``make_run`` hook) is wrapped by :class:`Probe`, which records

* phases: ``setup`` (from ``make_run`` to the first epoch: entropy, sampling graph, calibration,
  temperature network), ``train`` (the epochs) and ``final`` (every node's logits and temperatures
  after training), each with its wall seconds and peak resident set (Linux ``VmHWM``, reset at
  every phase boundary through ``/proc/self/clear_refs``) and the resident set at its start;
* per mini-batch step: seconds spent sampling (the batch's blocks, and the judging nodes' blocks on
  learning steps), seconds in the step core, and whether it was a learning step;
* per epoch: wall seconds and the seconds of the validation pass.

Also :func:`synthetic_teacher` (seeded teacher logits for planted graphs, which have no trained
teacher) and :func:`data_bytes` (the bytes of a graph's structure, features and teacher logits,
from tensor sizes).
"""
from __future__ import annotations

import re
import time

import torch

from dgl_ltd.distill import Distiller


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        return int(re.search(rf"^{field}:\s+(\d+) kB", handle.read(), re.M).group(1))


def rss_bytes() -> int:
    """The process's resident set now."""
    return _status_kib("VmRSS") * 1024


def peak_bytes() -> int:
    """The process's peak resident set since the last :func:`reset_peak` (or its start)."""
    return _status_kib("VmHWM") * 1024


def reset_peak() -> None:
    """Restart the peak resident set at the current one (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def synthetic_teacher(graph, seed: int, margin: float = 3.0) -> torch.Tensor:
    """Seeded stand-in teacher logits: ``margin`` on each node's true class plus standard normal noise.

    Planted graphs have no trained teacher; cost and memory do not depend on the logits' values.
    """
    labels = graph.ndata["label"]
    classes = int(labels.max()) + 1
    noise = torch.randn(labels.shape[0], classes, generator=torch.Generator().manual_seed(seed))
    noise[torch.arange(labels.shape[0]), labels] += margin
    return noise


def data_bytes(graph, teacher: torch.Tensor) -> dict:
    """Bytes of the graph's materialised sparse formats, its node data (features, labels, masks) and the teacher."""
    n, e = graph.num_nodes(), graph.num_edges()
    per_format = {"coo": 16 * e, "csr": 8 * (n + 1) + 16 * e, "csc": 8 * (n + 1) + 16 * e}
    structure = sum(per_format[name] for name in graph.formats()["created"])
    node_data = sum(t.numel() * t.element_size() for t in (graph.ndata[k] for k in graph.ndata))
    teacher_size = teacher.numel() * teacher.element_size()
    return {"structure": structure, "node_data": node_data, "teacher": teacher_size,
            "total": structure + node_data + teacher_size, "formats": list(graph.formats()["created"])}


def _timed(record: list, function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = function(*args, **kwargs)
        record.append(time.perf_counter() - start)
        return out
    return wrapper


class Probe:
    """Phases, epochs and steps of one run (see the module docstring)."""

    def __init__(self):
        self.phases, self.epochs, self.steps = {}, [], []
        self._phase, self._phase_start = None, 0.0

    def enter(self, name: str | None) -> None:
        """End the current phase (recording its seconds and peak) and start ``name`` (None: just end)."""
        now = time.perf_counter()
        if self._phase is not None:
            self.phases[self._phase].update(seconds=now - self._phase_start, peak=peak_bytes())
        self._phase, self._phase_start = name, now
        if name is not None:
            reset_peak()
            self.phases[name] = {"rss_start": rss_bytes()}

    def wrap(self, run):
        """Instrument ``run`` (a full-graph or mini-batch run) in place and return it."""
        probe, train, all_logits = self, run.train, run.all_logits

        def probed_train(core, schedule, callbacks, history):
            probe.enter("train")
            if hasattr(run, "_epoch"):
                probe._instrument_steps(run, core)
            try:
                return train(core, schedule, callbacks, history)
            finally:
                probe.enter(None)

        def probed_all_logits(student):
            probe.enter("final")
            return all_logits(student)

        run.train, run.all_logits = probed_train, probed_all_logits
        return run

    def _instrument_steps(self, run, core) -> None:
        sampling, stepping, validating = [], [], []
        batch, meta_batch, step, epoch, logits_of = run.batch, run.meta_batch, core.step, run._epoch, run.logits_of
        run.batch, run.meta_batch = _timed(sampling, batch), _timed(sampling, meta_batch)
        run.logits_of = _timed(validating, logits_of)

        def probed_step(batch_, learn=False, refresh=True, meta=None):
            out = _timed(stepping, step)(batch_, learn, refresh, meta)
            self.steps.append({"learn": bool(learn), "rows": batch_.rows, "sample": sum(sampling),
                               "step": stepping[-1]})
            sampling.clear()
            return out

        def probed_epoch(core_, schedule, index):
            start, first = time.perf_counter(), len(self.steps)
            record = epoch(core_, schedule, index)
            self.epochs.append({"seconds": time.perf_counter() - start, "validation": validating.pop(),
                                "steps": len(self.steps) - first})
            return record

        core.step, run._epoch = probed_step, probed_epoch

    def summary(self) -> dict:
        return {"phases": self.phases, "epochs": self.epochs, "steps": self.steps}


class ProbedDistiller(Distiller):
    """A Distiller whose run is instrumented by ``self.probe`` (a fresh :class:`Probe` per ``fit``)."""

    def fit(self, *args, **kwargs):
        self.probe = Probe()
        try:
            return super().fit(*args, **kwargs)
        finally:
            self.probe.enter(None)

    def make_run(self, data):
        self.probe.enter("setup")
        return self.probe.wrap(super().make_run(data))
