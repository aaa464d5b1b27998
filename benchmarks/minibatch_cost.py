"""Cost per mini-batch of KD, LTD and LTD-S side by side (issue 15, target 3), and one bounded epoch at 2.45M nodes.

Part ``lockstep`` (the headline ratios), in this process: the methods advanced batch by batch on
the same seed nodes, their order rotating at every batch (:mod:`minibatch_lockstep`), ``--lockstep-batches``
timed batches after ``--meta-every`` untimed ones, so that exactly one in ``--meta-every`` timed LTD-S
batches learns; the validation pass is left out. Same student, graphs and settings as ``runs``.

Part ``runs``, in this process: a GraphSAGE student on neighbour-sampled blocks (``--fanouts``,
``--batch-size``) on amazon-computers (paper protocol and teacher logits) and on a planted graph of
``--planted-nodes`` nodes (seeded stand-in teacher logits, :func:`minibatch_probe.synthetic_teacher`).
Each repeat runs every method for ``--epochs`` epochs of ``--batches`` batches, the methods
interleaved (the order rotates every repeat) so that background load hits them alike; temperatures
learn from the first batch (warm-up 0; LTD-S every ``--meta-every`` batches). The first epoch is
discarded (first-call costs); the figure per run is the later epochs' wall seconds minus their
validation passes, per batch, reported as the median over repeats. The validation pass (full
neighbourhoods of the validation nodes, once per epoch) is reported on its own.

Part ``big``: one epoch of ``--big-batches`` LTD-S batches on the
ogbn-products-sized planted graph (``--big-nodes``), in a fresh process (``minibatch_worker.py``),
timed end to end with the build reported separately.

Each part's figures are kept in ``runs/minibatch_cost.jsonl`` with its command and commit; the report
is built from that file only (:func:`report`), so a part can be rerun alone (``--parts``).

Usage: python benchmarks/minibatch_cost.py [--parts lockstep,runs,big] [--repeats 3] [--threads 1] [--table-only]
Writes runs/minibatch_cost.jsonl and benchmarks/results/reports/minibatch_cost.md (the hand-written
summary is notes/minibatch_cost.md).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import torch

from runstore import RunStore, load_parts, provenance_lines, save_parts
from common import REPORTS, RUNS, at_least, choice_list, command_line, data_dir, git_commit, write_text
from minibatch_probe import ProbedDistiller, synthetic_teacher
from minibatch_worker import fanout_list

METHODS = ("kd", "ltd", "ltd-s")
PARTS = ("lockstep", "runs", "big")
STORE = RUNS / "minibatch_cost.jsonl"
REPORT = REPORTS / "minibatch_cost.md"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=at_least(1), default=3)
    parser.add_argument("--epochs", type=at_least(2), default=3, help="epochs per run (the first is discarded)")
    parser.add_argument("--batches", type=at_least(1), default=13, help="batches per epoch")
    parser.add_argument("--batch-size", type=at_least(1), default=1024)
    parser.add_argument("--fanouts", type=fanout_list, default=(10, 10))
    parser.add_argument("--meta-every", type=at_least(1), default=8)
    parser.add_argument("--planted-nodes", type=at_least(5000), default=250_000)
    parser.add_argument("--big-nodes", type=at_least(5000), default=2_449_029)
    parser.add_argument("--big-batches", type=at_least(1), default=20)
    parser.add_argument("--lockstep-batches", type=at_least(1), default=40)
    parser.add_argument("--parts", type=choice_list(PARTS), default=",".join(PARTS))
    parser.add_argument("--threads", type=at_least(1), default=1)
    parser.add_argument("--table-only", action="store_true", help="only rewrite the report from the run store")
    return parser.parse_args()


def load_cells(args) -> list:
    """(name, graph, teacher logits, base config per method) of the datasets part 1 runs on."""
    from dgl_ltd.data import load_dataset, load_logits
    from dgl_ltd.hparams import teacher_logits_path
    from dgl_ltd.settings import tuned_config

    amazon = load_dataset("amazon-computers", data_dir())
    teacher = load_logits(teacher_logits_path(data_dir(), "amazon-computers", "graphsage"), amazon)
    cells = [("amazon-computers", amazon, teacher,
              {m: tuned_config("graphsage", "amazon-computers", m, amazon) for m in METHODS})]
    planted = load_dataset("planted", num_nodes=args.planted_nodes, seed=0)
    cells.append((f"planted-{args.planted_nodes}", planted, synthetic_teacher(planted, seed=0),
                  {m: {} for m in METHODS}))
    return cells


def run_config(args, base: dict, epochs: int) -> dict:
    return dict(base, fanouts=args.fanouts, batch_size=args.batch_size, batches_per_epoch=args.batches,
                max_epochs=epochs, patience=10 * epochs, warmup=0, meta_every=args.meta_every, show_progress=False)


def student_for(graph, teacher, seed: int):
    from dgl_ltd.models import build_model

    torch.manual_seed(seed)
    return build_model("graphsage", graph.ndata["feat"].shape[1], teacher.shape[1])


def timed_run(args, graph, teacher, method: str, config: dict, seed: int) -> dict:
    distiller = ProbedDistiller(student_for(graph, teacher, seed), method, **run_config(args, config, args.epochs))
    distiller.fit(graph, teacher, seed=seed)
    return distiller.probe.summary()


def per_batch(summary: dict) -> dict:
    """Seconds per batch (epoch minus validation), sampling, step core, learning fraction; first epoch dropped."""
    epochs = summary["epochs"][1:]
    steps = summary["steps"][summary["epochs"][0]["steps"]:]
    count = sum(e["steps"] for e in epochs)
    learn = [s["step"] + s["sample"] for s in steps if s["learn"]]
    plain = [s["step"] + s["sample"] for s in steps if not s["learn"]]
    return {"batch": sum(e["seconds"] - e["validation"] for e in epochs) / count,
            "sample": sum(s["sample"] for s in steps) / count, "core": sum(s["step"] for s in steps) / count,
            "rows": sum(s["rows"] for s in steps) / count, "learn_fraction": len(learn) / count,
            "learn_step": statistics.fmean(learn) if learn else None,
            "plain_step": statistics.fmean(plain) if plain else None,
            "validation": statistics.fmean(e["validation"] for e in epochs)}


def measure_runs(args, cells) -> dict:
    results = {}
    for name, graph, teacher, configs in cells:
        runs = {m: [] for m in METHODS}
        for repeat in range(args.repeats):
            order = METHODS[repeat % len(METHODS):] + METHODS[:repeat % len(METHODS)]
            for method in order:
                figures = per_batch(timed_run(args, graph, teacher, method, configs[method], seed=repeat))
                runs[method].append(figures)
                print(name, method, repeat, f"{figures['batch']:.4f} s/batch", flush=True)
        results[name] = {"nodes": graph.num_nodes(), "edges": graph.num_edges(), "runs": runs}
    return results


def measure_lockstep(args, cells) -> dict:
    from minibatch_lockstep import LockstepMethod, lockstep

    results = {}
    for name, graph, teacher, configs in cells:
        methods = {m: LockstepMethod(m, student_for(graph, teacher, 0), graph, teacher,
                                     run_config(args, configs[m], 1), seed=0) for m in METHODS}
        results[name] = lockstep(methods, graph.num_nodes(), args.batch_size, args.lockstep_batches,
                                 warmup=args.meta_every, seed=0)
        print(name, {m: f"{statistics.fmean(s for s, _ in t):.4f}" for m, t in results[name].items()}, flush=True)
    return results


def big_epoch(args) -> dict:
    worker = Path(__file__).with_name("minibatch_worker.py")
    command = [sys.executable, str(worker), "--num-nodes", str(args.big_nodes), "--method", "ltd-s",
               "--batches", str(args.big_batches), "--batch-size", str(args.batch_size),
               "--fanouts", ",".join(map(str, args.fanouts)), "--meta-every", str(args.meta_every),
               "--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_of(runs: list, key: str) -> float:
    return statistics.median(r[key] for r in runs)


def cost_rows(results: dict) -> list:
    rows = []
    for name, cell in results.items():
        kd = median_of(cell["runs"]["kd"], "batch")
        for method in METHODS:
            runs = cell["runs"][method]
            batch = median_of(runs, "batch")
            learn = [r["learn_step"] for r in runs if r["learn_step"] is not None]
            plain = [r["plain_step"] for r in runs if r["plain_step"] is not None]
            rows.append(f"| {name} | {method} | {batch:.4f} | {1000 * batch / median_of(runs, 'rows'):.4f} | "
                        f"{median_of(runs, 'sample'):.4f} | {median_of(runs, 'core'):.4f} | "
                        f"{statistics.median(learn) if learn else float('nan'):.4f} | "
                        f"{statistics.median(plain) if plain else float('nan'):.4f} | "
                        f"{median_of(runs, 'learn_fraction'):.3f} | {batch / kd:.2f} | "
                        f"{median_of(runs, 'validation'):.3f} |")
    return rows


def lockstep_rows(results: dict, batch_size: int, every: int) -> list:
    """Mean and median-based seconds per batch; LTD-S's median-based figure mixes its plain and learning medians 1 : K."""
    rows = []
    for name, cell in results.items():
        def robust(method):
            plain = [s for s, learned in cell[method] if not learned]
            learned = [s for s, was in cell[method] if was]
            if not learned or not plain:
                return statistics.median(plain or learned)
            return ((every - 1) * statistics.median(plain) + statistics.median(learned)) / every
        kd_mean, kd_robust = statistics.fmean(s for s, _ in cell["kd"]), robust("kd")
        for method in METHODS:
            mean = statistics.fmean(s for s, _ in cell[method])
            share = sum(learned for _, learned in cell[method]) / len(cell[method])
            rows.append(f"| {name} | {method} | {mean:.4f} | {1000 * mean / batch_size:.4f} | {robust(method):.4f} | "
                        f"{share:.3f} | **{mean / kd_mean:.2f}** | {robust(method) / kd_robust:.2f} |")
    return rows


def big_lines(part: dict) -> list:
    big, cfg = part["figures"], part["settings"]
    phases, epoch = big["phases"], big["epochs"][0]
    gib = 2 ** 30
    return ["", f"## One bounded LTD-S epoch on the {big['num_nodes']:,}-node planted graph", "",
            provenance(part), "", f"{big['num_edges']:,} directed edges; {epoch['steps']} batches of "
            f"{cfg['batch_size']}, fanouts {cfg['fanouts']}, GraphSAGE, seeded stand-in teacher logits, warm-up 0, LTD-S "
            f"learning every {cfg['meta_every']} batches, in a fresh process (`minibatch_worker.py`), "
            f"{cfg['threads']} torch thread(s).", "",
            "| part | seconds |", "| --- | --- |",
            f"| build the planted graph + stand-in teacher (separate) | {big['build_seconds']:.1f} |",
            f"| setup: entropy, calibration, temperature network | {phases['setup']['seconds']:.1f} |",
            f"| the epoch: {epoch['steps']} batches + validation | {epoch['seconds']:.1f} |",
            f"| of which validation (full neighbourhoods of the {big['val_nodes']} val nodes) | "
            f"{epoch['validation']:.1f} |",
            f"| final: every node's logits (layer-wise inference) and temperatures | "
            f"{phases['final']['seconds']:.1f} |",
            f"| `Distiller.fit` end to end (setup + epoch + final) | {big['fit_seconds']:.1f} |", "",
            f"Peak resident set: {big['build_peak'] / gib:.2f} GiB during the build; "
            f"{phases['train']['peak'] / gib:.2f} GiB during the epoch."]


def provenance(part: dict) -> str:
    return f"Command: `{part['command']}` (commit {part['commit']}, {part['date']})."


def section(title: str, part: dict, description: str, head: str, rows: list) -> list:
    """One part's section of the report: its title, command, description and table."""
    return ["", f"## {title}", "", provenance(part), "", description, "", head, "|" + " --- |" * (head.count("|") - 1),
            *rows]


def lockstep_lines(part: dict) -> list:
    cfg = part["settings"]
    return section(
        "Per batch, methods in lockstep (headline)", part,
        f"GraphSAGE student, fanouts {cfg['fanouts']}, batch {cfg['batch_size']}, warm-up 0, LTD-S every "
        f"{cfg['meta_every']} batches, {cfg['threads']} torch thread(s); {cfg['lockstep_batches']} timed batches "
        f"per method after {cfg['meta_every']} untimed ones, every method on the same seed nodes, the order "
        "rotating at every batch. A batch = sampling + step core + the loop's bookkeeping (validation left out). "
        "'median-based' = median seconds (for LTD-S: (K-1) x median plain batch + median learning "
        "batch, over K), robust to bursts of load.",
        "| graph | method | mean s / batch | s / 1000 seeds | median-based s / batch | learning share | "
        "/ KD (means) | / KD (median-based) |",
        lockstep_rows(part["figures"], cfg["batch_size"], cfg["meta_every"]))


def runs_lines(part: dict) -> list:
    cfg = part["settings"]
    return section(
        "Whole Distiller runs", part,
        f"Each repeat runs every method through `Distiller.fit` (interleaved, order rotated every repeat; "
        f"median over {cfg['repeats']} repeats; {cfg['threads']} torch thread(s)): {cfg['batches']} batches per "
        f"epoch, {cfg['epochs']} epochs (first dropped). 'batch' = epoch wall time minus its validation pass, "
        "per batch (sampling + step core + loop); 'learning' / 'plain' = sampling + core of batches with / "
        "without a learning step; 'val' = the validation pass per epoch (not in 'batch'). Whole runs "
        "last tens of seconds, so load changes between them make these ratios noisier than the lockstep ones.",
        "| graph | method | s / batch | s / 1000 seeds | sampling | step core | learning | plain | "
        "learning share | / KD | val s / epoch |", cost_rows(part["figures"]))


def report(store: RunStore) -> str:
    """The report, from the parts of ``store`` only (``load_parts``: each part's newest record)."""
    cache = load_parts(store.path)
    lines = ["# Cost per mini-batch: KD, LTD, LTD-S (issue 15, target 3)", "", *provenance_lines(store), "",
             "The machine was shared (2 cores; another benchmark on 2 threads and other jobs ran meanwhile, load",
             "average 6-11), so absolute seconds are inflated and noisy; the ratios come from the methods run side",
             "by side in one process. Targets: LTD at most 3x a KD batch, LTD-S (K = 8) at most 1.3x.",
             "Hand-written summary: [`notes/minibatch_cost.md`](../notes/minibatch_cost.md)."]
    if "lockstep" in cache:
        lines += lockstep_lines(cache["lockstep"])
    if "runs" in cache:
        lines += runs_lines(cache["runs"])
    if "big" in cache:
        lines += big_lines(cache["big"])
    return "\n".join(lines) + "\n"


def measure(args) -> None:
    """Run the parts of ``--parts``, storing each as soon as it is done."""
    import datetime

    parts = args.parts.split(",")
    cache = load_parts(STORE)
    cells = load_cells(args) if {"lockstep", "runs"} & set(parts) else None
    for part in parts:
        figures = {"lockstep": measure_lockstep, "runs": measure_runs, "big": lambda a, _: big_epoch(a)}[part](args, cells)
        settings = {k: v for k, v in vars(args).items() if k != "table_only"}
        cache[part] = {"command": command_line(), "commit": git_commit(), "figures": figures,
                       "date": datetime.date.today().isoformat(),
                       "settings": dict(settings, fanouts=",".join(map(str, args.fanouts)))}
        save_parts(STORE, cache)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    if not args.table_only:
        measure(args)
    print(write_text(REPORT, report(RunStore(STORE))))


if __name__ == "__main__":
    main()
