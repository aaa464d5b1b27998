"""Does LTD's per-node meta-gradient know which nodes the teacher gets wrong?

Runs LTD (``tuned_config``, seed 0) for a fixed number of epochs with no early stopping, records the
per-node meta-gradient dL_eval/dtau_v of every learning step, and correlates its sum over the run
with the teacher's correctness, the teacher's confidence and the neighbourhood entropy on the test
nodes. A gradient step moves tau_v by -meta_v: a node whose sum is negative is pushed to a higher
(softer) temperature. Writes ``benchmarks/results/meta_signal.md``.

    python benchmarks/meta_signal.py --cells cora:gcn,cora:gat,citeseer:gcn,citeseer:gat --epochs 150
"""
from __future__ import annotations

import argparse
import statistics

import torch

from common import MIN_EPOCHS, RESULTS, at_least, cell_list, data_dir, report_lines
import dgl_ltd.distill as distill
import dgl_ltd.distill.core as distill_core
from dgl_ltd.settings import tuned_config
from dgl_ltd.data import load_dataset, load_logits
from dgl_ltd.entropy import neighbourhood_entropy
from dgl_ltd.hparams import teacher_logits_path
from dgl_ltd.models import build_model
from dgl_ltd.training import set_seed


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-300))


def measure(dataset: str, model: str, epochs: int) -> dict:
    graph = load_dataset(dataset, data_dir())
    teacher = load_logits(teacher_logits_path(data_dir(), dataset, model), graph)
    steps = []
    original = distill_core.temperature_meta_gradient

    def record(jvp, sens, **kwargs):
        meta = original(jvp, sens, **kwargs)
        steps.append(meta.detach().clone())
        return meta

    config = tuned_config(model, dataset, "ltd", graph)
    config.update(max_epochs=epochs, patience=10 * epochs)
    set_seed(0)
    student = build_model(model, graph.ndata["feat"].shape[1], teacher.shape[1])
    distill_core.temperature_meta_gradient = record
    try:
        distill.Distiller(student, "ltd", show_progress=False, **config).fit(graph, teacher, seed=0)
    finally:
        distill_core.temperature_meta_gradient = original
    meta = torch.stack(steps)
    total = meta.sum(0)
    test = graph.ndata["test_mask"]
    right = teacher.argmax(1) == graph.ndata["label"]
    confidence = torch.softmax(teacher, 1).max(1).values
    entropy = neighbourhood_entropy(graph, teacher)
    wrong = ~right & test
    return {
        "steps": len(steps),
        "corr_correct": corr(total[test], right[test].float()),
        "corr_conf": corr(total[test], confidence[test]),
        "corr_entropy": corr(total[test], entropy[test]),
        "softer_right": float((total[right & test] < 0).float().mean()),
        "softer_wrong": float((total[wrong] < 0).float().mean()) if wrong.any() else float("nan"),
        "consecutive": statistics.median(corr(meta[i], meta[i + 1]) for i in range(len(meta) - 1)),
        "global_share": float(total.mean().abs() / total.abs().mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=cell_list, default="cora:gcn,cora:gat,citeseer:gcn,citeseer:gat",
                        help="comma-separated dataset:model pairs")
    parser.add_argument("--epochs", type=at_least(MIN_EPOCHS), default=150,
                        help=f"epochs per run (at least {MIN_EPOCHS}: the 20-epoch warm-up, then learning steps)")
    parser.add_argument("--threads", type=at_least(1), default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    head = ("| dataset | model | learning steps | corr(meta, teacher right) | corr(meta, teacher confidence) | "
            "corr(meta, entropy H_v) | pushed softer: teacher right | pushed softer: teacher wrong | "
            "step-to-step corr | common share |")
    command = f"python benchmarks/meta_signal.py --cells {args.cells} --epochs {args.epochs}"
    lines = report_lines("Does the per-node meta-gradient know where the teacher is wrong?", command, [
        "LTD with `tuned_config`, seed 0, a fixed number of epochs (no early stopping). `meta` is the",
        "per-node dL_eval/dtau_v summed over all learning steps; correlations over the test nodes (Pearson).",
        "'pushed softer': share of test nodes whose summed step raises tau (meta < 0). 'step-to-step",
        "corr': median correlation of the per-node meta-gradient between consecutive steps.",
        "'common share': abs(mean of meta) / mean of abs(meta) over all nodes, how much of the summed",
        "meta-gradient is one push shared by every node (1: all nodes alike, 0: no common direction).",
    ], head)
    for cell in args.cells.split(","):
        dataset, model = cell.split(":")
        r = measure(dataset, model, args.epochs)
        lines.append(f"| {dataset} | {model} | {r['steps']} | {r['corr_correct']:+.3f} | {r['corr_conf']:+.3f} | "
                     f"{r['corr_entropy']:+.3f} | {r['softer_right']:.2f} | {r['softer_wrong']:.2f} | "
                     f"{r['consecutive']:+.3f} | {r['global_share']:.2f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    (RESULTS / "meta_signal.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
