"""Several distillation methods stepped batch by batch in lockstep, for per-batch cost ratios under background load.

Each method gets what :meth:`dgl_ltd.distill.Distiller.fit` builds (checked inputs, its run from
``make_run``, the temperature network, the step core, the schedule) and is then advanced one
batch at a time through the run's own epoch body (``MiniBatchRun._epoch``, given one batch of seed
nodes), every method on the same seed nodes, the methods' order rotating at every batch, so that
load from other processes hits all methods alike. The per-epoch validation pass inside that body
is replaced by a stub here (it runs once per epoch, not per batch; ``minibatch_cost.py`` measures
it in whole runs).
"""
from __future__ import annotations

import time

import torch


class LockstepMethod:
    """One method's mini-batch loop, advanced one batch at a time by :meth:`step`."""

    def __init__(self, method: str, student, graph, teacher: torch.Tensor, config: dict, seed: int):
        from dgl_ltd.distill import Distiller
        from dgl_ltd.distill.core import StepCore
        from dgl_ltd.distill.inputs import check_inputs
        from dgl_ltd.distill.schedule import schedule_for
        from dgl_ltd.distill.start import temperature_network
        from dgl_ltd.training import set_seed

        distiller = Distiller(student, method, **config)
        cfg = distiller.config
        set_seed(seed)
        data = check_inputs(cfg, student, graph, teacher)
        self.run = distiller.make_run(data)
        temp_net = temp_opt = None
        if cfg.learns:
            temp_net, temp_opt, _, _ = temperature_network(cfg, data)
        self.core = StepCore(self.run.module, cfg, 1.0, temp_net, temp_opt)
        self.schedule = schedule_for(cfg, lazy=False)
        classes = teacher.shape[1]
        self.run.logits_of = lambda nodes: torch.zeros(nodes.shape[0], classes)  # validation: see module docstring
        self.steps = 0

    def step(self, nodes: torch.Tensor) -> tuple:
        """Train on one batch of seed ``nodes``; returns (seconds, whether it was a learning step)."""
        learn = self.schedule.learn(self.run.step_count)
        self.run._seed_chunks = lambda: [(nodes, None)]
        start = time.perf_counter()
        self.run._epoch(self.core, self.schedule, self.steps)
        self.steps += 1
        return time.perf_counter() - start, learn


def lockstep(methods: dict, num_nodes: int, batch_size: int, batches: int, warmup: int, seed: int) -> dict:
    """Step every ``methods`` entry (name -> :class:`LockstepMethod`) on the same batches; seconds per method.

    Returns ``{name: [(seconds, learned), ...]}`` for the ``batches`` batches after ``warmup``
    untimed ones; batches are consecutive chunks of seeded node permutations.
    """
    generator = torch.Generator().manual_seed(seed)
    chunks = []
    while len(chunks) < warmup + batches:
        chunks += [c for c in torch.randperm(num_nodes, generator=generator).split(batch_size) if len(c) == batch_size]
    names = list(methods)
    times = {name: [] for name in names}
    for index, nodes in enumerate(chunks[:warmup + batches]):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            seconds, learned = methods[name].step(nodes)
            if index >= warmup:
                times[name].append((seconds, learned))
    return times
