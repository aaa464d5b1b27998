"""LTD-S against LTD end to end, measured side by side in one process (the same load for both).

For each model and seed, runs LTD and LTD-S (``tuned_config``, the paper's shipped teacher) back
to back, alternating which goes first, and records the wall time of the whole run (the
distiller's ``seconds``: every epoch until early stopping, with the meta-gradient steps), the
epoch count and the test accuracy. Writes ``benchmarks/results/ltd_s_speed_<dataset>.md``; runs
are cached in ``benchmarks/results/ltd_s_speed_runs.json``.

    python benchmarks/ltd_s_speed.py --dataset amazon-computers --models gcn,graphsage,appnp,sgc --seeds 0,1
    python benchmarks/ltd_s_speed.py --dataset amazon-computers --table-only
"""
from __future__ import annotations

import argparse
import statistics

import torch

from common import (MODELS, RESULTS, at_least, data_dir, dataset_name, header_lines, load_cache, model_list,
                    save_cache, seed_list)
from dgl_ltd.data import load_dataset, load_logits
from dgl_ltd.distill import Distiller
from dgl_ltd.settings import tuned_config
from dgl_ltd.hparams import teacher_logits_path
from dgl_ltd.models import build_model
from dgl_ltd.training import set_seed

CACHE = RESULTS / "ltd_s_speed_runs.json"
METHODS = ("ltd", "ltd-s")


def run(args) -> None:
    graph = load_dataset(args.dataset, data_dir())
    for model in args.models.split(","):
        teacher = load_logits(teacher_logits_path(data_dir(), args.dataset, model), graph)
        for seed in [int(s) for s in args.seeds.split(",")]:
            order = METHODS if seed % 2 == 0 else METHODS[::-1]
            for method in order:
                key = f"{args.dataset}/{model}/{method}/{seed}"
                if key in load_cache(CACHE):
                    continue
                set_seed(seed)
                student = build_model(model, graph.ndata["feat"].shape[1], teacher.shape[1])
                config = tuned_config(model, args.dataset, method, graph)
                res = Distiller(student, method, show_progress=False, **config).fit(graph, teacher, seed=seed)
                row = {"seconds": res.seconds, "epochs": res.epochs, "test_acc": res.test_acc}
                save_cache(CACHE, {**load_cache(CACHE), key: row})
                print(key, row, flush=True)


def table(args) -> str:
    cache = load_cache(CACHE)
    head = ("| model | seeds | LTD test acc | LTD-S test acc | LTD-S - LTD (points) | median s/run LTD | "
            "median s/run LTD-S | end-to-end speed-up | epochs LTD / LTD-S (median) | per-epoch speed-up |")
    lines = [
        f"# LTD-S against LTD end to end on {args.dataset}, side by side",
        "",
        *header_lines(RESULTS / f"ltd_s_speed_{args.dataset}.md", args,
                      f"python benchmarks/ltd_s_speed.py --dataset {args.dataset} --models {','.join(MODELS)} "
                      f"--seeds {args.table_seeds}", note="; runs may be split over processes by `--models`"),
        "",
        "Each seed runs LTD and LTD-S back to back in one process (alternating which goes first), with",
        "`tuned_config` and the paper's shipped teacher logits; seconds are whole runs until early",
        "stopping. Speed-ups are ratios of the medians over seeds; accuracy is the mean over seeds.",
        "",
        head,
        "|" + " --- |" * (head.count("|") - 1),
    ]
    for model in MODELS:  # every cached model: the runs may be split over processes by --models
        runs = {m: {k.rsplit("/", 1)[1]: v for k, v in cache.items() if k.startswith(f"{args.dataset}/{model}/{m}/")}
                for m in METHODS}
        seeds = sorted(set(runs["ltd"]) & set(runs["ltd-s"]) & set(args.table_seeds.split(",")))
        if not seeds:
            continue
        acc = {m: statistics.fmean(runs[m][s]["test_acc"] for s in seeds) for m in METHODS}
        sec = {m: statistics.median(runs[m][s]["seconds"] for s in seeds) for m in METHODS}
        ep = {m: statistics.median(runs[m][s]["epochs"] for s in seeds) for m in METHODS}
        per_epoch = statistics.median(runs["ltd"][s]["seconds"] / runs["ltd"][s]["epochs"] for s in seeds) / \
            statistics.median(runs["ltd-s"][s]["seconds"] / runs["ltd-s"][s]["epochs"] for s in seeds)
        lines.append(f"| {model} | {len(seeds)} | {acc['ltd']:.4f} | {acc['ltd-s']:.4f} | "
                     f"{100 * (acc['ltd-s'] - acc['ltd']):+.2f} | {sec['ltd']:.1f} | {sec['ltd-s']:.1f} | "
                     f"{sec['ltd'] / sec['ltd-s']:.2f} | {ep['ltd']:g} / {ep['ltd-s']:g} | {per_epoch:.2f} |")
    text = "\n".join(lines) + "\n"
    (RESULTS / f"ltd_s_speed_{args.dataset}.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=dataset_name, default="amazon-computers")
    parser.add_argument("--models", type=model_list, default=",".join(MODELS), help="comma-separated models")
    parser.add_argument("--seeds", type=seed_list, default="0,1", help="comma-separated student seeds to run")
    parser.add_argument("--table-seeds", type=seed_list, default="0,1",
                        help="the seeds the table averages (default 0,1, whatever --seeds ran)")
    parser.add_argument("--threads", type=at_least(1), default=1)
    parser.add_argument("--table-only", action="store_true", help="only rewrite the table from the cache")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.table_only:
        run(args)
    print(table(args))


if __name__ == "__main__":
    main()
