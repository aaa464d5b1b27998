"""What was tried to make learned temperatures beat a global one: LTD variants beside KD, FT and LTD.

Each variant is ``tuned_config``'s LTD (or FT) with a few options changed; runs use the paper's
shipped teacher logits and the same student seeds as ``reproduce.py``, whose cached KD, FT and LTD
runs are the reference columns. Every run appends a record to ``benchmarks/results/runs/ltd_variants.jsonl``;
the report ``benchmarks/results/reports/ltd_variants.md`` is written from the stores only.

    python benchmarks/ltd_variants.py --variants center,center-beta0.01,ft-calibrated \
        --datasets cora,citeseer --seeds 0,1,2
    python benchmarks/ltd_variants.py --table-only
"""
from __future__ import annotations

import argparse
import statistics

import reproduce
from common import REPORTS, RUNS, add_grid_arguments, choice_list, data_dir, run_then_report, table_head, write_text
from dgl_ltd.distill import calibrated_temperature
from dgl_ltd.settings import paper_config, tuned_config
from dgl_ltd.hparams import paper_result
from runstore import RunStore, provenance_lines

STORE = RUNS / "ltd_variants.jsonl"
REPORT = REPORTS / "ltd_variants.md"
TABLE_SEEDS = (0, 1, 2)  # the seeds the table averages

# name -> (method, overrides of tuned_config, description); the LTD variants that ran before the
# default temperature learning rate became 0.0003 pin the 0.001 they ran with, so they stay comparable
# with the beta0.001 column
VARIANTS = {
    "center": ("ltd", {"meta_center": True, "beta": 0.001},
               "LTD with the per-node meta-gradient centred (mean removed) every step: the temperatures "
               "keep their mean (the calibrated T0) and learn only node-specific deviations"),
    "center-beta0.01": ("ltd", {"meta_center": True, "beta": 0.01},
                        "the same with a 10x larger temperature learning rate (larger deviations)"),
    "beta0.0003": ("ltd", {"beta": 0.0003},
                   "LTD with a temperature learning rate 3x smaller than 0.001 (less drift from the calibrated "
                   "start); today's default of `tuned_config`, so the same runs as the ltd column"),
    "beta0.001": ("ltd", {"beta": 0.001},
                  "LTD at the earlier default temperature learning rate 0.001 (the earlier `reproduce.py` LTD "
                  "runs; see the notes)"),
    "warmup0": ("ltd", {"warmup": 0, "beta": 0.001},
                "LTD learning the temperatures from the first epoch (no 20-epoch warm-up): with the Adam "
                "student the LTD runs reach their best validation accuracy at epoch 7 to 140, so after "
                "a 20-epoch warm-up the temperatures get few steps, or none, before the restored epoch"),
    "warmup0-beta0.01": ("ltd", {"warmup": 0, "beta": 0.01},
                         "the same with a 10x larger temperature learning rate"),
    "calval": ("ltd", {"calibrate_on": "val", "beta": 0.001},
               "LTD starting from the teacher's temperature calibrated on the validation nodes instead of "
               "V_L^E (the teacher was trained on V_L^E, where it is over-confident and T0 comes out too low)"),
    "calval-holdout": ("ltd", {"calibrate_on": "val", "kd_holdout": True, "beta": 0.001},
                       "the same, with the V_L^E nodes left out of the KD term, so the meta-objective judges "
                       "the temperatures on nodes whose teacher targets the student never saw"),
    "calval-beta0.0003": ("ltd", {"calibrate_on": "val", "beta": 0.0003},
                          "calval at the default temperature learning rate 0.0003"),
    "metaval": ("ltd", {"meta_on": "val", "calibrate_on": "val"},
                "LTD whose learning step lowers the loss of the validation nodes instead of V_L^E (labelled "
                "nodes the teacher never trained on), starting from the temperature calibrated there"),
    "metaval-beta0.003": ("ltd", {"meta_on": "val", "calibrate_on": "val", "beta": 0.003},
                          "the same with a 10x larger temperature learning rate"),
    "paper-kd": ("kd", {},
                 "KD under the paper's student protocol (`paper_config`: SGD on summed losses at the cell's "
                 "alpha, no weight decay, the LTD cell's lambda)"),
    "paper-ft": ("ft", {},
                 "FT under the paper's student protocol, at the paper's FT temperature and lambda"),
    "paper-ltd": ("ltd", {},
                  "the paper's LTD cell as published: its student protocol, beta, k, lambda and a randomly "
                  "initialised temperature network"),
    "paper-ltd-cal": ("ltd", {"init_tau": "calibrated", "k": None},
                      "paper-ltd with this package's start: every node at the calibrated temperature T0, "
                      "range k = 2 T0"),
    "paper-ft-cal": ("ft", {},
                     "FT under the paper's student protocol at T0, paper-ltd-cal's start (its lambda is the "
                     "LTD cell's)"),
    "ft-calval": ("ft", {},
                  "FT at the teacher's temperature calibrated on the validation nodes (calval's start, "
                  "LTD without learning)"),
    "alpha0.003-kd": ("kd", {"alpha": 0.003},
                      "KD with the citation graphs' student learning rate 0.003 instead of the Amazon graphs' "
                      "0.01 (which `tuned_config` keeps there to make the benchmark affordable)"),
    "alpha0.003-ft": ("ft", {"alpha": 0.003}, "FT with the student learning rate 0.003"),
    "alpha0.003-ltd": ("ltd", {"alpha": 0.003}, "LTD with the student learning rate 0.003"),
    "alpha0.001-kd": ("kd", {"alpha": 0.001},
                      "KD with a student learning rate 3x below the citation graphs' 0.003 (slower training: "
                      "the paper's SGD protocol, which trains slowly, scores higher on citeseer)"),
    "alpha0.001-ft": ("ft", {"alpha": 0.001}, "FT with the student learning rate 0.001"),
    "alpha0.001-ltd": ("ltd", {"alpha": 0.001}, "LTD with the student learning rate 0.001"),
    "wd0-kd": ("kd", {"weight_decay": 0.0},
               "KD without weight decay (the paper's protocol has none; `tuned_config` keeps Adam's 5e-4)"),
    "wd0-ft": ("ft", {"weight_decay": 0.0}, "FT without weight decay"),
    "wd0-ltd": ("ltd", {"weight_decay": 0.0}, "LTD without weight decay"),
    "ft-calibrated": ("ft", {},
                      "FT at the calibrated temperature T0 of LTD's start (LTD without learning): "
                      "the global temperature LTD must beat"),
}


def config_for(variant: str, model: str, dataset: str, graph, teacher) -> tuple:
    method, overrides, _ = VARIANTS[variant]
    if variant.startswith("paper-"):
        config = paper_config(model, dataset, method)
    else:
        config = tuned_config(model, dataset, method, graph)
    config.update(overrides)
    if variant in ("ft-calibrated", "ft-calval", "paper-ft-cal"):  # the start temperature of LTD / calval
        mask = graph.ndata["val_mask" if variant == "ft-calval" else "temp_mask"]
        config["temperature"] = calibrated_temperature(teacher, graph.ndata["label"], mask)
    if variant == "paper-ft-cal":
        config["lam"] = paper_config(model, dataset, "ltd")["lam"]
    return method, config


def run(args) -> None:
    from dgl_ltd.data import load_dataset, load_logits
    from dgl_ltd.distill import Distiller
    from dgl_ltd.hparams import teacher_logits_path
    from dgl_ltd.models import build_model
    from dgl_ltd.training import set_seed

    store = RunStore(STORE)
    for dataset in args.datasets.split(","):
        graph = load_dataset(dataset, data_dir())
        for model in args.models.split(","):
            teacher = load_logits(teacher_logits_path(data_dir(), dataset, model), graph)
            for variant in args.variants.split(","):
                method, config = config_for(variant, model, dataset, graph, teacher)
                for seed in [int(s) for s in args.seeds.split(",")]:
                    key = {"dataset": dataset, "model": model, "variant": variant, "method": method, "seed": seed}
                    if RunStore(STORE).get(key, config) is not None:  # re-read: other processes add runs
                        continue
                    set_seed(seed)
                    student = build_model(model, graph.ndata["feat"].shape[1], teacher.shape[1])
                    try:
                        res = Distiller(student, method, show_progress=False, **config).fit(graph, teacher, seed=seed)
                    except FloatingPointError as exc:  # a diverged run counts, as NaN, against its variant
                        print(key, "diverged:", exc, flush=True)
                        store.add(key, config, {"test_acc": None, "diverged": str(exc)})
                        continue
                    figures = {"test_acc": res.test_acc, "val_acc": res.val_acc, "epochs": res.epochs,
                               "seconds": res.seconds, "tau_mean": float(res.temperatures.mean()),
                               "tau_std": float(res.temperatures.std())}
                    store.add(key, config, figures)
                    print(key, f"{res.test_acc:.4f}", f"tau {figures['tau_mean']:.3f} +- {figures['tau_std']:.3f}",
                          flush=True)


def variant_runs(store: RunStore) -> dict:
    """``{(dataset, model, variant): {seed: test accuracy}}`` (NaN for a diverged run; the newest record wins)."""
    runs = {}
    for record in store.records.values():
        key, acc = record["key"], record["figures"]["test_acc"]
        runs.setdefault((key["dataset"], key["model"], key["variant"]), {})[key["seed"]] = \
            float("nan") if acc is None else acc
    return runs


def report(store: RunStore) -> str:
    """The report, from this store and the reference runs of ``reproduce.py``'s store."""
    reference_store = RunStore(reproduce.STORE)
    cells = reproduce.runs_by_cell(reference_store)
    reference = {k: {s: f["test_acc"] for s, f in v.items()} for k, v in cells.items() if k[2] != "teacher"}
    ran = variant_runs(store)
    variants = [v for v in VARIANTS if any(k[2] == v for k in ran)]
    methods = ["kd", "ft", "ltd"] + variants
    lines = [
        "# LTD variants: what was tried to make learned temperatures beat a global temperature", "",
        *provenance_lines(store), "",
        "Mean test accuracy over the student seeds "
        f"{', '.join(map(str, TABLE_SEEDS))} (kd, ft, ltd: the runs of `reproduce.py` at today's settings,",
        f"`{reproduce.STORE.name}`; a variant's cell is empty where it did not run on all of them). How each",
        "variant was run: `../notes/ltd_variants.md`. Variants:", "",
    ]
    lines += [f"* `{v}`: {VARIANTS[v][2]}." for v in variants]
    lines += ["", *table_head("| dataset | model | seeds | teacher | " + " | ".join(methods) + " |")]

    def runs(dataset: str, model: str, method: str) -> dict:
        return (reference if method in ("kd", "ft", "ltd") else ran).get((dataset, model, method), {})

    diffs = {m: [] for m in methods}  # (cell, mean - max(KD, FT))
    cell_means = {}
    for dataset, model in sorted({k[:2] for k in ran}):
        seeds = [s for s in TABLE_SEEDS if all(s in runs(dataset, model, m) for m in ("kd", "ft", "ltd"))]
        means = {m: statistics.fmean(runs(dataset, model, m)[s] for s in seeds) for m in methods
                 if seeds and all(s in runs(dataset, model, m) for s in seeds)}
        if "ltd" not in means or not set(means) - {"kd", "ft", "ltd"}:  # no variant ran on these seeds
            continue
        key = f"{dataset}/{model}"
        cell_means[key] = means
        best_global = max(means["kd"], means["ft"])
        for m, value in means.items():
            diffs[m].append((key, value - best_global))
        teacher = cells[(dataset, model, "teacher")]
        row = " | ".join(f"{means[m]:.4f}" if m in means else "" for m in methods)
        lines.append(f"| {dataset} | {model} | {len(seeds)} | {teacher:.4f} | {row} |")
    if diffs["ltd"]:
        lines += ["", "Average minus max(KD, FT) in points, over the cells where the column ran (in brackets: LTD at "
                  "the default beta 0.0003, and beta0.001, over the same cells):", ""]
        for m, d in diffs.items():
            if d and m not in ("kd", "ft", "ltd"):
                keys = {key for key, _ in d}
                same = {ref: [v for key, v in diffs[ref] if key in keys] for ref in ("ltd", "beta0.001")}
                brackets = ", ".join(f"{ref} {100 * statistics.fmean(v):+.2f}" for ref, v in same.items()
                                     if len(v) == len(keys))
                lines.append(f"* {m}: {100 * statistics.fmean(v for _, v in d):+.2f} over {len(d)} cells ({brackets})")
    lines += paper_protocol_summary(cell_means)
    return "\n".join(lines) + "\n"


def write_report() -> str:
    return write_text(REPORT, report(RunStore(STORE)))


def paper_protocol_summary(cell_means: dict) -> list:
    """Within the paper's student protocol: each column against max(paper-kd, paper-ft) and the paper's LTD."""
    columns = ["paper-kd", "paper-ft", "paper-ltd", "paper-ltd-cal", "paper-ft-cal", "ltd"]
    cells = {key: m for key, m in cell_means.items() if "paper-kd" in m and "paper-ft" in m}
    if not cells:
        return []
    failed = sorted(key for key, m in cells.items()  # NaN (diverged) or a mean below 0.5: training failed
                    if any(c in m and not m[c] >= 0.5 for c in columns[:5]))
    kept = {key: m for key, m in cells.items() if key not in failed}
    lines = ["", f"The paper's student protocol (`paper_config`), over the {len(kept)} cells where paper-kd and paper-ft "
             "ran and no paper-protocol column failed (a NaN from a diverged seed, or a mean below 0.5)"
             + (f"; left out: {', '.join(failed)}" if failed else "")
             + ". Each column over those of the cells where it ran; ltd is this package's LTD (Adam on mean "
             "losses) on the same cells and seeds:", ""]
    for column in columns:
        with_column = {key: m for key, m in kept.items() if column in m}
        if not with_column:
            continue
        margin = [m[column] - max(m["paper-kd"], m["paper-ft"]) for m in with_column.values()]
        gap = [m[column] - paper_result(key.split("/")[1], key.split("/")[0], "LTD") for key, m in with_column.items()]
        lines.append(f"* {column}: minus max(paper-kd, paper-ft) {100 * statistics.fmean(margin):+.2f}, minus the "
                     f"paper's LTD {100 * statistics.fmean(gap):+.2f} points, over {len(with_column)} cells")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_grid_arguments(parser, "cora,citeseer", "0,1,2")
    parser.add_argument("--variants", type=choice_list(list(VARIANTS)), default=",".join(VARIANTS),
                        help="comma-separated variants (listed in reports/ltd_variants.md)")
    run_then_report(parser.parse_args(), run, write_report)


if __name__ == "__main__":
    main()
