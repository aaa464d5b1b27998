"""Data-parallel LTD (``procs``) against one process: time per batch, time in collectives, accuracy.

``speed``: LTD (a learning step at every batch) with neighbour sampling on a planted graph,
2 processes x 1 thread against 1 process x 2 threads (``torch.set_num_threads``), the same global
batch; prints seconds per epoch and per batch, and the time rank 0 spends in all-reduces.
``allreduce``: the bare latency of one all-reduce of the student's gradient buffer (2 gloo ranks).
``accuracy``: LTD on ``--dataset`` (cora), ``--procs 2`` against ``--procs 1``, a few seeds. Prints JSON lines.

    python benchmarks/ddp_speed.py speed --nodes 100000 --epochs 3
    python benchmarks/ddp_speed.py allreduce
    python benchmarks/ddp_speed.py accuracy --seeds 0,1,2 --epochs 40
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from dgl_ltd.distill import Distiller
from dgl_ltd.distill.launch import run_ranks
from dgl_ltd.models import build_model
from dgl_ltd.training import set_seed


def _fit(graph, teacher, feats: int, classes: int, procs: int, seed: int, **config):
    set_seed(seed)
    student = build_model("graphsage", feats, classes)
    return Distiller(student, "ltd", show_progress=False, procs=procs, **config).fit(graph, teacher, seed=seed)


def speed(args) -> None:
    from dgl_ltd.data import load_dataset

    graph = load_dataset("planted", num_nodes=args.nodes, avg_degree=10, num_classes=5, num_feats=64, seed=0)
    teacher = 4.0 * torch.nn.functional.one_hot(graph.ndata["label"], 5).float() + torch.randn(graph.num_nodes(), 5)
    config = dict(fanouts=(10, 10), batch_size=args.batch_size, batches_per_epoch=args.batches, warmup=0,
                  max_epochs=args.epochs, patience=args.epochs)
    for procs, threads in ((2, 1), (1, 2)):
        torch.set_num_threads(threads)
        start = time.perf_counter()
        res = _fit(graph, teacher, 64, 5, procs, 0, **config)
        print(json.dumps({"procs": procs, "threads_each": 1 if procs > 1 else threads,
                          "seconds_per_epoch": res.seconds_per_epoch,
                          "seconds_per_batch": res.seconds_per_epoch / res.history[0]["batches"],
                          "comm_seconds_per_batch": _mean(h["comm_seconds"] / h["batches"] for h in res.history)
                          if procs > 1 else None,
                          "wall_with_start": time.perf_counter() - start, "test_acc": res.test_acc}))


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def allreduce_rank(comm, numel: int, repeats: int) -> float:
    buffer = torch.randn(numel)
    comm.sum_gradients([buffer], [buffer])  # warm-up
    comm.seconds = 0.0
    for _ in range(repeats):
        comm.sum_gradients([buffer], [buffer])
    return comm.seconds / repeats


def allreduce(args) -> None:
    numel = sum(p.numel() for p in build_model("graphsage", 64, 5).parameters())
    seconds = run_ranks(allreduce_rank, 2, numel, args.repeats)
    print(json.dumps({"floats": numel, "seconds_per_allreduce": seconds}))


def accuracy(args) -> None:
    from dgl_ltd.data import load_dataset, load_logits

    from dgl_ltd.hparams import teacher_logits_path

    graph = load_dataset(args.dataset, args.data_dir)
    teacher = load_logits(teacher_logits_path(args.data_dir, args.dataset, "graphsage"), graph)
    config = dict(fanouts=(10, 10), batch_size=args.batch_size, max_epochs=args.epochs, patience=args.epochs,
                  warmup=20)
    for seed in args.seeds:
        for procs in (1, 2):
            torch.set_num_threads(1)
            res = _fit(graph, teacher, graph.ndata["feat"].shape[1], teacher.shape[1], procs, seed, **config)
            print(json.dumps({"dataset": args.dataset, "seed": seed, "procs": procs, "test_acc": res.test_acc, "val_acc": res.val_acc,
                              "best_epoch": res.best_epoch, "epochs": res.epochs}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("speed", "allreduce", "accuracy"))
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--dataset", default="cora", help="accuracy: the dataset (the paper's protocol and GraphSAGE "
                        "teacher logits)")
    args = parser.parse_args()
    {"speed": speed, "allreduce": allreduce, "accuracy": accuracy}[args.part](args)


if __name__ == "__main__":
    main()
