"""One drop-in run whose student did not learn, rerun with one setting changed at a time.

The failing cell of ``dropin.py`` (default: LTD, GraphSAGE teacher, amazon-computers seed 3, the
student scoring at chance) is rerun with its exact inputs (``dropin.dgl_user_graph``, the teacher
of ``dropin.teacher_logits``, the seeded GraphSAGE student) under :class:`dgl_ltd.Distiller`'s
defaults and under each variant: a longer ``patience``, a lower student rate ``alpha``, and the
features row-normalised (each row divided by its sum; the teacher keeps the raw ones). Each record
also holds where the run's history shows the student learning: the first epoch whose validation
accuracy reaches half the teacher's, and the validation accuracy at epochs 5, 20 and 50.

Usage: python benchmarks/dropin_rescue.py [--dataset amazon-computers] [--teacher graphsage] [--seed 3]
[--method ltd] [--variants defaults,patience300,alpha0.005,rownorm] [--threads 1] [--table-only].
Runs go to results/runs/dropin_rescue.jsonl (resumable); the report is results/reports/dropin_rescue.md.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict

import torch

from common import REPORTS, RUNS, at_least, choice_list, parse_store_args
from runstore import RunStore, provenance_lines

STORE = RUNS / "dropin_rescue.jsonl"
REPORT = REPORTS / "dropin_rescue.md"
VARIANTS = {"defaults": {}, "patience300": {"patience": 300}, "alpha0.005": {"alpha": 0.005},
            "rownorm": {"row_normalise": True}}
PEEKS = (5, 20, 50)


def row_normalised(feat: torch.Tensor) -> torch.Tensor:
    """Each row divided by its sum (rows summing to 0 are kept)."""
    return feat / feat.sum(1, keepdim=True).clamp(min=torch.finfo(feat.dtype).tiny)


def history_figures(history: list, teacher_val: float) -> dict:
    """When the run's student learned: the first epoch above half the teacher's validation accuracy, and peeks."""
    learned = next((h["epoch"] for h in history if h["val_acc"] >= 0.5 * teacher_val), None)
    return {"first_epoch_above_half_teacher": learned,
            **{f"val_acc_epoch_{e}": history[e]["val_acc"] for e in PEEKS if e < len(history)}}


def run_variant(store: RunStore, args, name: str) -> None:
    from dropin import STUDENT, dgl_user_graph, teacher_logits

    from dgl_ltd import Distiller
    from dgl_ltd.metrics import accuracy
    from dgl_ltd.models import build_model
    from dgl_ltd.training import set_seed

    settings = dict(VARIANTS[name])
    normalise = settings.pop("row_normalise", False)
    graph = dgl_user_graph(args.dataset, args.seed)
    teacher = teacher_logits(store, graph, args.dataset, args.teacher, args.seed)
    set_seed(args.seed)
    student = build_model(STUDENT, graph.ndata["feat"].shape[1], teacher.shape[1])
    distiller = Distiller(student, args.method, show_progress=False, **settings)
    config = dict(asdict(distiller.config), student=STUDENT, row_normalise=normalise)
    config.pop("show_progress")
    key = {"bench": "dropin_rescue", "dataset": args.dataset, "teacher": args.teacher, "method": args.method,
           "seed": args.seed, "variant": name}
    if store.get(key, config) is not None:
        return
    feat = row_normalised(graph.ndata["feat"]) if normalise else None
    res = distiller.fit(graph, teacher, feat=feat, seed=args.seed)
    teacher_val = accuracy(teacher, graph.ndata["label"], graph.ndata["val_mask"])
    store.add(key, config, {"test_acc": res.test_acc, "val_acc": res.val_acc, "epochs": res.epochs,
                            "best_epoch": res.best_epoch, "seconds": res.seconds, "teacher_val_acc": teacher_val,
                            **history_figures(res.history, teacher_val)})
    print(f"{name}: test {res.test_acc:.4f}, {res.epochs} epochs", flush=True)


def report(store: RunStore) -> str:
    records = store.find(bench="dropin_rescue")
    head = ("| cell | variant | test acc | best val acc | teacher val acc | epochs | best epoch | "
            "first epoch above half the teacher | " + " | ".join(f"val acc at epoch {e}" for e in PEEKS) + " |")
    lines = ["# A drop-in run whose student did not learn, rerun with one setting changed", "",
             *provenance_lines(store, records), "", __doc__.split("\n\n")[1].replace("\n", " "), "",
             head, "|" + " --- |" * (head.count("|") - 1)]
    for r in records:
        k, f = r["key"], r["figures"]
        cell = f"{k['method']}, {k['teacher']} teacher, {k['dataset']} seed {k['seed']}"
        peeks = [f"{f[f'val_acc_epoch_{e}']:.2f}" if f"val_acc_epoch_{e}" in f else "-" for e in PEEKS]
        first = f["first_epoch_above_half_teacher"]
        lines.append(f"| {cell} | {k['variant']} | {f['test_acc']:.4f} | {f['val_acc']:.2f} | "
                     f"{f['teacher_val_acc']:.2f} | {f['epochs']} | {f['best_epoch']} | "
                     f"{'never' if first is None else first} | " + " | ".join(peeks) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["cora", "citeseer", "amazon-computers", "amazon-photo"],
                        default="amazon-computers")
    parser.add_argument("--teacher", choices=["gcn", "gat", "graphsage"], default="graphsage")
    parser.add_argument("--seed", type=at_least(0), default=3)
    parser.add_argument("--method", choices=["ft", "ltd"], default="ltd")
    parser.add_argument("--variants", type=choice_list(list(VARIANTS)), default=",".join(VARIANTS))
    args = parse_store_args(parser)
    store = RunStore(STORE)
    if not args.table_only:
        for name in args.variants.split(","):
            run_variant(store, args, name)
    REPORT.write_text(report(store))
    print(REPORT.read_text())


if __name__ == "__main__":
    main()
