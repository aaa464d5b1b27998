"""The report of ``benchmarks/glnn.py``: results/reports/glnn.md, generated from results/runs/glnn.jsonl only.

The hand-written reading of its tables is results/notes/glnn_notes.md, which the report links to.
"""
from __future__ import annotations

import statistics

from common import REPORTS, RUNS, mean_std, write_text
from runstore import RunStore, provenance_lines

STORE = RUNS / "glnn.jsonl"
REPORT = REPORTS / "glnn.md"
NOTES_LINK = "[`notes/glnn_notes.md`](../notes/glnn_notes.md)"
COMMAND = ("python benchmarks/glnn.py --datasets cora,citeseer,amazon-computers,amazon-photo --seeds 0,1,2,3,4 "
           "--threads 1")
COLUMNS = ("teacher", "alone", "KD", "FT", "LTD", "LTD-S")


def _kd(figures: dict) -> float:
    """KD's test accuracy: FT's grid run at T = 1."""
    return next(t["test_acc"] for t in figures["ft_trials"] if t["temperature"] == 1.0)


def _student(records: list, method: str, pick=None) -> dict:
    pick = pick or (lambda f: f["test_acc"])
    return {r["key"]["seed"]: pick(r["figures"]) for r in records if r["key"].get("method") == method}


def cell_values(store, setting: str, dataset: str, teacher: str) -> dict:
    """Per column, {seed: test accuracy} of one (setting, dataset, teacher) row."""
    match = {"bench": "glnn", "setting": setting, "dataset": dataset}
    students = store.find(**match, role="student", teacher=teacher)
    teachers = {r["key"]["seed"]: r["figures"]["test_acc"] for r in store.find(**match, role="teacher", teacher=teacher)}
    return {"teacher": teachers,
            "alone": {r["key"]["seed"]: r["figures"]["test_acc"] for r in store.find(**match, role="alone")},
            # KD runs on its own where FT's trials are not scored on the table's nodes (inductive)
            "KD": _student(students, "kd") or (_student(students, "ft", _kd) if setting == "transductive" else {}),
            "FT": _student(students, "ft"),
            "LTD": _student(students, "ltd"), "LTD-S": _student(students, "ltd-s")}


def _fmt(values: dict) -> str:
    if not values:
        return "-"
    mean, std = mean_std([100 * v for v in values.values()])
    return f"{mean:.2f} ± {std:.2f} ({len(values)})"


def _mean(values: dict):
    return 100 * statistics.fmean(values.values()) if values else None


def accuracy_table(store, setting: str) -> tuple:
    """The table of one setting, and the LTD - max(KD, FT) gaps of its rows."""
    from glnn import DATASETS, GLNN_PUBLISHED, TEACHERS

    head = "| dataset | teacher model | teacher | MLP alone | KD (T=1) | FT tuned | LTD | LTD-S | GLNN (published) | LTD - max(KD, FT) | seeds |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    gaps = []
    for dataset in DATASETS:
        for teacher in TEACHERS:
            values = cell_values(store, setting, dataset, teacher)
            if not values["FT"]:
                continue
            seeds = sorted(values["FT"])
            both = [s for s in seeds if s in values["LTD"]]
            gap = None
            if both:  # on the seeds where both ran
                best = max(_mean({s: values["KD"][s] for s in both}), _mean({s: values["FT"][s] for s in both}))
                gap = _mean({s: values["LTD"][s] for s in both}) - best
                gaps.append(gap)
            published = GLNN_PUBLISHED[dataset][2] if setting == "transductive" and teacher == "graphsage" else None
            cells = [_fmt(values[c]) for c in COLUMNS]
            lines.append(f"| {dataset} | {teacher} | " + " | ".join(cells) + f" | {published or '-'} | "
                         f"{'-' if gap is None else f'{gap:+.2f}'} | {','.join(map(str, seeds))} |")
    return lines, gaps


def temperature_table(store, setting: str) -> list:
    """Where LTD's temperatures went (mean over seeds), on the test nodes of the training graph."""
    head = ("| dataset | teacher model | start T0 | tau mean | tau std | nodes moved >10% from T0 | "
            "corr(tau, MLP right) | corr(tau, teacher right) | corr(tau, log degree) |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for record_set in _grouped(store.find(bench="glnn", setting=setting, role="student", method="ltd")):
        first = record_set[0]["key"]
        cells = []
        for name in ("tau_start", "tau_mean", "tau_std", "share_moved_10pct", "corr_tau_mlp_correct",
                     "corr_tau_teacher_correct", "corr_tau_log_degree"):
            values = [r["figures"].get(name) for r in record_set if r["figures"].get(name) is not None]
            cells.append(f"{statistics.fmean(values):+.3f}" if values else "-")
        lines.append(f"| {first['dataset']} | {first['teacher']} | " + " | ".join(cells) + " |")
    return lines


def _grouped(records: list) -> list:
    groups = {}
    for r in records:
        groups.setdefault((r["key"]["dataset"], r["key"]["teacher"]), []).append(r)
    return [groups[k] for k in sorted(groups)]


def _summary(setting_gaps: list) -> list:
    return [f"* {name}: LTD - max(KD, FT tuned) = {statistics.fmean(gaps):+.2f} points on average over "
            f"{len(gaps)} rows (target: at least +0.5)" for name, gaps in setting_gaps if gaps]


def _method_lines() -> list:
    """The methods and settings, as ``glnn.py``'s docstring states them."""
    import glnn

    parts = glnn.__doc__.split("\n\n")
    return [" ".join(parts[1].split()), "",
            *[f"* {' '.join(part.strip(' *').split())}" for part in parts[2].split("\n* ")]]


def report(store: RunStore) -> str:
    """The whole report, from the store's records only."""
    trans, trans_gaps = accuracy_table(store, "transductive")
    ind, ind_gaps = accuracy_table(store, "inductive")
    shares = sorted({r["key"]["share"] for r in store.records.values() if r["key"].get("setting") == "inductive"})
    return "\n".join([
        "# GNN-to-MLP distillation (GLNN setting) with learned node temperatures", "",
        f"Command: `{COMMAND}` (and `--table-only` to rebuild this file).", *provenance_lines(store), "",
        f"The hand-written reading of these tables: {NOTES_LINK}.", "",
        *_method_lines(), "",
        "Test accuracy in percent, mean ± std over the seeds (count in brackets; the teacher of the "
        "transductive table is one shipped logits file). GLNN's published figure is its GraphSAGE-teacher "
        "student under CPF's splits (20 labels and 30 validation nodes per class), not this split.", "",
        "## Transductive", "", *trans, "",
        "## Inductive (held-out nodes" + (f", share {', '.join(map(str, shares))})" if shares else ")"), "", *ind, "",
        "## Summary", "", *_summary([("transductive", trans_gaps), ("inductive", ind_gaps)]), "",
        "## Where LTD's temperatures went (test nodes of the training graph, mean over seeds)", "",
        "### Transductive", "", *temperature_table(store, "transductive"), "",
        "### Inductive", "", *temperature_table(store, "inductive"), ""])


def write_report(store: RunStore) -> str:
    """Write ``REPORT`` from ``store`` (what ``glnn.py`` calls, also with ``--table-only``); return its text."""
    return write_text(REPORT, report(store))
