"""Where is the teacher over-confident? Accuracy and calibrated temperature of the paper's teachers per node set.

For each shipped teacher logits file, under the paper's protocol: the teacher's accuracy on V_L^D,
V_L^E, the validation nodes and the test nodes, and the global temperature that minimises its
cross-entropy on V_L^E, on the validation nodes and on the test nodes
(:func:`dgl_ltd.distill.calibrated_temperature`, log grid 0.01-10). The teachers were trained on
V_L^D and V_L^E, so on V_L^E they are right more often and their fitted temperature is lower than on
held-out nodes: LTD's default start temperature (fitted on V_L^E) and its meta-objective (a loss on
V_L^E) both see a teacher that looks better than it is. Writes ``benchmarks/results/calibration.md``.

    python benchmarks/calibration.py
"""
from __future__ import annotations

import argparse
import math
import statistics

from common import DATASETS, MODELS, RESULTS, command_line, data_dir, dataset_list, git_commit, machine, model_list

from dgl_ltd.data import accuracy, load_dataset, load_logits
from dgl_ltd.distill import calibrated_temperature
from dgl_ltd.hparams import teacher_logits_path

SETS = [("V_L^D", "distill_mask"), ("V_L^E", "temp_mask"), ("val", "val_mask"), ("test", "test_mask")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=dataset_list, default=",".join(DATASETS), help="comma-separated datasets")
    parser.add_argument("--models", type=model_list, default=",".join(MODELS), help="comma-separated models")
    args = parser.parse_args()
    head = ("| dataset | model | acc V_L^D | acc V_L^E | acc val | acc test | T on V_L^E | T on val | T on test |")
    lines = ["# Teacher accuracy and calibrated temperature per node set (the paper's shipped logits)", "",
             f"Command: `{command_line()}` (commit {git_commit()}).", f"Machine: {machine()}.", "",
             "The teachers trained on V_L^D + V_L^E. T: the global temperature minimising the teacher's",
             "cross-entropy on that node set (log grid 0.01-10).", "", head, "|" + " --- |" * (head.count("|") - 1)]
    ratios, gaps = [], []
    for dataset in args.datasets.split(","):
        graph = load_dataset(dataset, data_dir())
        nd = graph.ndata
        for model in args.models.split(","):
            teacher = load_logits(teacher_logits_path(data_dir(), dataset, model), graph)
            accs = [accuracy(teacher, nd["label"], nd[mask]) for _, mask in SETS]
            temps = [calibrated_temperature(teacher, nd["label"], nd[mask]) for mask in ("temp_mask", "val_mask", "test_mask")]
            ratios.append(temps[1] / temps[0])
            gaps.append(accs[1] - accs[3])
            lines.append(f"| {dataset} | {model} | " + " | ".join(f"{a:.3f}" for a in accs) + " | "
                         + " | ".join(f"{t:.3f}" for t in temps) + " |")
    lines += ["", f"Over {len(ratios)} teachers: accuracy on V_L^E minus test accuracy {100 * statistics.fmean(gaps):+.1f} "
              f"points on average; T on val / T on V_L^E: geometric mean "
              f"{math.exp(statistics.fmean(math.log(r) for r in ratios)):.2f}, "
              f"above 1 for {sum(r > 1 for r in ratios)} of {len(ratios)}."]
    text = "\n".join(lines) + "\n"
    (RESULTS / "calibration.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
