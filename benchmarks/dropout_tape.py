"""What keeping the dropout masks saves: LTD per epoch with the dropout tape against drawing the masks again.

The first-order meta-gradient runs the student twice more under the distillation forward's dropout
masks. :class:`dgl_ltd.dropout_tape.DropoutTape` keeps the masks of that forward; without it (the
earlier behaviour, still the fallback) the masks are drawn again from the restored random state.
Both give the same masks, so the runs must be identical: the script checks that the test
accuracies agree and times the two side by side, interleaved over the repeats, with the
second-order benchmark's settings (SGD, no weight decay, temperatures learned every epoch).

Usage: python benchmarks/dropout_tape.py [--dataset amazon-computers] [--models gcn,graphsage,sgc]
[--epochs 15] [--repeats 3] [--threads 1]. Prints a Markdown table (for the notes).
"""
from __future__ import annotations

import argparse
import contextlib
import statistics

import torch

from common import (at_least, choice_list, command_line, data_dir, dataset_name, git_commit, machine, positive_float,
                    table_head)
from second_order import MODELS, method_config

from dgl_ltd.distill import Distiller
from dgl_ltd.dropout_tape import DropoutTape


@contextlib.contextmanager
def masks_drawn_again():
    """No masks are recorded, so every replay falls back to drawing them from the random state."""
    recording = DropoutTape.recording
    DropoutTape.recording = lambda self: contextlib.nullcontext()
    try:
        yield
    finally:
        DropoutTape.recording = recording


def measure(model: str, graph, args) -> str:
    from dgl_ltd.data import load_logits
    from dgl_ltd.hparams import teacher_logits_path
    from dgl_ltd.models import build_model

    teacher = load_logits(teacher_logits_path(data_dir(), args.dataset, model), graph)
    times, accuracies = {"tape": [], "drawn again": []}, {"tape": [], "drawn again": []}
    for repeat in range(args.repeats):
        for variant in times:
            torch.manual_seed(repeat)
            student = build_model(model, graph.ndata["feat"].shape[1], teacher.shape[1])
            with masks_drawn_again() if variant == "drawn again" else contextlib.nullcontext():
                res = Distiller(student, "ltd", **method_config("ltd", args)).fit(graph, teacher, seed=repeat)
            times[variant].append(res.seconds_per_epoch)
            accuracies[variant].append(res.test_acc)
    tape, again = statistics.median(times["tape"]), statistics.median(times["drawn again"])
    same = "yes" if accuracies["tape"] == accuracies["drawn again"] else "NO"
    return f"| {args.dataset} | {model} | {tape:.4f} | {again:.4f} | {again / tape:.2f} | {same} |"


def main() -> None:
    from dgl_ltd.data import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=dataset_name, default="amazon-computers")
    parser.add_argument("--models", type=choice_list(MODELS), default=",".join(MODELS))
    parser.add_argument("--epochs", type=at_least(2), default=15, help="epochs per run")
    parser.add_argument("--repeats", type=at_least(1), default=3)
    parser.add_argument("--alpha", type=positive_float, default=0.05, help="the students' SGD learning rate")
    parser.add_argument("--threads", type=at_least(1), default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    graph = load_dataset(args.dataset, data_dir())
    rows = [measure(model, graph, args) for model in args.models.split(",")]
    print("\n".join([f"`{command_line()}` at commit {git_commit()}; {machine()}", "",
                     *table_head("| dataset | model | LTD s/epoch, tape | masks drawn again | ratio | same accuracies |"),
                     *rows]))


if __name__ == "__main__":
    main()
