"""LTD-S against LTD end to end, measured side by side in one process (the same load for both).

For each model and seed, runs LTD and LTD-S (``tuned_config``, the paper's shipped teacher) back
to back, alternating which goes first, and records the wall time of the whole run (the
distiller's ``seconds``: every epoch until early stopping, with the meta-gradient steps), the
epoch count and the test accuracy. Every run appends a record to
``benchmarks/results/runs/ltd_s_speed.jsonl``; ``benchmarks/results/reports/ltd_s_speed.md`` (one
table per dataset) is written from the store.

    python benchmarks/ltd_s_speed.py --dataset amazon-computers --models gcn,graphsage,appnp,sgc --seeds 0,1
    python benchmarks/ltd_s_speed.py --dataset amazon-computers --table-only
"""
from __future__ import annotations

import argparse
import statistics

import torch

from common import (DATASETS, MODELS, REPORTS, RUNS, at_least, data_dir, dataset_name, model_list, seed_list, table_head,
                    write_text)
from runstore import RunStore, provenance_lines

STORE = RUNS / "ltd_s_speed.jsonl"
REPORT = REPORTS / "ltd_s_speed.md"
METHODS = ("ltd", "ltd-s")
TABLE_SEEDS = (0, 1)  # the seeds the tables average


def run(args) -> None:
    from dgl_ltd.data import load_dataset, load_logits
    from dgl_ltd.distill import Distiller
    from dgl_ltd.hparams import teacher_logits_path
    from dgl_ltd.models import build_model
    from dgl_ltd.settings import tuned_config
    from dgl_ltd.training import set_seed

    graph = load_dataset(args.dataset, data_dir())
    for model in args.models.split(","):
        teacher = load_logits(teacher_logits_path(data_dir(), args.dataset, model), graph)
        for seed in [int(s) for s in args.seeds.split(",")]:
            order = METHODS if seed % 2 == 0 else METHODS[::-1]
            for method in order:
                key = {"dataset": args.dataset, "model": model, "method": method, "seed": seed}
                config = tuned_config(model, args.dataset, method, graph)
                store = RunStore(STORE)  # re-read: runs may be split over processes by --models
                if store.get(key, config) is not None:
                    continue
                set_seed(seed)
                student = build_model(model, graph.ndata["feat"].shape[1], teacher.shape[1])
                res = Distiller(student, method, show_progress=False, **config).fit(graph, teacher, seed=seed)
                row = {"seconds": res.seconds, "epochs": res.epochs, "test_acc": res.test_acc}
                store.add(key, config, row)
                print(key, row, flush=True)


def dataset_rows(store: RunStore, dataset: str) -> list:
    """The table rows of one dataset: every model with both methods on seeds of ``TABLE_SEEDS``."""
    rows = []
    for model in MODELS:
        runs = {m: {r["key"]["seed"]: r["figures"] for r in store.find(dataset=dataset, model=model, method=m)}
                for m in METHODS}
        seeds = sorted(set(runs["ltd"]) & set(runs["ltd-s"]) & set(TABLE_SEEDS))
        if not seeds:
            continue
        acc = {m: statistics.fmean(runs[m][s]["test_acc"] for s in seeds) for m in METHODS}
        sec = {m: statistics.median(runs[m][s]["seconds"] for s in seeds) for m in METHODS}
        ep = {m: statistics.median(runs[m][s]["epochs"] for s in seeds) for m in METHODS}
        per_epoch = statistics.median(runs["ltd"][s]["seconds"] / runs["ltd"][s]["epochs"] for s in seeds) / \
            statistics.median(runs["ltd-s"][s]["seconds"] / runs["ltd-s"][s]["epochs"] for s in seeds)
        rows.append(f"| {model} | {len(seeds)} | {acc['ltd']:.4f} | {acc['ltd-s']:.4f} | "
                    f"{100 * (acc['ltd-s'] - acc['ltd']):+.2f} | {sec['ltd']:.1f} | {sec['ltd-s']:.1f} | "
                    f"{sec['ltd'] / sec['ltd-s']:.2f} | {ep['ltd']:g} / {ep['ltd-s']:g} | {per_epoch:.2f} |")
    return rows


def report(store: RunStore) -> str:
    lines = ["# LTD-S against LTD end to end, side by side", "", *provenance_lines(store), "",
             "Each seed runs LTD and LTD-S back to back in one process (alternating which goes first), with",
             "`tuned_config` and the paper's shipped teacher logits; seconds are whole runs until early",
             f"stopping. Speed-ups are ratios of the medians over seeds {', '.join(map(str, TABLE_SEEDS))}; "
             "accuracy is the mean over those seeds."]
    for dataset in DATASETS:
        rows = dataset_rows(store, dataset)
        if rows:
            lines += ["", f"## {dataset}", "",
                      *table_head("| model | seeds | LTD test acc | LTD-S test acc | LTD-S - LTD (points) | "
                                  "median s/run LTD | median s/run LTD-S | end-to-end speed-up | "
                                  "epochs LTD / LTD-S (median) | per-epoch speed-up |"), *rows]
    return "\n".join(lines) + "\n"


def write_report() -> str:
    return write_text(REPORT, report(RunStore(STORE)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=dataset_name, default="amazon-computers")
    parser.add_argument("--models", type=model_list, default=",".join(MODELS), help="comma-separated models")
    parser.add_argument("--seeds", type=seed_list, default="0,1", help="comma-separated student seeds to run")
    parser.add_argument("--threads", type=at_least(1), default=1)
    parser.add_argument("--table-only", action="store_true", help="only rewrite the report from the run store")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.table_only:
        run(args)
    print(write_report())


if __name__ == "__main__":
    main()
