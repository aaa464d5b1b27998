"""Peak memory of mini-batch LTD-S against graph size (issue 15, target 2), with full-graph LTD for contrast.

Each run is a fresh process (``minibatch_worker.py``): build a planted graph (ogbn-products-like:
average degree 50, 47 classes, 100 features) with seeded stand-in teacher logits, then distil a
GraphSAGE student. The worker resets the peak resident set (Linux ``VmHWM``) at each phase
boundary, so the build's transient peak (sorting the edge keys) does not hide the training's:

* ``data``: bytes of the graph's materialised sparse formats, node data (features, labels, masks)
  and the teacher logits, from tensor sizes;
* ``train peak``: the peak resident set during the epochs; ``train peak - data`` should stay flat
  for mini-batch training (it still holds the Python/torch/DGL baseline and O(N) vectors such as
  the neighbourhood entropy);
* ``setup`` and ``final`` peaks: before the epochs (entropy, calibration) and after them (every
  node's logits by layer-wise inference, temperatures), both O(N) by design.

Full-graph LTD is measured at ``--full-sizes``; the size at which its training peak reaches
``BUDGET_GIB`` (the machine's 24 GiB) is extrapolated linearly from the two largest measured sizes
(labelled an estimate).

Usage: python benchmarks/minibatch_memory.py [--sizes 250000,1000000,2449029] [--full-sizes 100000,250000]
       [--batches 9] [--threads 1] [--table-only]
Writes runs/minibatch_memory.jsonl, benchmarks/results/reports/minibatch_memory.md and the picture
reports/minibatch_memory.png (drawn by ``plots.py`` from the store; the hand-written summary is
notes/minibatch_memory.md).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from runstore import RunStore, load_parts, provenance_lines, save_parts
from common import REPORTS, RUNS, at_least, command_line, git_commit, write_text

GIB = 2 ** 30
WORKER = Path(__file__).with_name("minibatch_worker.py")
STORE = RUNS / "minibatch_memory.jsonl"
REPORT = REPORTS / "minibatch_memory.md"
PICTURE = REPORTS / "minibatch_memory.png"
# the defaults of the runs' settings; a run stores its own in the part "settings" (the runs stored
# before that part existed were made with these)
SETTINGS = {"batches": 9, "full_epochs": 2, "threads": 1}
BUDGET_GIB = 24.0  # the memory of the machine the runs were made on


def size_list(text: str) -> list:
    return [at_least(5000)(part) for part in text.split(",")]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=size_list, default=[250_000, 1_000_000, 2_449_029])
    parser.add_argument("--full-sizes", type=size_list, default=[100_000, 250_000])
    parser.add_argument("--batches", type=at_least(1), default=SETTINGS["batches"],
                        help="mini-batches (warm-up 0, LTD-S every 8: 9 batches include two learning steps)")
    parser.add_argument("--full-epochs", type=at_least(1), default=SETTINGS["full_epochs"])
    parser.add_argument("--threads", type=at_least(1), default=SETTINGS["threads"])
    parser.add_argument("--table-only", action="store_true", help="rebuild the report and picture from the store")
    return parser.parse_args()


def run_worker(nodes: int, full: bool, args) -> dict:
    command = [sys.executable, str(WORKER), "--num-nodes", str(nodes), "--threads", str(args.threads)]
    command += ["--method", "ltd", "--full-graph", "--epochs", str(args.full_epochs)] if full else \
        ["--method", "ltd-s", "--batches", str(args.batches)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"num_nodes": nodes, "failed": done.stderr.strip().splitlines()[-1:], "wall": time.perf_counter() - start}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["wall"] = time.perf_counter() - start
    return out


def row(run: dict, mode: str) -> str:
    if "failed" in run:
        return f"| {run['num_nodes']:,} | {mode} | failed: {' '.join(run['failed'])} |" + " |" * 8
    p, data = run["phases"], run["data"]["total"]
    return (f"| {run['num_nodes']:,} | {mode} | {run['num_edges'] / 1e6:.1f}M | {data / GIB:.2f} | "
            f"{p['train']['rss_start'] / GIB:.2f} | {p['train']['peak'] / GIB:.2f} | "
            f"**{(p['train']['peak'] - data) / GIB:.2f}** | {(p['train']['peak'] - p['train']['rss_start']) / GIB:.2f} | "
            f"{p['setup']['peak'] / GIB:.2f} | {p['final']['peak'] / GIB:.2f} | {run['build_peak'] / GIB:.2f} |")


def full_graph_estimate(full: list, budget: float) -> str:
    """The size at which full-graph LTD's training peak reaches ``budget`` GiB, linear in N through the two largest runs."""
    done = sorted((r for r in full if "failed" not in r), key=lambda r: r["num_nodes"])
    if len(done) < 2:
        return "fewer than two full-graph runs finished: no estimate"
    (n0, p0), (n1, p1) = [(r["num_nodes"], r["phases"]["train"]["peak"] / GIB) for r in done[-2:]]
    slope = (p1 - p0) / (n1 - n0)
    if slope <= 0:
        return "full-graph peak did not grow between the two largest sizes: no estimate"
    limit = n1 + (budget - p1) / slope
    return (f"**estimate** (linear in N through the measured {n0:,} and {n1:,}-node runs, "
            f"{slope * 1e6:.2f} GiB per million nodes at average degree 50): full-graph LTD's training peak "
            f"reaches {budget:g} GiB at about {limit / 1e6:.2f}M nodes (at 2.45M nodes: about "
            f"{p1 + slope * (2_449_029 - n1):.1f} GiB)")


def report(store: RunStore) -> str:
    """The report, from the parts of ``store`` only (``load_parts``: each part's newest record)."""
    cache = load_parts(store.path)
    mini, full, cfg = cache["minibatch"], cache["full_graph"], dict(SETTINGS, **cache.get("settings", {}))
    lines = ["# Memory of mini-batch LTD-S against graph size (issue 15, target 2)", "", *provenance_lines(store),
             "", f"Command: `{cache['command']}` (commit {cache['commit']}); {cfg['threads']} torch thread(s) per "
             "process. Hand-written summary: [`notes/minibatch_memory.md`](../notes/minibatch_memory.md).", "",
             "The machine was shared (2 cores, 24 GiB; another benchmark and other jobs ran meanwhile); memory",
             "figures are per process and not affected by the sharing, times are.", "",
             f"One fresh process per row (`minibatch_worker.py`). Mini-batch: LTD-S, GraphSAGE, fanouts 10,10, batch "
             f"1024, {cfg['batches']} batches (warm-up 0, learning every 8 batches). Full graph: LTD, "
             f"{cfg['full_epochs']} epochs, learning every epoch. Teacher logits: seeded stand-ins "
             "(`minibatch_probe.synthetic_teacher`). GiB of resident set (VmHWM, reset at each phase). "
             "'data' = the graph's materialised sparse formats + node data + teacher logits, from tensor sizes.", "",
             "| nodes | mode | edges | data | RSS at train start | train peak | train peak - data | "
             "train peak - RSS at start | setup peak | final peak | build peak |",
             "|" + " --- |" * 11]
    lines += [row(r, "mini-batch LTD-S") for r in mini] + [row(r, "full-graph LTD") for r in full]
    lines += ["", f"Full graph vs {BUDGET_GIB:g} GiB: {full_graph_estimate(full, BUDGET_GIB)}.", "",
              f"![peak memory]({PICTURE.name})"]
    return "\n".join(lines) + "\n"


def measure(args) -> None:
    """Run every size in a fresh process and store the runs (with the command, commit and settings)."""
    mini, full = [], []
    for nodes in args.full_sizes:
        full.append(run_worker(nodes, True, args))
        print("full", nodes, f"{full[-1]['wall']:.0f} s", flush=True)
    for nodes in args.sizes:
        mini.append(run_worker(nodes, False, args))
        print("mini", nodes, f"{mini[-1]['wall']:.0f} s", flush=True)
    settings = {name: getattr(args, name) for name in SETTINGS}
    save_parts(STORE, {"command": command_line(), "commit": git_commit(), "minibatch": mini, "full_graph": full,
                       "settings": settings})


def main() -> None:
    import plots

    args = parse_args()
    if not args.table_only:
        measure(args)
    plots.memory_picture(STORE, PICTURE.parent)
    print(write_text(REPORT, report(RunStore(STORE))))


if __name__ == "__main__":
    main()
