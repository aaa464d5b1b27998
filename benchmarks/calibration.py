"""Where is the teacher over-confident? Accuracy and calibrated temperature of the paper's teachers per node set.

For each shipped teacher logits file, under the paper's protocol: the teacher's accuracy on V_L^D,
V_L^E, the validation nodes and the test nodes, and the global temperature that minimises its
cross-entropy on V_L^E, on the validation nodes and on the test nodes
(:func:`dgl_ltd.distill.calibrated_temperature`, log grid 0.01-10). The teachers were trained on
V_L^D and V_L^E, so on V_L^E they are right more often and their fitted temperature is lower than on
held-out nodes: LTD's default start temperature (fitted on V_L^E) and its meta-objective (a loss on
V_L^E) both see a teacher that looks better than it is. Appends one record per teacher to
``benchmarks/results/runs/calibration.jsonl`` and writes ``benchmarks/results/reports/calibration.md`` from it.

    python benchmarks/calibration.py
"""
from __future__ import annotations

import argparse
import math
import statistics

from common import DATASETS, MODELS, REPORTS, RUNS, data_dir, dataset_list, model_list, table_head, write_text
from runstore import RunStore, provenance_lines

SETS = [("V_L^D", "distill_mask"), ("V_L^E", "temp_mask"), ("val", "val_mask"), ("test", "test_mask")]
STORE = RUNS / "calibration.jsonl"
REPORT = REPORTS / "calibration.md"
CONFIG = {"temperature_grid": "log grid 0.01-10 (calibrated_temperature)"}


def measure(dataset: str, model: str, store: RunStore) -> None:
    """Add the record of one shipped teacher (unless the store has it)."""
    from dgl_ltd.data import accuracy, load_dataset, load_logits
    from dgl_ltd.distill import calibrated_temperature
    from dgl_ltd.hparams import teacher_logits_path

    path = teacher_logits_path(data_dir(), dataset, model)
    key, config = {"dataset": dataset, "model": model}, dict(CONFIG, logits=path.name)
    if store.get(key, config) is not None:
        return
    graph = load_dataset(dataset, data_dir())
    nd, teacher = graph.ndata, load_logits(path, graph)
    figures = {f"acc {name}": accuracy(teacher, nd["label"], nd[mask]) for name, mask in SETS}
    figures.update({f"T {name}": calibrated_temperature(teacher, nd["label"], nd[mask]) for name, mask in SETS[1:]})
    store.add(key, config, figures)


def report(store: RunStore) -> str:
    lines = ["# Teacher accuracy and calibrated temperature per node set (the paper's shipped logits)", "",
             *provenance_lines(store), "",
             "The teachers trained on V_L^D + V_L^E. T: the global temperature minimising the teacher's",
             "cross-entropy on that node set (log grid 0.01-10).", "",
             *table_head("| dataset | model | acc V_L^D | acc V_L^E | acc val | acc test | T on V_L^E | T on val | "
                         "T on test |")]
    ratios, gaps = [], []
    for dataset in DATASETS:
        for model in MODELS:
            for record in store.find(dataset=dataset, model=model):
                f = record["figures"]
                ratios.append(f["T val"] / f["T V_L^E"])
                gaps.append(f["acc V_L^E"] - f["acc test"])
                lines.append(f"| {dataset} | {model} | " + " | ".join(f"{f['acc ' + n]:.3f}" for n, _ in SETS) + " | "
                             + " | ".join(f"{f['T ' + n]:.3f}" for n, _ in SETS[1:]) + " |")
    if ratios:
        lines += ["", f"Over {len(ratios)} teachers: accuracy on V_L^E minus test accuracy "
                  f"{100 * statistics.fmean(gaps):+.1f} points on average; T on val / T on V_L^E: geometric mean "
                  f"{math.exp(statistics.fmean(math.log(r) for r in ratios)):.2f}, "
                  f"above 1 for {sum(r > 1 for r in ratios)} of {len(ratios)}."]
    return "\n".join(lines) + "\n"


def write_report() -> str:
    return write_text(REPORT, report(RunStore(STORE)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=dataset_list, default=",".join(DATASETS), help="comma-separated datasets")
    parser.add_argument("--models", type=model_list, default=",".join(MODELS), help="comma-separated models")
    parser.add_argument("--table-only", action="store_true", help="only rewrite the report from the run store")
    args = parser.parse_args()
    store = RunStore(STORE)
    for dataset in [] if args.table_only else args.datasets.split(","):
        for model in args.models.split(","):
            measure(dataset, model, store)
    print(write_report())


if __name__ == "__main__":
    main()
