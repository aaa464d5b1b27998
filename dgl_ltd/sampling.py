"""Reproducible neighbour sampling, shared by the mini-batch loops of teachers and students.

DGL draws neighbours from its own random stream, on OpenMP threads. Sampling is reproducible when it
runs on one thread; :func:`sample_seeded` also seeds DGL's stream for each batch, so that a batch's
blocks depend only on its seed nodes and its seed, not on which process samples it or what it
sampled before: :func:`sample_in_order` can then hand the sampling to worker processes.
"""
from __future__ import annotations

import contextlib

import torch

from ._compat import dgl


@contextlib.contextmanager
def one_sampling_thread():
    """Run DGL's sampling on one OpenMP thread: with several, which neighbours it draws for a seed
    depends on the thread schedule, and the same seed would not give the same run."""
    from dgl.utils.internal import get_num_threads, set_num_threads

    previous = get_num_threads()
    set_num_threads(1)
    try:
        yield
    finally:
        set_num_threads(previous)


def sample_blocks(sampler, graph, nodes: torch.Tensor, feat: torch.Tensor) -> tuple:
    """``(blocks, features of their input nodes)`` whose outputs are ``nodes``, in that order."""
    with one_sampling_thread():
        input_nodes, _, blocks = sampler.sample(graph, nodes)
    return blocks, feat[input_nodes]


def sample_seeded(sampler, graph, nodes: torch.Tensor, seed: int) -> tuple:
    """``(input nodes, blocks)`` whose outputs are ``nodes``, drawn from DGL's stream seeded with ``seed``."""
    with one_sampling_thread():
        dgl.seed(seed)
        input_nodes, _, blocks = sampler.sample(graph, nodes)
    return input_nodes, blocks


class _SamplingJobs(torch.utils.data.Dataset):
    """``(seed nodes, sampling seed)`` jobs; item i is the result of :func:`sample_seeded` for job i."""

    def __init__(self, sampler, graph, jobs: list):
        self.sampler, self.graph, self.jobs = sampler, graph, jobs

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> tuple:
        nodes, seed = self.jobs[index]
        return sample_seeded(self.sampler, self.graph, nodes, seed)


def _as_sampled(item):
    return item


def sample_in_order(sampler, graph, jobs: list, num_workers: int = 0):
    """:func:`sample_seeded` of each ``(nodes, seed)`` job, yielded in the jobs' order.

    With ``num_workers`` > 0 the jobs are sampled in that many forked worker processes (a
    ``torch.utils.data.DataLoader`` over the jobs, two jobs ahead per worker); the results are the
    same as with ``num_workers=0``, which samples each job in this process when it is asked for.
    """
    if num_workers == 0:
        for nodes, seed in jobs:
            yield sample_seeded(sampler, graph, nodes, seed)
        return
    loader = torch.utils.data.DataLoader(_SamplingJobs(sampler, graph, jobs), batch_size=None, shuffle=False,
                                         num_workers=num_workers, collate_fn=_as_sampled,
                                         generator=torch.Generator())  # its base seed must not draw from torch's stream
    yield from loader


def neighbor_sampler(fanouts) -> "dgl.dataloading.NeighborSampler":
    return dgl.dataloading.NeighborSampler(list(fanouts))
