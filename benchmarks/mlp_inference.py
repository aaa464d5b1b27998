"""Inference speed: seconds per 100k nodes of an MLP student against its GNN teacher, side by side.

Models (untrained weights: inference cost does not depend on them; eval mode, no gradients, float32,
CPU): the GNN teacher is GraphSAGE as the package builds teachers (``build_teacher``: 3 SAGEConv
layers, 'gcn' aggregator, 128 hidden) and GCN (2 layers, 64 hidden); the MLP is GLNN's student
(``glnn_mlp``: amazon-computers 2 x 128; on the planted graph, ogbn-products-sized, both GLNN's
ogbn-products student, 3 x 256 with batch norm, and the 2 x 128 one). Modes:

* ``mlp``: ``MLP.inference`` over every node's feature row, 65,536 rows at a time (no graph).
* ``full-graph``: one whole-graph forward ``model(graph, feat)`` (self-loops added beforehand, not
  timed). Where it does not fit or ``--layerwise`` is given, layer-wise inference
  (``model.inference(graph, feat, 65536)``) instead, and the table says so.
* ``sampled``: neighbour-sampled blocks (``--fanouts``, one per layer; GCN takes the first two) for
  ``--sampled-nodes`` random target nodes in batches of 1,024: sampling, feature gathering and the
  forward are timed, as a server answering those nodes would pay them.

Each time is the best of ``--repeats`` (the planted graph's full-graph forward: one run), scaled to
seconds per 100k nodes (the full-graph forward answers every node at once, so its per-node cost is
its time / N).

Usage: python benchmarks/mlp_inference.py [--datasets amazon-computers,planted] [--num-nodes 1000000]
[--threads 1] [--table-only]. Runs go to results/runs/mlp_inference.jsonl; report
results/reports/mlp_inference.md (hand-written reading: results/notes/mlp_inference_notes.md).
"""
from __future__ import annotations

import argparse
import time

import torch

from common import REPORTS, RUNS, at_least, choice_list, data_dir, machine, parse_store_args, write_text
from runstore import RunStore, provenance_lines

DATASETS = ["amazon-computers", "planted"]
TEACHERS = ["graphsage", "gcn"]
STORE = RUNS / "mlp_inference.jsonl"
REPORT = REPORTS / "mlp_inference.md"
COMMAND = ("Command: `python benchmarks/mlp_inference.py --threads 1 --sampled-nodes 5000`, and the same with "
           "`--threads 2` (and `--table-only` to rebuild this file).")
NOTES_LINK = "[`notes/mlp_inference_notes.md`](../notes/mlp_inference_notes.md)"
PER = 100_000


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def load(dataset: str, num_nodes: int):
    from dgl_ltd.data import load_dataset

    if dataset == "planted":
        return load_dataset("planted", num_nodes=num_nodes, avg_degree=50, num_classes=47, num_feats=100, seed=0)
    return load_dataset(dataset, data_dir(), "ltd")


def time_mlp(graph, preset: str, repeats: int) -> dict:
    from dgl_ltd.models import GLNN_PRESETS, glnn_mlp

    feat = graph.ndata["feat"]
    torch.manual_seed(0)
    mlp = glnn_mlp(feat.shape[1], int(graph.ndata["label"].max()) + 1, preset).eval()
    seconds = best_time(lambda: mlp.inference(None, feat, batch_size=65536), repeats)
    shape = GLNN_PRESETS[preset]
    size = f"{shape['num_layers']}x{shape['hidden']}" + (f"+{shape['norm']}norm" if shape["norm"] else "")
    return {"seconds": seconds, "nodes": graph.num_nodes(), "preset": f"{preset}: {size}"}


@torch.no_grad()
def time_full_graph(model, graph, repeats: int, layerwise: bool) -> dict:
    from dgl_ltd.models import add_self_loops

    feat = graph.ndata["feat"]
    looped = add_self_loops(graph)
    if not layerwise:
        try:
            return {"seconds": best_time(lambda: model(looped, feat), repeats), "nodes": graph.num_nodes(),
                    "how": "whole-graph forward"}
        except (RuntimeError, MemoryError) as exc:  # too big for one pass: say so, then go layer by layer
            print(f"whole-graph forward failed ({type(exc).__name__}); layer-wise instead", flush=True)
    seconds = best_time(lambda: model.inference(looped, feat, batch_size=65536), repeats)
    return {"seconds": seconds, "nodes": graph.num_nodes(), "how": "layer-wise inference"}


@torch.no_grad()
def time_sampled(model, graph, fanouts: list, count: int, repeats: int) -> dict:
    from dgl_ltd.models import sampling_graph
    from dgl_ltd.sampling import neighbor_sampler, sample_blocks

    feat = graph.ndata["feat"]
    sampler = neighbor_sampler(fanouts[:len(model.layers)])
    prepared = sampling_graph(model, graph)
    targets = torch.randperm(graph.num_nodes(), generator=torch.Generator().manual_seed(0))[:count]

    def answer():
        for chunk in targets.split(1024):
            model(*sample_blocks(sampler, prepared, chunk, feat))

    return {"seconds": best_time(answer, repeats), "nodes": len(targets), "fanouts": list(sampler.fanouts)}


def teacher(name: str, graph):
    from dgl_ltd.models import build_teacher

    torch.manual_seed(0)
    return build_teacher(name, graph.ndata["feat"].shape[1], int(graph.ndata["label"].max()) + 1).eval()


def run(args, store: RunStore) -> None:
    for dataset in args.datasets.split(","):
        # the CPU is part of the key: each machine's MLP and teachers are timed in one run of their own
        base = {"bench": "mlp_inference", "dataset": dataset, "threads": args.threads, "cpu": _cpu(machine())}
        if dataset == "planted":
            base["num_nodes"] = args.num_nodes
        graph = None
        presets = ["ogbn-products", "amazon-computers"] if dataset == "planted" else [dataset]
        jobs = [(f"mlp:{preset}", "mlp", {}) for preset in presets]
        for name in TEACHERS:
            jobs += [(name, "full-graph", {"layerwise": args.layerwise}),
                     (name, "sampled", {"fanouts": args.fanouts, "sampled_nodes": args.sampled_nodes})]
        for model, mode, config in jobs:
            key = {**base, "model": model, "mode": mode}
            if store.get(key, config) is not None:
                continue
            graph = graph if graph is not None else load(dataset, args.num_nodes)
            repeats = 1 if dataset == "planted" and mode == "full-graph" else args.repeats
            if mode == "mlp":
                figures = time_mlp(graph, model.split(":", 1)[1], repeats)
            elif mode == "full-graph":
                figures = time_full_graph(teacher(model, graph), graph, repeats, args.layerwise)
            else:
                figures = time_sampled(teacher(model, graph), graph, args.fanouts, args.sampled_nodes, repeats)
            figures["per_100k"] = figures["seconds"] * PER / figures["nodes"]
            store.add(key, config, figures)
            print(f"{dataset} {model} {mode}: {figures['per_100k']:.4f} s per 100k nodes", flush=True)


def _row(dataset: str, machine: str, mlp: dict, name: str, full: dict | None, sampled: dict | None) -> str:
    cells = [dataset, machine, f"{mlp['nodes']:,}", f"{mlp['per_100k']:.4f} ({mlp['preset']})", name,
             f"{full['per_100k']:.3f}" if full else "-", full["how"] if full else "-",
             f"{sampled['per_100k']:.3f} ({','.join(map(str, sampled['fanouts']))})" if sampled else "-",
             f"{full['per_100k'] / mlp['per_100k']:.1f}x" if full else "-",
             f"{sampled['per_100k'] / mlp['per_100k']:.1f}x" if sampled else "-"]
    return "| " + " | ".join(cells) + " |"


def _cpu(machine: str) -> str:
    """The CPU's name from a record's machine line ('AMD EPYC, 2 cores, torch threads 2; python ...')."""
    return machine.split(" cores")[0].rsplit(", ", 1)[0].split(" Processor")[0]


def table(store: RunStore) -> list:
    head = ("| graph | CPU, torch threads | nodes | MLP s/100k (preset) | teacher | full-graph s/100k | how | "
            "sampled s/100k (fanouts) | full-graph / MLP | sampled / MLP |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for record in sorted(store.find(bench="mlp_inference", mode="mlp"), key=lambda r: r["figures"]["nodes"]):
        key, mlp = record["key"], record["figures"]
        match = {k: v for k, v in key.items() if k not in ("model", "mode")}
        match["cpu"] = key.get("cpu")  # None: only records made before the key held the CPU
        for name in TEACHERS:
            full = store.find(**match, model=name, mode="full-graph")
            sampled = store.find(**match, model=name, mode="sampled")
            cpu = key.get("cpu", _cpu(record["machine"]))  # records made before the key held the CPU
            lines.append(_row(key["dataset"], f"{cpu}, {key['threads']}", mlp, name,
                              full[0]["figures"] if full else None, sampled[0]["figures"] if sampled else None))
    return lines


def report(store: RunStore) -> str:
    """The whole report, from the store's records only."""
    parts = __doc__.split("\n\n")
    return "\n".join([
        "# MLP student against GNN teacher: inference speed", "",
        COMMAND, *provenance_lines(store), "",
        f"The hand-written reading of this table: {NOTES_LINK}.", "",
        " ".join(parts[1].split()), "",
        *[f"* {' '.join(part.strip(' *').split())}" for part in parts[2].split("\n* ")], "",
        " ".join(parts[3].split()), "",
        *table(store), ""])


def fanout_list(text: str) -> list:
    """argparse type: comma-separated positive neighbour counts, one per layer."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"fanouts must be comma-separated positive integers, got {text!r}")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=choice_list(DATASETS), default=",".join(DATASETS))
    parser.add_argument("--num-nodes", type=at_least(1000), default=1_000_000, help="nodes of the planted graph")
    parser.add_argument("--fanouts", type=fanout_list, default=[10, 10, 10], help="sampled: neighbours per layer")
    parser.add_argument("--sampled-nodes", type=at_least(1), default=20_000, help="sampled: target nodes timed")
    parser.add_argument("--repeats", type=at_least(1), default=3)
    parser.add_argument("--layerwise", action="store_true", help="layer-wise inference instead of one whole-graph pass")
    args = parse_store_args(parser)
    store = RunStore(STORE)
    if not args.table_only:
        run(args, store)
    print(write_text(REPORT, report(store)))


if __name__ == "__main__":
    main()
