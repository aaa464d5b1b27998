"""DistDGL LTD against single-process mini-batch LTD: test accuracy on cora, the same settings and seeds.

The graph is partitioned into ``--parts`` parts with the paper's teacher logits of ``--model``;
DistDGL trains with one server per partition and ``--trainers`` gloo trainers on 127.0.0.1
(``dgl-ltd distill --part-config ... --local-trainers``); the single process runs ``dgl-ltd distill``
with the same teacher logits, fanouts, global batch, epochs and seeds. Both print one JSON line;
the script prints a text with the commands, the commit, the machine and a table per seed (and writes
it to ``--out FILE`` when given). It keeps no run store, so nothing it writes is a generated report:
the measured text is kept, with its command, in the hand-kept note benchmarks/results/notes/distdgl.md.

    python benchmarks/distdgl_parity.py --seeds 0,1,2 --epochs 60
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, command_line, data_dir, git_commit, machine, mean_std, seed_list  # noqa: E402

TEACHER_FILES = {"gcn": "GCN", "gat": "GAT", "graphsage": "GraphSAGE"}


def _dgl_ltd(args: list) -> tuple:
    """Run ``dgl-ltd`` with ``args``; its last JSON line and the wall seconds."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "dgl_ltd.cli", *map(str, args)], capture_output=True, text=True,
                         env=env)
    if out.returncode != 0:
        sys.exit(f"dgl-ltd {' '.join(map(str, args[:2]))} failed: {out.stderr.strip().splitlines()[-1:]}")
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]), time.perf_counter() - start


def _run_args(args, seeds: str) -> list:
    return ["--dataset", "cora", "--data-dir", args.data_dir, "--model", args.model, "--fanouts", args.fanouts,
            "--batch-size", args.batch_size, "--max-epochs", args.epochs, "--patience", args.epochs, "--seeds",
            seeds, "--quiet", "--json"]


def run(args) -> dict:
    teacher = Path(args.data_dir) / "ltd_teacher_logits" / "cora" / f"{TEACHER_FILES[args.model]}.txt"
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="distdgl_parity_") as folder:
        part, _ = _dgl_ltd(["partition", "--dataset", "cora", "--data-dir", args.data_dir, "--model", args.model,
                            "--teacher-logits", teacher, "--parts", args.parts, "--out", Path(folder, "cora"),
                            "--json"])
        dist, dist_wall = _dgl_ltd(["distill", "--part-config", part["part_config"], "--local-trainers",
                                    args.trainers, *_run_args(args, args.seeds)])
    single, single_wall = _dgl_ltd(["distill", "--teacher-logits", teacher, *_run_args(args, args.seeds)])
    return {"single": single, "dist": dist, "single_wall": single_wall, "dist_wall": dist_wall,
            "load_before": load_before}


def _per_seed(result: dict) -> list:
    return result.get("per_seed", [result["test_acc"]])


def note(args, figures: dict) -> str:
    seeds = [int(s) for s in args.seeds.split(",")]
    single, dist = _per_seed(figures["single"]), _per_seed(figures["dist"])
    rows = [f"| {s} | {a:.4f} | {b:.4f} | {b - a:+.4f} |" for s, a, b in zip(seeds, single, dist)]
    (m1, s1), (m2, s2) = mean_std(single), mean_std(dist)
    gap = (m2 - m1) * 100
    return "\n".join([
        f"# DistDGL LTD against single-process mini-batch LTD (cora, {args.parts} partitions)", "",
        f"Measured {time.strftime('%Y-%m-%d')} with `{command_line()}` on commit {git_commit()}.",
        f"Machine: {machine()}. `OMP_WAIT_POLICY=PASSIVE`, `OMP_NUM_THREADS=1` in every process.", "",
        f"{args.model} student, the paper's {TEACHER_FILES[args.model]} teacher logits (test accuracy "
        f"{figures['single']['teacher_test_acc']:.4f}), LTD with `--settings standard`, `--fanouts {args.fanouts}`, "
        f"global batch {args.batch_size}, {args.epochs} epochs (patience {args.epochs}: the best validation epoch is "
        f"restored). DistDGL: `dgl-ltd partition --parts {args.parts}` (METIS), then `dgl-ltd distill --part-config "
        f"... --local-trainers {args.trainers}`: one server per partition and {args.trainers} gloo trainers on "
        f"127.0.0.1. Single process: `dgl-ltd distill --teacher-logits ...` with the same flags.", "",
        "| seed | test acc, 1 process | test acc, DistDGL | gap |", "| --- | --- | --- | --- |", *rows,
        f"| mean | {m1:.4f} (std {s1:.4f}) | {m2:.4f} (std {s2:.4f}) | {gap / 100:+.4f} |", "",
        f"The DistDGL mean is {abs(gap):.2f} points {'above' if gap >= 0 else 'below'} the single-process mean "
        f"({'within' if abs(gap) <= 1 else 'NOT within'} the 1-point target). The two runs of a seed are not the "
        f"same run: partitioning renumbers the nodes, so the batches' order differs, and each trainer draws its "
        f"own dropout and neighbours. Wall time including starts: single process {figures['single_wall']:.0f} s, "
        f"DistDGL {figures['dist_wall']:.0f} s; the machine's load average just before the run (other jobs): "
        f"{figures['load_before']:.1f}.", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="the shared data folder (default: $DGL_LTD_DATA)")
    parser.add_argument("--model", choices=sorted(TEACHER_FILES), default="graphsage")
    parser.add_argument("--seeds", type=seed_list, default="0,1,2")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--fanouts", default="10,10")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--parts", type=int, default=2)
    parser.add_argument("--trainers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None,
                        help="also write the text to this file (it keeps no store: default, print only)")
    args = parser.parse_args()
    args.data_dir = str(args.data_dir or data_dir())
    text = note(args, run(args))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
