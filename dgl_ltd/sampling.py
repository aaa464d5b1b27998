"""Reproducible neighbour sampling, shared by the mini-batch loops of teachers and students."""
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


def neighbor_sampler(fanouts) -> "dgl.dataloading.NeighborSampler":
    return dgl.dataloading.NeighborSampler(list(fanouts))
