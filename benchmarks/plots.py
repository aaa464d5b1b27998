"""Pictures of the benchmark results: LTD against KD and FT per cell, seconds per epoch by method, and
peak memory of mini-batch LTD-S against graph size.

Reads the run stores of ``reproduce.py`` (``results/runs/reproduction.jsonl``: runs of today's
settings), ``epoch_cost.py`` (``results/runs/epoch_cost.jsonl``) and ``minibatch_memory.py``
(``results/runs/minibatch_memory.jsonl``); trains nothing.

Usage: python benchmarks/plots.py [--seeds 0,1,2,3,4] [--runs benchmarks/results/runs] [--out benchmarks/results/reports]
Writes ``reproduction_accuracy.png``, ``epoch_cost_<dataset>.png`` (one per dataset of the epoch_cost store)
and ``minibatch_memory.png``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import epoch_cost
import minibatch_memory
import reproduce
from common import DATASETS, MODELS, REPORTS, RUNS, mean_std, seed_list
from runstore import RunStore, load_parts

from dgl_ltd.report_plots import new_figure

METHODS = ("kd", "ft", "ltd")
LABELS = {"kd": "KD", "ft": "FT", "ltd": "LTD", "ltd-s": "LTD-S"}
COLOURS = {"kd": "tab:gray", "ft": "tab:orange", "ltd": "tab:blue", "ltd-s": "tab:green"}


def load_runs(store: RunStore) -> dict:
    """The runs of today's settings of ``reproduce.py``'s store, keyed ``dataset/model/method/seed`` and
    ``dataset/model/teacher`` (teacher accuracy)."""
    runs = {}
    for (dataset, model, method), found in reproduce.runs_by_cell(store).items():
        if method == "teacher":
            runs[f"{dataset}/{model}/teacher"] = found
        else:
            runs.update({f"{dataset}/{model}/{method}/{seed}": figures for seed, figures in found.items()})
    return runs


def cell_stats(runs: dict, seeds: list) -> dict:
    """``{dataset: {model: {"teacher": acc, method: (mean, std, n)}}}`` over ``seeds``; cells missing a method are left out."""
    stats = {}
    for dataset in DATASETS:
        for model in MODELS:
            per_method = {m: [runs[f"{dataset}/{model}/{m}/{s}"]["test_acc"] for s in seeds
                              if f"{dataset}/{model}/{m}/{s}" in runs] for m in METHODS}
            teacher = runs.get(f"{dataset}/{model}/teacher")
            if teacher is None or not all(per_method.values()):
                continue
            cell = {"teacher": teacher}
            cell.update({m: (*mean_std(accs), len(accs)) for m, accs in per_method.items()})
            stats.setdefault(dataset, {})[model] = cell
    return stats


def accuracy_figure(stats: dict):
    """One panel per dataset: mean test accuracy (+- std over seeds) of KD, FT and LTD per model, teacher marked."""
    figure, axes = new_figure(len(stats), 1, size=(7.5, 2.6 * len(stats)))
    axes = np.atleast_1d(axes)
    width = 0.8 / len(METHODS)
    for ax, (dataset, cells) in zip(axes, stats.items()):
        models = list(cells)
        x = np.arange(len(models))
        for i, method in enumerate(METHODS):
            means = [cells[m][method][0] for m in models]
            stds = [cells[m][method][1] for m in models]
            ax.bar(x + (i - 1) * width, means, width, yerr=stds, capsize=2, color=COLOURS[method], label=LABELS[method])
        ax.scatter(x, [cells[m]["teacher"] for m in models], marker="_", s=600, color="black", zorder=3,
                   label="teacher")
        low = [cells[m][k][0] - cells[m][k][1] for m in models for k in METHODS] + [cells[m]["teacher"] for m in models]
        high = [cells[m][k][0] + cells[m][k][1] for m in models for k in METHODS] + [cells[m]["teacher"] for m in models]
        ax.set_ylim(min(low) - 0.01, min(1.0, max(high) + 0.01))
        ax.set_xticks(x, models)
        ax.set_ylabel("test accuracy")
        ax.set_title(dataset, fontsize="medium")
    axes[0].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    seeds = sorted({c[m][2] for cells in stats.values() for c in cells.values() for m in METHODS})
    figure.suptitle(f"Students of the teacher's architecture: mean +- std over {'/'.join(map(str, seeds))} seeds")
    return figure


def cost_figure(costs: dict, dataset: str):
    """Seconds per epoch of every method, grouped by model."""
    figure, ax = new_figure()
    models = list(costs)
    methods = [m for m in LABELS if all(m in costs[model] for model in models)]
    width = 0.8 / len(methods)
    x = np.arange(len(models))
    for i, method in enumerate(methods):
        seconds = [costs[model][method] for model in models]
        bars = ax.bar(x + (i - (len(methods) - 1) / 2) * width, seconds, width, color=COLOURS[method],
                      label=LABELS[method])
        ax.bar_label(bars, fmt="%.2f", fontsize="x-small")
    ax.set_xticks(x, models)
    ax.set_ylabel("seconds per epoch")
    ax.set_title(f"Seconds per epoch by method on {dataset} (epoch_cost.py)")
    ax.legend()
    return figure


def memory_figure(mini: list, full: list):
    """Training peak (and peak minus data) against nodes, mini-batch LTD-S and full-graph LTD, with the
    full-graph linear estimate carried out to the largest mini-batch graph."""
    gib = minibatch_memory.GIB
    figure, ax = new_figure(size=(6, 4))
    for runs, label, marker in ((mini, "mini-batch LTD-S", "o"), (full, "full-graph LTD", "s")):
        done = [r for r in runs if "failed" not in r]
        nodes = [r["num_nodes"] / 1e6 for r in done]
        ax.plot(nodes, [r["phases"]["train"]["peak"] / gib for r in done], marker=marker, label=f"{label}: train peak")
        ax.plot(nodes, [(r["phases"]["train"]["peak"] - r["data"]["total"]) / gib for r in done], marker=marker,
                linestyle="--", label=f"{label}: train peak - data")
    done = sorted((r for r in full if "failed" not in r), key=lambda r: r["num_nodes"])[-2:]
    if len(done) == 2 and mini:
        (n0, p0), (n1, p1) = [(r["num_nodes"] / 1e6, r["phases"]["train"]["peak"] / gib) for r in done]
        far = max(r["num_nodes"] for r in mini) / 1e6
        ax.plot([n1, far], [p1, p1 + (p1 - p0) / (n1 - n0) * (far - n1)], color="grey", linestyle=":",
                label="full-graph LTD: linear estimate")
    ax.set_xlabel("nodes (millions), average degree 50")
    ax.set_ylabel("GiB (resident set)")
    ax.set_title("Peak memory during training, GraphSAGE student")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure


def memory_picture(store: Path, out: Path) -> list:
    """``[out/minibatch_memory.png]`` drawn from the memory store ``store``; ``[]`` when it holds no runs."""
    parts = load_parts(store) if store.is_file() else {}
    if "minibatch" not in parts:
        return []
    figure = memory_figure(parts["minibatch"], parts.get("full_graph", []))
    return [save(figure, out / minibatch_memory.PICTURE.name)]


def main(argv: list | None = None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_list, default="0,1,2,3,4", help="the seeds each cell averages")
    parser.add_argument("--runs", type=Path, default=RUNS, help="folder of the run stores")
    parser.add_argument("--out", type=Path, default=REPORTS, help="folder for the PNG files")
    args = parser.parse_args(argv)
    written = []
    stats = cell_stats(load_runs(RunStore(args.runs / reproduce.STORE.name)), [int(s) for s in args.seeds.split(",")])
    if stats:
        written.append(save(accuracy_figure(stats), args.out / "reproduction_accuracy.png"))
    costs = RunStore(args.runs / epoch_cost.STORE.name)
    for dataset in DATASETS:
        if costs.find(dataset=dataset):
            figure = cost_figure(epoch_cost.dataset_costs(costs, dataset), dataset)
            written.append(save(figure, args.out / f"epoch_cost_{dataset}.png"))
    written += memory_picture(args.runs / minibatch_memory.STORE.name, args.out)
    for path in written:
        print(path)
    return written


def save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


if __name__ == "__main__":
    main()
