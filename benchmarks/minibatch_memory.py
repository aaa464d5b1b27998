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
``--budget-gib`` is extrapolated linearly from the two largest measured sizes (labelled an estimate).

Usage: python benchmarks/minibatch_memory.py [--sizes 250000,1000000,2449029] [--full-sizes 100000,250000]
       [--batches 9] [--threads 1]
Writes benchmarks/results/notes/minibatch_memory.md (its hand-written summary kept), notes/minibatch_memory.png and runs/minibatch_memory.jsonl.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from runstore import load_parts, save_parts
from common import (RESULTS, at_least, command_line, git_commit, machine, positive_float,
                    write_keeping_summary)

GIB = 2 ** 30
WORKER = Path(__file__).with_name("minibatch_worker.py")
RUNS = RESULTS / "runs" / "minibatch_memory.jsonl"


def size_list(text: str) -> list:
    return [at_least(5000)(part) for part in text.split(",")]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=size_list, default=[250_000, 1_000_000, 2_449_029])
    parser.add_argument("--full-sizes", type=size_list, default=[100_000, 250_000])
    parser.add_argument("--batches", type=at_least(1), default=9, help="mini-batches (warm-up 0, LTD-S every 8: "
                        "9 batches include two learning steps)")
    parser.add_argument("--full-epochs", type=at_least(1), default=2)
    parser.add_argument("--budget-gib", type=positive_float, default=24.0)
    parser.add_argument("--threads", type=at_least(1), default=1)
    parser.add_argument("--table-only", action="store_true", help="rebuild the report and plot from the runs file")
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


def plot(mini: list, full: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for runs, label, marker in ((mini, "mini-batch LTD-S", "o"), (full, "full-graph LTD", "s")):
        done = [r for r in runs if "failed" not in r]
        nodes = [r["num_nodes"] / 1e6 for r in done]
        ax.plot(nodes, [r["phases"]["train"]["peak"] / GIB for r in done], marker=marker, label=f"{label}: train peak")
        ax.plot(nodes, [(r["phases"]["train"]["peak"] - r["data"]["total"]) / GIB for r in done], marker=marker,
                linestyle="--", label=f"{label}: train peak - data")
    done = sorted((r for r in full if "failed" not in r), key=lambda r: r["num_nodes"])[-2:]
    if len(done) == 2 and mini:
        (n0, p0), (n1, p1) = [(r["num_nodes"] / 1e6, r["phases"]["train"]["peak"] / GIB) for r in done]
        far = max(r["num_nodes"] for r in mini) / 1e6
        ax.plot([n1, far], [p1, p1 + (p1 - p0) / (n1 - n0) * (far - n1)], color="grey", linestyle=":",
                label="full-graph LTD: linear estimate")
    ax.set_xlabel("nodes (millions), average degree 50")
    ax.set_ylabel("GiB (resident set)")
    ax.set_title("Peak memory during training, GraphSAGE student")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(args, mini: list, full: list, command: str, commit: str) -> str:
    lines = ["# Memory of mini-batch LTD-S against graph size (issue 15, target 2)", "",
             f"Command: `{command}` (commit {commit}).", f"Machine: {machine()}.", "",
             "The machine was shared (2 cores, 24 GiB; another benchmark and other jobs ran meanwhile); memory",
             "figures are per process and not affected by the sharing, times are.", "",
             f"One fresh process per row (`minibatch_worker.py`). Mini-batch: LTD-S, GraphSAGE, fanouts 10,10, batch "
             f"1024, {args.batches} batches (warm-up 0, learning every 8 batches). Full graph: LTD, "
             f"{args.full_epochs} epochs, learning every epoch. Teacher logits: seeded stand-ins "
             "(`minibatch_probe.synthetic_teacher`). GiB of resident set (VmHWM, reset at each phase). "
             "'data' = the graph's materialised sparse formats + node data + teacher logits, from tensor sizes.", "",
             "| nodes | mode | edges | data | RSS at train start | train peak | train peak - data | "
             "train peak - RSS at start | setup peak | final peak | build peak |",
             "|" + " --- |" * 11]
    lines += [row(r, "mini-batch LTD-S") for r in mini] + [row(r, "full-graph LTD") for r in full]
    lines += ["", f"Full graph vs {args.budget_gib:g} GiB: {full_graph_estimate(full, args.budget_gib)}.", "",
              "![peak memory](minibatch_memory.png)"]
    return "\n".join(lines) + "\n"


def main() -> None:
    import torch

    args = parse_args()
    torch.set_num_threads(args.threads)  # the workers' setting, so that the report's machine line says it
    if args.table_only:
        cache = load_parts(RUNS)
        mini, full, command, commit = cache["minibatch"], cache["full_graph"], cache["command"], cache["commit"]
    else:
        mini, full, command, commit = [], [], command_line(), git_commit()
        for nodes in args.full_sizes:
            full.append(run_worker(nodes, True, args))
            print("full", nodes, f"{full[-1]['wall']:.0f} s", flush=True)
        for nodes in args.sizes:
            mini.append(run_worker(nodes, False, args))
            print("mini", nodes, f"{mini[-1]['wall']:.0f} s", flush=True)
        save_parts(RUNS, {"command": command, "commit": commit, "minibatch": mini, "full_graph": full})
    plot(mini, full, RESULTS / "notes" / "minibatch_memory.png")
    text = write_report(args, mini, full, command, commit)
    write_keeping_summary(RESULTS / "notes" / "minibatch_memory.md", text)
    print(text)


if __name__ == "__main__":
    main()
