"""How far a mini-batch student's test accuracy swings from one epoch's end to the next, by label batch.

Reruns one cell of ``minibatch_parity.py`` (its settings: tuned_config of the cell, the paper's
teacher logits and protocol, fanouts 10,10, batch 256) for ``--epochs`` epochs without early
stopping, and scores every epoch's end weights on the test nodes through full neighbourhoods (as
the final result is scored). For each ``--label-batch-sizes`` setting (0: the label loss on the
labelled nodes among the batch's seeds; N: on a label batch of N labelled nodes, all of them when
fewer) it reports the spread of those test accuracies from epoch 20 on, their correlation with the
validation accuracy that early stopping reads, and the test accuracy of the epoch that early
stopping with patience ``PATIENCE`` (minibatch_parity.py's 50) would have kept. Runs go to
``runs/minibatch_epoch_swing.jsonl`` (every epoch's figures); the table, over every run of the store,
to ``reports/minibatch_epoch_swing.md`` (``report``); the hand-written findings are in
``notes/minibatch_epoch_swing.md``.

Usage: python benchmarks/minibatch_epoch_swing.py [--dataset amazon-computers] [--model graphsage] [--seeds 1]
       [--label-batch-sizes 0,256] [--alpha 0.001] [--beta 0.000006] [--epochs 60] [--table-only]
"""
from __future__ import annotations

import argparse
import statistics

import torch

from common import REPORTS, RUNS, at_least, data_dir, dataset_name, positive_float, seed_list, table_head, write_text
from minibatch_parity import PATIENCE, run_config
from runstore import RunStore, provenance_lines

STORE = RUNS / "minibatch_epoch_swing.jsonl"
REPORT = REPORTS / "minibatch_epoch_swing.md"
SETTLED = 20  # epochs left out of the spread: the student is still learning
COMMAND = "python benchmarks/minibatch_epoch_swing.py --epochs 50"  # the runs of the store


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=dataset_name, default="amazon-computers")
    parser.add_argument("--model", default="graphsage")
    parser.add_argument("--seeds", type=seed_list, default="1")
    parser.add_argument("--label-batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[0, 256])
    parser.add_argument("--alpha", type=positive_float, default=0.001)
    parser.add_argument("--beta", type=positive_float, default=0.000006)
    parser.add_argument("--epochs", type=at_least(SETTLED + 2), default=60)
    parser.add_argument("--table-only", action="store_true")
    return parser.parse_args()


class EpochTest:
    """A callback that adds the test accuracy of the epoch's end weights (full neighbourhoods) to its record."""

    def __init__(self, run, test_mask: torch.Tensor):
        self.run, self.test = run, test_mask

    def on_epoch_end(self, epoch: int, record: dict) -> bool:
        from dgl_ltd.metrics import accuracy

        student = self.run.student
        student.eval()
        with torch.no_grad():
            logits = self.run.all_logits(student)
        student.train()
        record["test_acc"] = accuracy(logits, self.run.data.labels, self.test)
        return False


def traced_distiller(student, config: dict, test_mask: torch.Tensor):
    from dgl_ltd.distill import Distiller
    from dgl_ltd.distill.minibatch import MiniBatchRun

    class TracedRun(MiniBatchRun):
        def train(self, core, schedule, callbacks, history):
            return super().train(core, schedule, callbacks + [EpochTest(self, test_mask)], history)

    class TracedDistiller(Distiller):
        def make_run(self, data):
            return TracedRun(self.config, self.student, data)

    return TracedDistiller(student, "ltd", show_progress=False, **config)


def parity_args(args, label_batch_size: int) -> argparse.Namespace:
    """minibatch_parity.py's settings for these runs: its fanouts and batch, no early stopping, every epoch."""
    return argparse.Namespace(fanouts=(10, 10), batch_size=256, max_epochs=args.epochs, patience=args.epochs,
                              alpha=args.alpha, beta=args.beta, label_batch_size=label_batch_size,
                              batches_per_epoch=None)


def run_missing(args, store: RunStore) -> None:
    from dgl_ltd.data import load_dataset, load_logits
    from dgl_ltd.hparams import teacher_logits_path
    from dgl_ltd.models import build_model
    from dgl_ltd.training import set_seed

    graph = load_dataset(args.dataset, data_dir())
    teacher = load_logits(teacher_logits_path(data_dir(), args.dataset, args.model), graph)
    for labels in args.label_batch_sizes:
        config = run_config(parity_args(args, labels), args.model, args.dataset, graph)
        for seed in map(int, args.seeds.split(",")):
            key = {"dataset": args.dataset, "model": args.model, "seed": seed}
            if store.get(key, config) is not None:
                continue
            set_seed(seed)
            student = build_model(args.model, graph.ndata["feat"].shape[1], teacher.shape[1])
            res = traced_distiller(student, dict(config, fanouts=tuple(config["fanouts"])), graph.ndata["test_mask"])\
                .fit(graph, teacher, seed=seed)
            history = [{name: h[name] for name in ("epoch", "val_acc", "val_loss", "test_acc", "tau_mean")}
                       for h in res.history]
            store.add(key, config, {"history": history})
            print(args.dataset, args.model, seed, "label batch", labels, "done", flush=True)


def kept_epoch(history: list, patience: int) -> int:
    """The epoch EarlyStopping keeps (best validation accuracy, ties to the lower loss) with ``patience``."""
    best, bad = 0, 0
    for i, h in enumerate(history):
        if i and (h["val_acc"], -h["val_loss"]) > (history[best]["val_acc"], -history[best]["val_loss"]):
            best, bad = i, 0
        elif i:
            bad += 1
            if bad >= patience:
                break
    return best


def row(record: dict, patience: int) -> str:
    history = record["figures"]["history"]
    settled = history[SETTLED:]
    test = [100 * h["test_acc"] for h in settled]
    corr = statistics.correlation([h["val_acc"] for h in settled], [h["test_acc"] for h in settled])
    kept = kept_epoch(history, patience)
    return (f"| {record['key']['seed']} | {record['config'].get('label_batch_size', 0)} | {len(history)} | "
            f"{statistics.mean(test):.2f} | {statistics.stdev(test):.2f} | {min(test):.2f} - {max(test):.2f} | "
            f"{corr:+.2f} | {kept} | {100 * history[kept]['test_acc']:.2f} |")


def rates(records: list, name: str) -> str:
    """The learning rates ``name`` (``alpha``, ``beta``) of ``records``."""
    return " / ".join(f"{v:g}" for v in sorted({r["config"][name] for r in records})) or "-"


def report(store: RunStore) -> str:
    """The report, from the store's records only: a table per cell (dataset, model) run."""
    records = sorted(store.records.values(), key=lambda r: (r["key"]["dataset"], r["key"]["model"], r["key"]["seed"],
                                                            r["config"].get("label_batch_size", 0)))
    cells = sorted({(r["key"]["dataset"], r["key"]["model"]) for r in records})
    lines = [f"# Epoch-to-epoch swing of mini-batch LTD's test accuracy, by label batch "
             f"({'; '.join(f'{d}, {m}' for d, m in cells)})", "", f"Command: `{COMMAND}`.", "",
             *provenance_lines(store, records), "",
             "Settings: minibatch_parity.py's (tuned_config, fanouts 10,10, batch 256), student rate "
             f"{rates(records, 'alpha')}, temperature rate {rates(records, 'beta')}, no early stopping. Test accuracy "
             "of every epoch's end weights through full neighbourhoods; spread over epochs "
             f"{SETTLED} on; correlation of the validation accuracy (what early stopping reads, on the validation "
             f"nodes) with it; the epoch early stopping with patience {PATIENCE} keeps."]
    for dataset, model in cells:
        lines += [""] + ([f"## {dataset}, {model}", ""] if len(cells) > 1 else [])
        lines += table_head("| seed | label batch | epochs | test mean | test std | test range | corr(val, test) | "
                            "kept epoch | test at kept epoch |")
        lines += [row(r, PATIENCE) for r in records if (r["key"]["dataset"], r["key"]["model"]) == (dataset, model)]
    return "\n".join(lines) + "\n"


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    if not args.table_only:
        run_missing(args, RunStore(STORE))
    print(write_text(REPORT, report(RunStore(STORE))))


if __name__ == "__main__":
    main()
