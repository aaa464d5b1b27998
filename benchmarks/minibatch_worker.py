"""One distillation run on a planted graph in a fresh process; prints one JSON line of its time and memory.

Builds ``planted`` with ``--num-nodes`` (ogbn-products-like otherwise: average degree 50, 47 classes,
100 features, seed 0) and seeded stand-in teacher logits, then runs a GraphSAGE student with
:class:`minibatch_probe.ProbedDistiller`: mini-batch (``--fanouts``, ``--batch-size``,
``--batches`` per epoch) or full-graph (``--full-graph``), ``--epochs`` epochs, learning from the
first step (warm-up 0). Called by ``minibatch_cost.py`` and ``minibatch_memory.py``; run it alone as

    python benchmarks/minibatch_worker.py --num-nodes 250000 --method ltd-s --batches 8
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from common import at_least, choice_list
from minibatch_probe import ProbedDistiller, data_bytes, peak_bytes, reset_peak, rss_bytes, synthetic_teacher


def fanout_list(text: str) -> tuple:
    """Comma-separated positive fanouts, e.g. ``10,10``."""
    return tuple(at_least(1)(part) for part in text.split(","))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-nodes", type=at_least(5000), required=True)
    parser.add_argument("--method", type=choice_list(("kd", "ltd", "ltd-s")), default="ltd-s")
    parser.add_argument("--full-graph", action="store_true", help="full-graph training (no fanouts)")
    parser.add_argument("--fanouts", type=fanout_list, default=(10, 10))
    parser.add_argument("--batch-size", type=at_least(1), default=1024)
    parser.add_argument("--batches", type=at_least(1), default=8, help="batches per epoch (mini-batch)")
    parser.add_argument("--epochs", type=at_least(1), default=1)
    parser.add_argument("--meta-every", type=at_least(1), default=8)
    parser.add_argument("--threads", type=at_least(1), default=1)
    return parser.parse_args(argv)


def distill_config(args) -> dict:
    config = dict(max_epochs=args.epochs, patience=10 * args.epochs, warmup=0, meta_every=args.meta_every,
                  show_progress=False)
    if not args.full_graph:
        config.update(fanouts=args.fanouts, batch_size=args.batch_size, batches_per_epoch=args.batches)
    return config


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from dgl_ltd.data import load_dataset
    from dgl_ltd.models import build_model

    out = {"rss_after_import": rss_bytes(), "peak_after_import": peak_bytes()}
    start = time.perf_counter()
    graph = load_dataset("planted", num_nodes=args.num_nodes, seed=0)
    teacher = synthetic_teacher(graph, seed=0)
    out.update(build_seconds=time.perf_counter() - start, build_peak=peak_bytes(), rss_after_build=rss_bytes(),
               num_nodes=graph.num_nodes(), num_edges=graph.num_edges(),
               val_nodes=int(graph.ndata["val_mask"].sum()))
    reset_peak()
    torch.manual_seed(0)
    student = build_model("graphsage", graph.ndata["feat"].shape[1], teacher.shape[1])
    distiller = ProbedDistiller(student, args.method, **distill_config(args))
    start = time.perf_counter()
    res = distiller.fit(graph, teacher, seed=0)
    out.update(fit_seconds=time.perf_counter() - start, train_seconds=res.seconds, epochs_run=res.epochs,
               test_acc=res.test_acc, data=data_bytes(graph, teacher), **distiller.probe.summary())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
