"""Seconds per epoch of KD, FT, LTD and LTD-S, side by side, on one dataset (default amazon-computers).

Each repeat runs every method for a fixed number of epochs (no early stopping: patience larger
than the run; the temperatures learn from epoch ``--warmup`` on), interleaving the methods so that
background load hits them alike; the figure is the median over repeats of each run's mean seconds
per epoch (the distiller's whole-run mean, so start-up costs are included alike for all methods).

Usage: python benchmarks/epoch_cost.py [--dataset amazon-computers] [--models gcn,gat] [--epochs 30]
       [--repeats 3] [--threads 2]
Writes benchmarks/results/epoch_cost_<dataset>.md.
"""
from __future__ import annotations

import argparse
import statistics

import torch

from common import RESULTS, at_least, data_dir, dataset_name, git_commit, machine, model_list

from dgl_ltd.data import load_dataset, load_logits
from dgl_ltd.distill import Distiller
from dgl_ltd.settings import tuned_config
from dgl_ltd.hparams import teacher_logits_path
from dgl_ltd.models import build_model
from dgl_ltd.training import set_seed

METHODS = ["kd", "ft", "ltd", "ltd-s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=dataset_name, default="amazon-computers")
    parser.add_argument("--models", type=model_list, default="gcn,gat", help="comma-separated models")
    parser.add_argument("--epochs", type=at_least(1), default=30, help="timed epochs per run")
    parser.add_argument("--warmup", type=at_least(0), default=2, help="LTD warm-up epochs (temperatures frozen; they learn from this epoch on)")
    parser.add_argument("--repeats", type=at_least(1), default=3, help="runs per method (the median is reported)")
    parser.add_argument("--threads", type=at_least(1), default=2)
    args = parser.parse_args()
    if args.warmup >= args.epochs:
        parser.error(f"--warmup {args.warmup} leaves no learning epoch in --epochs {args.epochs}; lower --warmup")
    torch.set_num_threads(args.threads)
    graph = load_dataset(args.dataset, data_dir())
    rows = []
    for model in args.models.split(","):
        path = teacher_logits_path(data_dir(), args.dataset, model)
        teacher = load_logits(path, graph)
        times = {m: [] for m in METHODS}
        for repeat in range(args.repeats):
            for method in METHODS:
                config = tuned_config(model, args.dataset, method, graph)
                config.update(max_epochs=args.epochs, patience=10 * args.epochs, show_progress=False)
                if method.startswith("ltd"):
                    config["warmup"] = args.warmup
                set_seed(repeat)
                student = build_model(model, graph.ndata["feat"].shape[1], teacher.shape[1])
                res = Distiller(student, method, **config).fit(graph, teacher, seed=repeat)
                times[method].append(res.seconds_per_epoch)
                print(model, method, repeat, f"{res.seconds_per_epoch:.4f}", flush=True)
        med = {m: statistics.median(v) for m, v in times.items()}
        rows.append((model, med))
    lines = [
        f"# Seconds per epoch on {args.dataset}",
        "",
        f"Command: `python benchmarks/epoch_cost.py --dataset {args.dataset} --models {args.models} "
        f"--epochs {args.epochs} --warmup {args.warmup} --repeats {args.repeats} --threads {args.threads}` (commit {git_commit()}).",
        f"Machine: {machine()}.",
        "",
        f"{args.epochs} epochs per run (temperatures learned from epoch {args.warmup}), methods interleaved,",
        f"median over {args.repeats} repeats of each run's mean seconds per epoch (including the per-epoch",
        "validation pass that early stopping needs). LTD-S: meta-gradient every `meta_every` epochs",
        "(tuned_config's default) on all nodes.",
        "",
        "| model | KD | FT | LTD | LTD-S | LTD / KD | LTD / LTD-S |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for model, med in rows:
        lines.append(f"| {model} | {med['kd']:.4f} | {med['ft']:.4f} | {med['ltd']:.4f} | {med['ltd-s']:.4f} | "
                     f"{med['ltd'] / med['kd']:.2f} | {med['ltd'] / med['ltd-s']:.2f} |")
    text = "\n".join(lines) + "\n"
    (RESULTS / f"epoch_cost_{args.dataset}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
