"""DGL (``dgl_ltd``) vs its PyTorch Geometric twin (``benchmarks/pyg``): epoch time, memory, accuracy.

Everything but the graph framework is shared: the data and split (one bundle, written here from
``dgl_ltd.data.load_dataset``), the teacher logits, the initial weights (each run's DGL model,
copied into the PyG twin), the seeds and dropout masks, the loss kernel, the temperature network
and the meta-gradient code. Each job runs in a fresh process per framework (``benchmarks/pyg/worker.py``),
DGL and PyG alternating (the order flips every job) so that background load hits both alike.

* Timing: fixed-length runs (``--epochs``, patience longer than the run, temperatures learned
  from epoch ``--warmup``) of teacher training, KD, LTD-S and LTD on each ``--timing`` set; the
  figure per run is its mean seconds per epoch (the validation pass included), reported as the
  median over ``--repeats``.
* Memory: the worker process's peak resident set (``ru_maxrss``; ``tracemalloc`` does not see
  torch's allocations), and its resident set after imports, data, graph construction and one
  warm-up step, so that peak - setup is what the runs themselves added. On a GPU also ``torch.cuda.max_memory_allocated``.
* Accuracy: the tuned configuration with full early stopping on ``--accuracy-dataset`` for
  ``--seeds``; parity means the two frameworks' mean test accuracies are within 1 point.

Usage (from the repository root):

    python benchmarks/pyg_vs_dgl.py [--timing amazon-computers:gcn,gat[:REPEATS[:EPOCHS]]] [--epochs 20] [--repeats 2]
        [--accuracy-dataset cora] [--accuracy-models gcn] [--accuracy-methods teacher,kd,ltd,ltd-s]
        [--seeds 0,1,2] [--threads 1] [--device auto]

Prints its section; ``--out FILE`` also replaces that section in FILE (entropy_scaling.py writes the
other). It keeps no run store, so nothing it writes is a report under results/reports/: its measured
sections are pasted, with their commands, into the hand-kept note benchmarks/results/notes/pyg_vs_dgl.md.
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

import torch

from common import (ROOT, any_model_list, at_least, choice_list, data_dir, dataset_name, git_commit, machine,
                    seed_list)

sys.path.insert(0, str(ROOT))
from benchmarks.pyg.report import mean_std, median, replace_section, table  # noqa: E402

FRAMEWORKS = ("dgl", "pyg")
DISTILL_METHODS = ("kd", "ltd-s", "ltd")
METHODS = ("teacher",) + DISTILL_METHODS
LTD_TARGET = 1.5  # DGL at least this many times faster than PyG per LTD epoch on the CPU


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timing", action="append", default=None, type=timing_spec,
                        help="DATASET:MODEL,MODEL[:REPEATS[:EPOCHS]] (repeatable; defaults --repeats, --epochs); "
                             "default amazon-computers:gcn,gat")
    parser.add_argument("--epochs", type=at_least(1), default=20)
    parser.add_argument("--warmup", type=at_least(0), default=2)
    parser.add_argument("--repeats", type=at_least(1), default=2)
    parser.add_argument("--timing-methods", type=choice_list(METHODS), default="teacher,kd,ltd-s,ltd")
    parser.add_argument("--accuracy-dataset", type=dataset_name, default="cora")
    parser.add_argument("--accuracy-models", type=lambda text: any_model_list(text) if text.strip() else "",
                        default="gcn", help="comma list; empty to skip")
    parser.add_argument("--accuracy-methods", type=choice_list(METHODS), default="teacher,kd,ltd,ltd-s")
    parser.add_argument("--seeds", type=seed_list, default="0,1,2")
    parser.add_argument("--threads", type=at_least(1), default=1)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto (cuda when present), cpu or cuda")
    parser.add_argument("--out", help="a Markdown file whose pyg_vs_dgl section to replace (default: print only)")
    args = parser.parse_args()
    args.timing = args.timing or ["amazon-computers:gcn,gat"]
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no GPU here; use --device cpu")
    return args


def _split(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def timing_spec(spec: str) -> str:
    """Check a ``--timing`` value, ``DATASET:MODEL,MODEL[:REPEATS[:EPOCHS]]``; names made canonical."""
    parts = spec.split(":")
    if len(parts) not in (2, 3, 4):
        raise argparse.ArgumentTypeError(f"--timing wants DATASET:MODEL,MODEL[:REPEATS[:EPOCHS]], got {spec!r}")
    parts[0], parts[1] = dataset_name(parts[0]), any_model_list(parts[1])  # gcnii distils the GCN teacher
    for part in parts[2:]:
        at_least(1)(part)
    return ":".join(parts)


def parse_timing(spec: str, repeats: int, epochs: int) -> tuple[str, list[str], int, int]:
    """A checked ``--timing`` value -> (dataset, models, repeats, epochs)."""
    parts = spec.split(":")
    if len(parts) >= 3:
        repeats = int(parts[2])
    if len(parts) == 4:
        epochs = int(parts[3])
    return parts[0], _split(parts[1]), repeats, epochs


def make_bundle(dataset: str, models: list[str], seeds: list[int], folder: Path) -> tuple[Path, dict]:
    """Write the shared inputs of ``dataset`` (graph, split, teacher logits, configs, initial weights)."""
    from dgl_ltd.data import load_dataset, load_logits
    from dgl_ltd.settings import tuned_config
    from dgl_ltd.hparams import teacher_logits_path
    from dgl_ltd.models import build_model
    from dgl_ltd.training import TEACHER_DEFAULTS, set_seed

    graph = load_dataset(dataset, data_dir())
    src, dst = graph.edges()
    n_classes = int(graph.ndata["label"].max()) + 1
    teachers, sources, configs, init = {}, {}, {}, {}
    for model in models:
        path = teacher_logits_path(data_dir(), dataset, model)
        if not path.is_file():  # the paper publishes no GCNII teacher: distil the GCN teacher instead
            path = teacher_logits_path(data_dir(), dataset, "gcn")
        teachers[model], sources[model] = load_logits(path, graph), path.name
        configs[model] = {m: tuned_config(model, dataset, m, graph) for m in DISTILL_METHODS}
        init[model] = {}
        for seed in seeds:
            set_seed(seed)
            init[model][seed] = build_model(model, graph.ndata["feat"].shape[1], n_classes).state_dict()
    masks = ("distill_mask", "temp_mask", "val_mask", "train_mask", "test_mask")
    bundle = {
        "dataset": dataset, "num_nodes": graph.num_nodes(), "num_edges": graph.num_edges(), "n_classes": n_classes,
        "src": src, "dst": dst, "feat": graph.ndata["feat"], "label": graph.ndata["label"],
        "masks": {m: graph.ndata[m] for m in masks},
        "teachers": teachers, "teacher_sources": sources, "configs": configs, "init": init,
        "teacher_opt": {m: TEACHER_DEFAULTS[m] for m in models},
    }
    path = folder / f"{dataset}.pt"
    torch.save(bundle, path)
    meta = {k: bundle[k] for k in ("num_nodes", "num_edges", "n_classes", "teacher_sources")}
    meta["num_feats"] = int(graph.ndata["feat"].shape[1])
    return path, meta


def run_worker(framework: str, bundle: Path, job: dict, threads: int) -> dict:
    """One job in a fresh process (OpenMP/MKL limited to ``threads`` for DGL's and torch's kernels alike)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "benchmarks.pyg.worker", "--framework", framework, "--bundle", str(bundle),
           "--job", json.dumps(job), "--threads", str(threads)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{framework} worker failed on {job}:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    wrong = result["pyg_loaded"] if framework == "dgl" else result["dgl_loaded"]
    if wrong:
        raise RuntimeError(f"the {framework} worker loaded the other framework; its memory figure would be mixed")
    return result


def interleaved(jobs: list[dict], bundle: Path, threads: int, log: list) -> list[dict]:
    """Run every job on both frameworks; which goes first alternates between a model's successive jobs."""
    out, seen = [], {}
    for job in jobs:
        turn = seen.get(job["model"], 0)
        seen[job["model"]] = turn + 1
        order = FRAMEWORKS if turn % 2 == 0 else FRAMEWORKS[::-1]
        for framework in order:
            start = time.perf_counter()
            result = run_worker(framework, bundle, job, threads)
            out.append(result)
            brief = ", ".join(f"{m} {r['seconds_per_epoch']:.3f}s/ep acc {r['test_acc']:.3f}"
                              for m, r in result["results"].items())
            line = f"[{job['kind']} {job['model']} seed {job['seed']} {framework}] {brief} ({time.perf_counter() - start:.0f}s)"
            log.append(line)
            print(line, file=sys.stderr, flush=True)
    return out


def timing_section(dataset: str, meta: dict, runs: list[dict], methods: list[str], device: str, repeats: int,
                   epochs: int) -> tuple[str, dict]:
    """The timing and memory tables of one dataset, and its LTD ratios (PyG / DGL) by model."""
    models = list(dict.fromkeys(r["model"] for r in runs))
    rows, mem_rows, ltd_ratios = [], [], {}
    for model in models:
        by_fw = {fw: [r for r in runs if r["model"] == model and r["framework"] == fw] for fw in FRAMEWORKS}
        for method in methods:
            secs = {fw: [r["results"][method]["seconds_per_epoch"] for r in by_fw[fw]] for fw in FRAMEWORKS}
            per_repeat = [p / d for d, p in zip(secs["dgl"], secs["pyg"])]
            ratio = median(secs["pyg"]) / median(secs["dgl"])
            if method == "ltd":
                ltd_ratios[model] = (ratio, per_repeat)
            verdict = ""
            if method == "ltd" and device == "cpu":
                verdict = "yes" if ratio >= LTD_TARGET else "no"
            rows.append((model, method, f"{median(secs['dgl']):.3f}", f"{median(secs['pyg']):.3f}", f"**{ratio:.2f}**",
                         ", ".join(f"{x:.2f}" for x in per_repeat), verdict))
        for fw in FRAMEWORKS:
            setup = median([r["rss_setup_mb"] for r in by_fw[fw]])
            peak = median([r["rss_peak_mb"] for r in by_fw[fw]])
            cells = [model, fw, f"{setup:.0f}", f"{peak:.0f}", f"{peak - setup:.0f}"]
            if device.startswith("cuda"):
                cells.append(f"{max(r['results'][m].get('gpu_peak_mb', 0) for r in by_fw[fw] for m in methods):.0f}")
            mem_rows.append(cells)
    header = ["model", "method", "DGL s/epoch", "PyG s/epoch", "PyG / DGL", "per-repeat PyG / DGL",
              f"LTD >= {LTD_TARGET}x?"]
    mem_header = ["model", "framework", "RSS after setup (MiB)", "peak RSS (MiB)", "peak - setup (MiB)"]
    if device.startswith("cuda"):
        mem_header.append("peak GPU allocated (MiB)")
    return "\n\n".join([
        f"### {dataset}: {meta['num_nodes']} nodes, {meta['num_edges']} edges, {meta['num_feats']} features, "
        f"{meta['n_classes']} classes ({device}; {epochs}-epoch runs, median of {repeats} repeat(s))",
        table(header, rows),
        "Memory (median over repeats; one worker process ran teacher, KD, LTD-S and LTD in turn):",
        table(mem_header, mem_rows),
    ]), ltd_ratios


def accuracy_section(dataset: str, runs: list[dict], methods: list[str]) -> tuple[str, bool]:
    models = list(dict.fromkeys(r["model"] for r in runs))
    rows, ok = [], True
    for model in models:
        for method in methods:
            acc = {fw: {r["seed"]: 100 * r["results"][method]["test_acc"] for r in runs
                        if r["model"] == model and r["framework"] == fw} for fw in FRAMEWORKS}
            seeds = sorted(acc["dgl"])
            diffs = [abs(acc["dgl"][s] - acc["pyg"][s]) for s in seeds]
            epochs = {fw: [r["results"][method]["epochs"] for r in runs if r["model"] == model and r["framework"] == fw]
                      for fw in FRAMEWORKS}
            (dm, ds), (pm, ps) = mean_std([acc["dgl"][s] for s in seeds]), mean_std([acc["pyg"][s] for s in seeds])
            within = abs(dm - pm) <= 1.0
            ok &= within
            rows.append((model, method, f"{dm:.2f} ± {ds:.2f}", f"{pm:.2f} ± {ps:.2f}", f"{abs(dm - pm):.2f}",
                         f"{max(diffs):.2f}", "/".join(map(str, epochs["dgl"])), "/".join(map(str, epochs["pyg"])),
                         "yes" if within else "no"))
    header = ["model", "method", "DGL test acc (%)", "PyG test acc (%)", "|mean diff|", "max per-seed diff",
              "DGL epochs", "PyG epochs", "within 1 pt?"]
    return f"### Accuracy parity on {dataset} (full early-stopped runs)\n\n" + table(header, rows), ok


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    seeds = [int(s) for s in _split(args.seeds)]
    timing_sets = [parse_timing(spec, args.repeats, args.epochs) for spec in args.timing]
    timing_methods = _split(args.timing_methods)
    acc_models, acc_methods = _split(args.accuracy_models), _split(args.accuracy_methods)
    log: list[str] = []
    sections, acc_ok, targets = [], None, []
    with tempfile.TemporaryDirectory(prefix="pyg_vs_dgl_") as tmp:
        acc_bundle = None
        for dataset, models, repeats, epochs in timing_sets:
            bundle_models, bundle_seeds = list(models), list(range(repeats))
            shares = dataset == args.accuracy_dataset and bool(acc_models)  # one bundle serves both parts
            if shares:
                bundle_models = list(dict.fromkeys(models + acc_models))
                bundle_seeds = sorted(set(bundle_seeds) | set(seeds))
            bundle, meta = make_bundle(dataset, bundle_models, bundle_seeds, Path(tmp))
            jobs = [{"kind": "timing", "model": m, "seed": r, "methods": timing_methods, "epochs": epochs,
                     "warmup": args.warmup, "device": args.device} for r in range(repeats) for m in models]
            runs = interleaved(jobs, bundle, args.threads, log)
            text, ltd_ratios = timing_section(dataset, meta, runs, timing_methods, args.device, repeats, epochs)
            sections.append(text)
            targets += [f"{model} on {dataset} {ratio:.2f} (repeats {', '.join(f'{x:.2f}' for x in each)}): "
                        f"{'met' if ratio >= LTD_TARGET else 'NOT met'}" for model, (ratio, each) in ltd_ratios.items()]
            if shares:
                acc_bundle = bundle
        if acc_models:
            if acc_bundle is None:
                acc_bundle, _ = make_bundle(args.accuracy_dataset, acc_models, seeds, Path(tmp))
            jobs = [{"kind": "accuracy", "model": m, "seed": s, "methods": acc_methods, "device": args.device}
                    for s in seeds for m in acc_models]
            runs = interleaved(jobs, acc_bundle, args.threads, log)
            text, acc_ok = accuracy_section(args.accuracy_dataset, runs, acc_methods)
            sections.append(text)
    minutes = (time.perf_counter() - started) / 60
    import dgl
    import torch_geometric

    command = "python benchmarks/pyg_vs_dgl.py " + " ".join(sys.argv[1:])
    header = [
        "## Epoch time, memory and accuracy (`benchmarks/pyg_vs_dgl.py`)",
        "",
        f"Command: `{command.strip()}` (commit {git_commit()}, working tree as of the run; {minutes:.1f} min in all).",
        f"Machine: {machine()}.",
        f"Versions: torch {torch.__version__}, dgl {dgl.__version__}, torch_geometric {torch_geometric.__version__} "
        "(pure Python: no pyg-lib, torch-scatter or torch-sparse).",
        f"Device: {args.device}; each worker process limited to {args.threads} thread(s) "
        "(torch.set_num_threads and OMP_NUM_THREADS/MKL_NUM_THREADS, so DGL's OpenMP kernels too).",
        "",
        f"Timing: fixed-length runs, temperatures learned from epoch {args.warmup} (LTD every epoch, LTD-S every "
        "8th epoch on all nodes: tuned_config's defaults), DGL and PyG in alternating order, each in a fresh process; "
        "each cell is the median over repeats of a run's mean seconds per epoch, validation pass "
        "included. PyG / DGL > 1 means DGL is faster. Students start from identical weights (the DGL model's "
        "initial weights copied into the PyG twin) and see identical dropout masks.",
    ]
    if targets and args.device == "cpu":
        header.append(f"Target DGL >= {LTD_TARGET}x faster than PyG per LTD epoch (PyG / DGL of the medians): "
                      + "; ".join(targets) + ".")
    if acc_ok is not None:
        header.append(f"Accuracy parity (mean test accuracy within 1 point for every row): **{'met' if acc_ok else 'NOT met'}**.")
    body = "\n".join(header) + "\n\n" + "\n\n".join(sections) + "\n\n<details><summary>Run log</summary>\n\n```\n" + \
        "\n".join(log) + "\n```\n</details>\n"
    if args.out:
        replace_section(Path(args.out), "pyg_vs_dgl", body)
    print(body)


if __name__ == "__main__":
    main()
