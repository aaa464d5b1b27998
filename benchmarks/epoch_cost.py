"""Seconds per epoch of KD, FT, LTD and LTD-S, side by side, on one dataset (default amazon-computers).

Each repeat runs every method for a fixed number of epochs (no early stopping: patience larger
than the run; the temperatures learn from epoch ``--warmup`` on), interleaving the methods so that
background load hits them alike; the figure is the median over repeats of each run's mean seconds
per epoch (the distiller's whole-run mean, so start-up costs are included alike for all methods).

Usage: python benchmarks/epoch_cost.py [--dataset amazon-computers] [--models gcn,gat] [--epochs 30]
       [--repeats 3] [--threads 2]
Appends one record per model to benchmarks/results/runs/epoch_cost.jsonl and writes
benchmarks/results/reports/epoch_cost.md (a table per dataset) from the store.
"""
from __future__ import annotations

import argparse
import statistics

import torch

from common import (DATASETS, REPORTS, RUNS, at_least, data_dir, dataset_name, model_list, table_head,
                    write_text)
from runstore import RunStore, provenance_lines

METHODS = ["kd", "ft", "ltd", "ltd-s"]
STORE = RUNS / "epoch_cost.jsonl"
REPORT = REPORTS / "epoch_cost.md"


def run_config(model: str, dataset: str, graph, args) -> dict:
    """The settings of one model's runs: every method's config, epochs, warm-up, repeats and threads."""
    from dgl_ltd.settings import tuned_config

    configs = {}
    for method in METHODS:
        config = tuned_config(model, dataset, method, graph)
        config.update(max_epochs=args.epochs, patience=10 * args.epochs)
        if method.startswith("ltd"):
            config["warmup"] = args.warmup
        configs[method] = config
    return {"methods": configs, "epochs": args.epochs, "warmup": args.warmup, "repeats": args.repeats,
            "threads": args.threads}


def measure(model: str, graph, args, store: RunStore) -> None:
    """Time every method on one model, interleaved over the repeats; add the model's record."""
    from dgl_ltd.data import load_logits
    from dgl_ltd.distill import Distiller
    from dgl_ltd.hparams import teacher_logits_path
    from dgl_ltd.models import build_model
    from dgl_ltd.training import set_seed

    teacher = load_logits(teacher_logits_path(data_dir(), args.dataset, model), graph)
    config = run_config(model, args.dataset, graph, args)
    times = {m: [] for m in METHODS}
    for repeat in range(args.repeats):
        for method in METHODS:
            set_seed(repeat)
            student = build_model(model, graph.ndata["feat"].shape[1], teacher.shape[1])
            res = Distiller(student, method, show_progress=False, **config["methods"][method]).fit(
                graph, teacher, seed=repeat)
            times[method].append(res.seconds_per_epoch)
            print(model, method, repeat, f"{res.seconds_per_epoch:.4f}", flush=True)
    store.add({"dataset": args.dataset, "model": model}, config,
              {"median_seconds_per_epoch": {m: statistics.median(v) for m, v in times.items()},
               "seconds_per_epoch": times})


def dataset_costs(store: RunStore, dataset: str) -> dict:
    """``{model: {method: median seconds per epoch}}`` of one dataset (the newest record of a model wins)."""
    return {r["key"]["model"]: r["figures"]["median_seconds_per_epoch"] for r in store.find(dataset=dataset)}


def report(store: RunStore) -> str:
    lines = ["# Seconds per epoch by method", "", *provenance_lines(store), "",
             "Per model: fixed-length runs (no early stopping; temperatures learned from the warm-up epoch on),",
             "methods interleaved, median over the repeats of each run's mean seconds per epoch (including the",
             "per-epoch validation pass that early stopping needs). LTD-S: meta-gradient every `meta_every`",
             "epochs (tuned_config's default) on all nodes."]
    for dataset in DATASETS:
        records = store.find(dataset=dataset)
        if not records:
            continue
        settings = sorted({(r["config"]["epochs"], r["config"]["warmup"], r["config"]["repeats"],
                            r["config"]["threads"]) for r in records})
        lines += ["", f"## {dataset}", "", "Runs of " + "; ".join(
            f"{e} epochs (temperatures learned from epoch {w}), {n} repeats, {t} thread(s)" for e, w, n, t in settings)
            + ".", "", *table_head("| model | KD | FT | LTD | LTD-S | LTD / KD | LTD / LTD-S |")]
        for model, med in dataset_costs(store, dataset).items():
            lines.append(f"| {model} | {med['kd']:.4f} | {med['ft']:.4f} | {med['ltd']:.4f} | {med['ltd-s']:.4f} | "
                         f"{med['ltd'] / med['kd']:.2f} | {med['ltd'] / med['ltd-s']:.2f} |")
    return "\n".join(lines) + "\n"


def write_report() -> str:
    return write_text(REPORT, report(RunStore(STORE)))


def main() -> None:
    from dgl_ltd.data import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=dataset_name, default="amazon-computers")
    parser.add_argument("--models", type=model_list, default="gcn,gat", help="comma-separated models")
    parser.add_argument("--epochs", type=at_least(1), default=30, help="timed epochs per run")
    parser.add_argument("--warmup", type=at_least(0), default=2, help="LTD warm-up epochs (temperatures frozen; they learn from this epoch on)")
    parser.add_argument("--repeats", type=at_least(1), default=3, help="runs per method (the median is reported)")
    parser.add_argument("--threads", type=at_least(1), default=2)
    parser.add_argument("--table-only", action="store_true", help="only rewrite the report from the run store")
    args = parser.parse_args()
    if args.warmup >= args.epochs:
        parser.error(f"--warmup {args.warmup} leaves no learning epoch in --epochs {args.epochs}; lower --warmup")
    torch.set_num_threads(args.threads)
    if not args.table_only:
        graph, store = load_dataset(args.dataset, data_dir()), RunStore(STORE)
        for model in args.models.split(","):
            measure(model, graph, args, store)
    print(write_report())


if __name__ == "__main__":
    main()
