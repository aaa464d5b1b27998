"""DGL blocks against PyG's NeighborLoader-style subgraphs: seconds per KD mini-batch (issue 15, target 4).

Both frameworks run the same step core (``dgl_ltd.distill.core.StepCore``, KD, Adam) on a GraphSAGE
student ('gcn' aggregator; the PyG twin of ``benchmarks/pyg/models.py`` starts from the DGL model's
weights), the same seed nodes, fanouts and batch size, side by side in one process, alternating
which framework goes first at every batch.

* DGL: ``dgl.dataloading.NeighborSampler`` blocks and ``student(blocks, x)``; its figure is
  sampling + step.
* PyG: what ``torch_geometric.loader.NeighborLoader`` hands a model: one subgraph holding every
  sampled node (seeds first) and every sampled edge, on which the model computes every layer for
  every node and the loss reads the first ``batch_size`` rows. NeighborLoader itself needs
  ``pyg-lib`` or ``torch-sparse`` for its sampling (neither has a wheel on PyPI for this stack;
  ``torch-sparse`` and ``torch-scatter`` build from their source distributions). Where it samples,
  the PyG figure is ``NeighborLoader``'s own batch (sampling and feature gathering, timed as DGL's
  are) + the step, for the same seed nodes in the same order. Where it cannot, the script builds
  that subgraph from DGL's own draws (hop 1: the seeds' sampled neighbours; hop 2: the sampled
  neighbours of the nodes first reached at hop 1, as NeighborLoader samples each node once),
  outside the timed region, and the PyG figure is the step alone, a lower bound on a NeighborLoader
  batch.

Usage: python benchmarks/minibatch_pyg.py [--datasets amazon-computers,planted] [--batches 30] [--threads 1]
Writes benchmarks/results/notes/minibatch_pyg.md (its hand-written summary kept).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch import nn

from common import (ROOT, RESULTS, at_least, choice_list, command_line, data_dir, git_commit, machine,
                    write_keeping_summary)
from minibatch_probe import synthetic_teacher
from minibatch_worker import fanout_list

sys.path.insert(0, str(ROOT))
TARGET = 1.5  # DGL at least this many times faster per batch


class SeedRows(nn.Module):
    """A PyG model on a NeighborLoader subgraph: logits of its first ``batch_size`` nodes (the seeds)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x, edge_index, batch_size: int):
        return self.model(x, edge_index)[:batch_size]


def pyg_data(graph):
    """The graph as PyG's ``Data`` (features and edges; the same edge list DGL samples from)."""
    from torch_geometric.data import Data

    src, dst = graph.edges()
    return Data(x=graph.ndata["feat"], edge_index=torch.stack([src, dst]), num_nodes=graph.num_nodes())


def neighbor_loader_status(graph, fanouts, batch_size) -> str:
    """'works', or the one-line reason PyG's NeighborLoader cannot sample here."""
    from torch_geometric.loader import NeighborLoader

    try:
        next(iter(NeighborLoader(pyg_data(graph), num_neighbors=list(fanouts), batch_size=batch_size)))
    except ImportError as error:
        return str(error).splitlines()[0]
    return "works"


def neighbor_loader(graph, seeds, args):
    """PyG's NeighborLoader over ``seeds`` in their order (batches of ``args.batch_size``)."""
    from torch_geometric.loader import NeighborLoader

    return iter(NeighborLoader(pyg_data(graph), num_neighbors=list(args.fanouts), batch_size=args.batch_size,
                               input_nodes=seeds, shuffle=False))


def loader_subgraph(blocks, input_nodes, batch_size: int):
    """NeighborLoader's subgraph from DGL's two-hop draw: (node ids, edge_index in local ids, seeds first)."""
    first, last = blocks[0], blocks[-1]
    u1, v1 = last.edges()  # hop 1: the seeds' sampled neighbours (local ids index input_nodes)
    u0, v0 = first.edges()
    new = v0 >= batch_size  # hop 2: only for nodes first reached at hop 1
    src, dst = torch.cat([u1, u0[new]]), torch.cat([v1, v0[new]])
    used = torch.zeros(input_nodes.shape[0], dtype=torch.bool)
    used[:batch_size] = True
    used[src] = True
    used[dst] = True
    keep = used.nonzero().squeeze(-1)  # seeds stay first: they are the prefix of input_nodes
    local = torch.full((input_nodes.shape[0],), -1, dtype=torch.long)
    local[keep] = torch.arange(keep.shape[0])
    return input_nodes[keep], torch.stack([local[src], local[dst]])


def load_graph(name: str, args):
    from dgl_ltd.data import load_dataset, load_logits
    from dgl_ltd.hparams import teacher_logits_path

    if name == "planted":
        graph = load_dataset("planted", num_nodes=args.planted_nodes, seed=0)
        return f"planted-{args.planted_nodes}", graph, synthetic_teacher(graph, seed=0)
    graph = load_dataset(name, data_dir())
    return name, graph, load_logits(teacher_logits_path(data_dir(), name, "graphsage"), graph)


def cores(graph, teacher):
    """(DGL core, PyG core) of twin GraphSAGE students with the same initial weights."""
    from benchmarks.pyg.models import build_model as build_pyg
    from benchmarks.pyg.transfer import copy_dgl_weights
    from dgl_ltd.distill.config import DistillConfig
    from dgl_ltd.distill.core import StepCore
    from dgl_ltd.models import build_model

    cfg = DistillConfig(method="kd").validate()
    torch.manual_seed(0)
    feats, classes = graph.ndata["feat"].shape[1], teacher.shape[1]
    dgl_student = build_model("graphsage", feats, classes)
    pyg_student = copy_dgl_weights("graphsage", dgl_student.state_dict(), build_pyg("graphsage", feats, classes))
    return StepCore(dgl_student, cfg), StepCore(SeedRows(pyg_student), cfg)


def pyg_batch(loader, blocks, input_nodes, nodes, feat, rows):
    """(PyG's batch, seconds it took to sample, or 0.0 when built from DGL's draw outside the clock)."""
    from dgl_ltd.distill.core import Batch

    if loader is None:
        sub_nodes, edge_index = loader_subgraph(blocks, input_nodes, nodes.shape[0])
        return Batch((feat[sub_nodes], edge_index, nodes.shape[0]), *rows), sub_nodes.shape[0], 0.0
    start = time.perf_counter()
    data = next(loader)
    seconds = time.perf_counter() - start
    if not torch.equal(data.n_id[:data.batch_size], nodes):
        raise RuntimeError("NeighborLoader's seeds differ from DGL's: the two sides would not be comparable")
    return Batch((data.x, data.edge_index, data.batch_size), *rows), data.num_nodes, seconds


def measure(name: str, graph, teacher, args, real_loader: bool) -> dict:
    import dgl

    from dgl_ltd.distill.core import Batch
    from dgl_ltd.distill.minibatch import one_sampling_thread

    dgl_core, pyg_core = cores(graph, teacher)
    sampler = dgl.dataloading.NeighborSampler(list(args.fanouts))
    feat, labels, mask = graph.ndata["feat"], graph.ndata["label"], graph.ndata["distill_mask"]
    seeds = torch.randperm(graph.num_nodes(), generator=torch.Generator().manual_seed(0))
    loader = neighbor_loader(graph, seeds, args) if real_loader else None
    times = {"sample": [], "dgl": [], "pyg_sample": [], "pyg": [], "pyg_nodes": [], "dgl_inputs": []}
    for index, nodes in enumerate(seeds.split(args.batch_size)[:args.batches + args.warmup]):
        rows = (teacher[nodes], labels[nodes], mask[nodes])
        start = time.perf_counter()
        with one_sampling_thread():
            input_nodes, _, blocks = sampler.sample(graph, nodes)
        dgl_batch = Batch((blocks, feat[input_nodes]), *rows)
        sample = time.perf_counter() - start
        batch, pyg_nodes, pyg_sample = pyg_batch(loader, blocks, input_nodes, nodes, feat, rows)
        order = [("dgl", dgl_core, dgl_batch), ("pyg", pyg_core, batch)]
        for framework, core, step_batch in order if index % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            core.step(step_batch)
            if index >= args.warmup:
                times[framework].append(time.perf_counter() - start)
        if index >= args.warmup:
            times["sample"].append(sample)
            times["pyg_sample"].append(pyg_sample)
            times["pyg_nodes"].append(pyg_nodes)
            times["dgl_inputs"].append(input_nodes.shape[0])
    return times


def report(args, results: dict, status: str) -> str:
    real = status == "works"
    how = ("DGL = sampling + step on blocks; PyG = NeighborLoader's batch (sampling) + step on it." if real else
           "DGL = sampling + step on blocks; PyG = step on the NeighborLoader-shaped subgraph "
           "(see the script's docstring: sampling not included, so PyG's figure is a lower bound).")
    lines = ["# DGL blocks vs PyG NeighborLoader subgraphs: seconds per KD mini-batch (issue 15, target 4)", "",
             "## The last run (written by the script)", "",
             f"Command: `{command_line()}` (commit {git_commit()}).", f"Machine: {machine()}.", "",
             "Both frameworks ran side by side in one process, alternating at every batch, so load hits them alike.",
             "", f"`NeighborLoader` here: {status}.", "",
             f"GraphSAGE ('gcn' aggregator), KD steps (Adam), fanouts {','.join(map(str, args.fanouts))}, batch "
             f"{args.batch_size}, {args.batches} timed batches after {args.warmup} warm-up batches; medians. "
             + how, "",
             "| graph | DGL sampling | DGL step | DGL batch | PyG sampling | PyG step | PyG batch | PyG / DGL batch | "
             "PyG / DGL step | DGL input nodes | PyG subgraph nodes |", "|" + " --- |" * 11]
    for name, t in results.items():
        medians = [statistics.median(t[k]) for k in ("sample", "dgl", "pyg_sample", "pyg")]
        dgl_batch = statistics.median(s + d for s, d in zip(t["sample"], t["dgl"]))
        pyg_batch = statistics.median(s + d for s, d in zip(t["pyg_sample"], t["pyg"]))
        sample, dgl_step, pyg_sample, pyg_step = medians
        pyg_sample_cell = f"{pyg_sample:.4f}" if real else "not timed"
        lines.append(f"| {name} | {sample:.4f} | {dgl_step:.4f} | {dgl_batch:.4f} | {pyg_sample_cell} | "
                     f"{pyg_step:.4f} | {pyg_batch:.4f} | **{pyg_batch / dgl_batch:.2f}** | {pyg_step / dgl_step:.2f} | "
                     f"{statistics.median(t['dgl_inputs']):.0f} | {statistics.median(t['pyg_nodes']):.0f} |")
    lines += ["", f"Target: DGL at least {TARGET}x faster per batch (the 'PyG / DGL batch' column)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=choice_list(("amazon-computers", "planted")),
                        default="amazon-computers,planted")
    parser.add_argument("--planted-nodes", type=at_least(5000), default=250_000)
    parser.add_argument("--fanouts", type=fanout_list, default=(10, 10))
    parser.add_argument("--batch-size", type=at_least(1), default=1024)
    parser.add_argument("--batches", type=at_least(1), default=30, help="timed batches per graph")
    parser.add_argument("--warmup", type=at_least(0), default=3, help="untimed batches first")
    parser.add_argument("--threads", type=at_least(1), default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results, status = {}, None
    for dataset in args.datasets.split(","):
        name, graph, teacher = load_graph(dataset, args)
        status = status or neighbor_loader_status(graph, args.fanouts, args.batch_size)
        results[name] = measure(name, graph, teacher, args, real_loader=status == "works")
        print(name, {k: statistics.median(v) for k, v in results[name].items()}, flush=True)
    text = report(args, results, status)
    write_keeping_summary(RESULTS / "notes" / "minibatch_pyg.md", text)
    print(text)


if __name__ == "__main__":
    main()
