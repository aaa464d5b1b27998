"""Distiller defaults on a plain DGL pipeline: does each method beat the same student trained alone?

The setting of a DGL user: DGL's public split of cora and citeseer (train/val/test masks 140/500/1000
and 120/500/1000), random splits of amazon-computers and amazon-photo (20 + 20 training and 10
validation nodes per class, the rest test; seeded by the run's seed), teachers GCN, GAT and
GraphSAGE trained by this package on the training nodes (Adam, early stopping on validation), one
2-layer GraphSAGE student. Every method runs with :class:`dgl_ltd.Distiller`'s defaults on a graph
that carries only train/val/test masks: the label loss on the training nodes, LTD judged and
calibrated on the validation nodes, FT at the best temperature of its grid on validation. KD is
FT's grid run at T = 1 (the same run: KD is FT at T = 1). "Alone" trains the student on the
training labels with the same optimiser and early stopping (Adam 0.01, weight decay 5e-4,
patience 50).

Usage: python benchmarks/dropin.py [--datasets ...] [--teachers gcn,gat,graphsage] [--seeds 0,1,2,3,4]
[--table-only]. Runs are appended to results/runs/dropin.jsonl (resumable); the report is
results/reports/dropin.md.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict

import torch

from common import REPORTS, RUNS, at_least, choice_list, data_dir, mean_std, seed_list
from runstore import RunStore

DATASETS = ["cora", "citeseer", "amazon-computers", "amazon-photo"]
TEACHERS = ["gcn", "gat", "graphsage"]
STUDENT = "graphsage"
STORE = RUNS / "dropin.jsonl"
REPORT = REPORTS / "dropin.md"
SEEDS = "0,1,2,3,4"


def dgl_user_graph(dataset: str, seed: int):
    """The graph with train/val/test masks only, as a DGL user has it."""
    from dgl_ltd.data import load_dataset

    if dataset in ("cora", "citeseer"):
        graph = load_dataset(dataset, data_dir(), source="dgl", split="public")
    else:
        graph = load_dataset(dataset, data_dir(), protocol="random", seed=seed)
    for name in ("distill_mask", "temp_mask"):
        graph.ndata.pop(name, None)
    return graph


def teacher_logits(store: RunStore, graph, dataset: str, model: str, seed: int):
    from dgl_ltd.models import build_teacher
    from dgl_ltd.training import TEACHER_DEFAULTS, set_seed, train_teacher

    set_seed(seed)
    net = build_teacher(model, graph.ndata["feat"].shape[1], int(graph.ndata["label"].max()) + 1)
    res = train_teacher(net, graph, seed=seed, show_progress=False, **TEACHER_DEFAULTS[model])
    key = {"bench": "dropin", "dataset": dataset, "role": "teacher", "model": model, "seed": seed}
    if store.get(key, TEACHER_DEFAULTS[model]) is None:
        store.add(key, TEACHER_DEFAULTS[model], {"test_acc": res.test_acc, "val_acc": res.val_acc, "epochs": res.epochs})
    return res.logits


def student_alone(store: RunStore, graph, dataset: str, seed: int) -> None:
    from dgl_ltd.distill import DistillConfig
    from dgl_ltd.models import build_model
    from dgl_ltd.training import fit_classifier, set_seed

    defaults = DistillConfig()
    config = {"student": STUDENT, "lr": defaults.alpha, "weight_decay": defaults.weight_decay,
              "max_epochs": defaults.max_epochs, "patience": defaults.patience}
    key = {"bench": "dropin", "dataset": dataset, "role": "alone", "model": STUDENT, "seed": seed}
    if store.get(key, config) is not None:
        return
    set_seed(seed)
    nd = graph.ndata
    model = build_model(STUDENT, nd["feat"].shape[1], int(nd["label"].max()) + 1)
    start = time.perf_counter()
    res = fit_classifier(model, (graph, nd["feat"]), nd["label"], nd["train_mask"], nd["val_mask"], nd["test_mask"],
                         config["lr"], config["weight_decay"], config["max_epochs"], config["patience"])
    store.add(key, config, {"test_acc": res.test_acc, "val_acc": res.val_acc, "epochs": res.epochs,
                            "seconds": time.perf_counter() - start})


def distilled(store: RunStore, graph, teacher, dataset: str, model: str, method: str, seed: int) -> None:
    from dgl_ltd import Distiller
    from dgl_ltd.models import build_model
    from dgl_ltd.training import set_seed

    set_seed(seed)
    student = build_model(STUDENT, graph.ndata["feat"].shape[1], teacher.shape[1])
    distiller = Distiller(student, method, show_progress=False)
    config = dict(asdict(distiller.config), student=STUDENT)
    config.pop("show_progress")
    key = {"bench": "dropin", "dataset": dataset, "role": "student", "teacher": model, "method": method, "seed": seed}
    if store.get(key, config) is not None:
        return
    res = distiller.fit(graph, teacher, seed=seed)
    figures = {"test_acc": res.test_acc, "val_acc": res.val_acc, "epochs": res.epochs, "seconds": res.seconds,
               "tau_mean": float(res.temperatures.mean()), "tau_std": float(res.temperatures.std())}
    for name in ("resolved_init_tau", "temperature", "ft_trials", "meta_on"):
        if name in res.config:
            figures[name] = res.config[name]
    store.add(key, config, figures)


def run(args, store: RunStore) -> None:
    for dataset in args.datasets.split(","):
        for seed in args.seeds_list:
            graph = dgl_user_graph(dataset, seed)
            student_alone(store, graph, dataset, seed)
            for model in args.teachers.split(","):
                teacher = teacher_logits(store, graph, dataset, model, seed)
                for method in ("ft", "ltd"):
                    start = time.perf_counter()
                    distilled(store, graph, teacher, dataset, model, method, seed)
                    print(f"{dataset} {model} {method} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)


def _by_seed(records: list, seeds: list, pick=lambda f: f["test_acc"]) -> dict:
    """``{seed: accuracy}`` of the records whose seed is in ``seeds``."""
    return {r["key"]["seed"]: pick(r["figures"]) for r in records if r["key"]["seed"] in seeds}


def _kd(figures: dict) -> float:
    """KD's test accuracy: FT's grid run at T = 1."""
    return next(t["test_acc"] for t in figures["ft_trials"] if t["temperature"] == 1.0)


def table(seeds: list, store: RunStore) -> str:
    head = "| teacher | dataset | teacher acc | alone | KD | FT (tuned T) | LTD | KD-alone | FT-alone | LTD-alone |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    below = []
    for model in TEACHERS:
        for dataset in DATASETS:
            ft = store.find(bench="dropin", dataset=dataset, teacher=model, method="ft")
            if not ft:
                continue
            cells, accs = [], {}
            for name, records, pick in (
                    ("teacher", store.find(bench="dropin", dataset=dataset, role="teacher", model=model), None),
                    ("alone", store.find(bench="dropin", dataset=dataset, role="alone"), None),
                    ("KD", ft, _kd), ("FT", ft, None),
                    ("LTD", store.find(bench="dropin", dataset=dataset, teacher=model, method="ltd"), None)):
                accs[name] = _by_seed(records, seeds, pick or (lambda f: f["test_acc"]))
                stats = mean_std(list(accs[name].values())) if accs[name] else None
                cells.append(f"{stats[0]:.4f} ± {stats[1]:.4f} ({len(accs[name])})" if stats else "-")
            diffs = []
            for name in ("KD", "FT", "LTD"):
                paired = [accs[name][s] - accs["alone"][s] for s in accs[name] if s in accs["alone"]]
                if not paired:
                    diffs.append("-")
                    continue
                diff = 100 * sum(paired) / len(paired)  # over the seeds both have
                diffs.append(f"{diff:+.2f}")
                if diff < 0:
                    below.append(f"{name} with a {model} teacher on {dataset} ({diff:+.2f} points)")
            lines.append(f"| {model} | {dataset} | " + " | ".join(cells + diffs) + " |")
    lines += ["", "Below the student trained alone: " + ("; ".join(below) if below else "none") + "."]
    lines += ["", "Runs whose student did not learn (best validation accuracy under half the teacher's, what "
              "`Distiller.fit` warns of): " + ("; ".join(untrained(seeds, store)) or "none") + "."]
    return "\n".join(lines)


def untrained(seeds: list, store: RunStore) -> list:
    """The distilled runs whose best validation accuracy is under half their teacher's (KD: FT's T = 1 trial)."""
    found = []
    for teacher in store.find(bench="dropin", role="teacher"):
        key = teacher["key"]
        if key["seed"] not in seeds or "val_acc" not in teacher["figures"]:
            continue
        bar = 0.5 * teacher["figures"]["val_acc"]
        for run in store.find(bench="dropin", dataset=key["dataset"], teacher=key["model"], seed=key["seed"]):
            f, method = run["figures"], run["key"]["method"].upper()
            trials = [("KD", t) for t in f.get("ft_trials", []) if t["temperature"] == 1.0] + [(method, f)]
            found += [f"{name} with a {key['model']} teacher on {key['dataset']}, seed {key['seed']} (validation "
                      f"{t['val_acc']:.2f} against the teacher's {2 * bar:.2f}; test {t['test_acc']:.4f})"
                      for name, t in trials if "val_acc" in t and t["val_acc"] < bar]
    return sorted(found)


def report(store: RunStore) -> str:
    """The report over ``SEEDS``, from the store only."""
    seeds = [int(s) for s in SEEDS.split(",")]
    records = list(store.records.values())
    commits = sorted({r["commit"] for r in records})
    machines = sorted({r["machine"] for r in records})
    text = "\n".join([
        "# Distiller defaults against the student trained alone", "",
        f"Generated by `python benchmarks/dropin.py --table-only` from `{STORE.name}` "
        f"({len(records)} records; commits {', '.join(commits) or '-'}).", "",
        *[f"Machine: {m}" for m in machines], "",
        __doc__.split("\n\n")[1].replace("\n", " "), "",
        "Test accuracy, mean ± std over the seeds (count in brackets); the last three columns are "
        "points above the student alone, averaged over the seeds that have both.", "", table(seeds, store), ""])
    return text


def write_report(args, store: RunStore) -> str:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(report(store))  # over SEEDS whatever ran: the report regenerate.py writes
    return REPORT.read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=choice_list(DATASETS), default=",".join(DATASETS))
    parser.add_argument("--teachers", type=choice_list(TEACHERS), default=",".join(TEACHERS))
    parser.add_argument("--seeds", type=seed_list, default=SEEDS,
                        help="seeds to run (the report is always over the default seeds, as regenerate.py writes it)")
    parser.add_argument("--threads", type=at_least(1), default=2)
    parser.add_argument("--table-only", action="store_true", help="only rewrite the report from the store")
    args = parser.parse_args()
    args.seeds_list = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(args.threads)
    store = RunStore(STORE)
    if not args.table_only:
        run(args, store)
    print(write_report(args, store))


if __name__ == "__main__":
    main()
