"""Where a mini-batch LTD run's temperatures went: one cell of minibatch_parity.py rerun with its history.

Reruns one mini-batch LTD cell with ``minibatch_parity.py``'s settings (paper protocol and teacher
logits, ``tuned_config`` of the cell, fanouts 10,10, batch 256, patience 50, at most 200 epochs)
and the given student and temperature learning rates, then prints the test accuracy of the student
and of the teacher on the nodes whose final temperature is negative, near zero (below 0.05) and
positive, and the run's history (epoch, loss, validation accuracy and loss, tau mean and std,
meta-gradient norm). Nothing is stored: the output is the record, pasted into
``results/notes/minibatch_tau_sign.md``.

Usage: python benchmarks/minibatch_tau_sign.py DATASET MODEL SEED [--alpha 0.001] [--beta 0.0003]
"""
from __future__ import annotations

import argparse

import torch

from common import data_dir, positive_float
from minibatch_parity import run_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("model")
    parser.add_argument("seed", type=int)
    parser.add_argument("--alpha", type=positive_float, default=0.001)
    parser.add_argument("--beta", type=positive_float, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from dgl_ltd.data import load_dataset, load_logits
    from dgl_ltd.distill import Distiller
    from dgl_ltd.hparams import teacher_logits_path
    from dgl_ltd.models import build_model
    from dgl_ltd.training import set_seed

    graph = load_dataset(args.dataset, data_dir())
    teacher = load_logits(teacher_logits_path(data_dir(), args.dataset, args.model), graph)
    parity = argparse.Namespace(fanouts=(10, 10), batch_size=256, max_epochs=200, patience=50, alpha=args.alpha,
                                beta=args.beta, label_batch_size=None)  # minibatch_parity.py's defaults
    config = dict(run_config(parity, args.model, args.dataset, graph), fanouts=parity.fanouts)
    print(config, flush=True)
    set_seed(args.seed)
    student = build_model(args.model, graph.ndata["feat"].shape[1], teacher.shape[1])
    res = Distiller(student, "ltd", show_progress=False, **config).fit(graph, teacher, seed=args.seed)
    print("result", res.test_acc, res.val_acc, res.epochs, res.best_epoch, res.config.get("resolved_init_tau"),
          res.config.get("resolved_k"))
    tau, test, labels = res.temperatures, graph.ndata["test_mask"], graph.ndata["label"]
    pred, teacher_pred = res.logits.argmax(1), teacher.argmax(1)
    for name, chosen in [("neg", tau < 0), ("small", (tau >= 0) & (tau < 0.05)), ("pos", tau >= 0.05)]:
        scored = chosen & test
        student_acc = float((pred[scored] == labels[scored]).float().mean()) if scored.any() else None
        teacher_acc = float((teacher_pred[scored] == labels[scored]).float().mean()) if scored.any() else None
        print(name, int(chosen.sum()), "test n", int(scored.sum()), "student acc", student_acc, "teacher acc", teacher_acc)
    for h in res.history:
        print(h["epoch"], round(h["loss"], 4), round(h["val_acc"], 3), round(h["val_loss"], 3), round(h["tau_mean"], 4),
              round(h["tau_std"], 4), h["meta_grad_norm"], flush=True)


if __name__ == "__main__":
    main()
