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
[--table-only]. Each graph's medians go to results/runs/minibatch_pyg.jsonl (one record per graph,
sampler and threads; a new run of the same settings replaces the old in the report); the report,
results/reports/minibatch_pyg.md, is generated from that store.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
from torch import nn

from common import REPORTS, ROOT, RUNS, at_least, choice_list, data_dir
from minibatch_probe import synthetic_teacher
from minibatch_worker import fanout_list
from runstore import RunStore, provenance_lines

sys.path.insert(0, str(ROOT))
TARGET = 1.5  # DGL at least this many times faster per batch
STORE = RUNS / "minibatch_pyg.jsonl"
REPORT = REPORTS / "minibatch_pyg.md"
COMMAND = "python benchmarks/minibatch_pyg.py [--threads T]"


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


def figures(times: dict) -> dict:
    """The medians a record keeps of one graph's timed batches (seconds; node counts)."""
    out = {k: statistics.median(times[k]) for k in ("sample", "dgl", "pyg_sample", "pyg", "pyg_nodes", "dgl_inputs")}
    out["dgl_batch"] = statistics.median(s + d for s, d in zip(times["sample"], times["dgl"]))
    out["pyg_batch"] = statistics.median(s + d for s, d in zip(times["pyg_sample"], times["pyg"]))
    return out


HOW = {"neighbor_loader": "PyG = NeighborLoader's batch (sampling and feature gathering) + the step on it",
       "dgl_drawn_subgraph": "PyG = the step alone on the NeighborLoader-shaped subgraph built from DGL's draw "
                             "outside the clock (no PyG sampler installed): a lower bound"}


def row(record: dict) -> str:
    key, f = record["key"], record["figures"]
    real = key["pyg_sampler"] == "neighbor_loader"
    pyg_sample = f"{f['pyg_sample']:.4f}" if real else "not timed"
    return (f"| {key['graph']} | {key['pyg_sampler'].replace('_', ' ')} | {key['threads']} | {f['sample']:.4f} | "
            f"{f['dgl']:.4f} | {f['dgl_batch']:.4f} | {pyg_sample} | {f['pyg']:.4f} | {f['pyg_batch']:.4f} | "
            f"**{f['pyg_batch'] / f['dgl_batch']:.2f}** | {f['pyg'] / f['dgl']:.2f} | {f['dgl_inputs']:.0f} | "
            f"{f['pyg_nodes']:.0f} | {record['commit']} |")


def report(store: RunStore) -> str:
    """The report, from the store only: a row per record, the real NeighborLoader's first."""
    records = sorted(store.records.values(), key=lambda r: (r["key"]["pyg_sampler"] != "neighbor_loader",
                                                            r["key"]["graph"], r["key"]["threads"], r["date"]))
    settings = sorted({json.dumps(r["config"], sort_keys=True) for r in records})
    lines = ["# DGL blocks vs PyG NeighborLoader: seconds per KD mini-batch (issue 15, target 4)", "",
             f"Command: `{COMMAND}`; `--table-only` rewrites this file from the store.", *provenance_lines(store, records),
             "", "GraphSAGE ('gcn' aggregator), KD steps (Adam), twin students with the same initial weights, the "
             "same seed nodes in the same order, the two frameworks alternating at every batch; medians over the "
             "timed batches. DGL = sampling + the step on blocks. " + "; ".join(f"'{k.replace('_', ' ')}': {v}"
                                                                              for k, v in HOW.items()) + ".", "",
             *[f"Settings: `{text}`." for text in settings], "",
             "| graph | PyG side | torch threads | DGL sampling | DGL step | DGL batch | PyG sampling | PyG step | "
             "PyG batch | PyG / DGL batch | PyG / DGL step | DGL input nodes | PyG subgraph nodes | commit |",
             "|" + " --- |" * 14, *[row(r) for r in records], "",
             f"Target: DGL at least {TARGET}x faster per batch (the 'PyG / DGL batch' column). Notes: "
             "[`notes/minibatch_pyg.md`](../notes/minibatch_pyg.md)."]
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
    parser.add_argument("--table-only", action="store_true", help="only rewrite the report from the store")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    store = RunStore(STORE)
    status = None
    for dataset in [] if args.table_only else args.datasets.split(","):
        name, graph, teacher = load_graph(dataset, args)
        status = status or neighbor_loader_status(graph, args.fanouts, args.batch_size)
        print(f"NeighborLoader here: {status}", flush=True)
        real = status == "works"
        times = measure(name, graph, teacher, args, real_loader=real)
        config = {"fanouts": list(args.fanouts), "batch_size": args.batch_size, "batches": args.batches,
                  "warmup": args.warmup}
        key = {"graph": name, "threads": args.threads,
               "pyg_sampler": "neighbor_loader" if real else "dgl_drawn_subgraph"}
        store.add(key, config, figures(times))
    text = report(store)
    REPORT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
