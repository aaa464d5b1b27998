"""Helpers shared by the benchmark scripts: argument types, machine description, data folder, and
the layout of ``benchmarks/results/``: ``runs/`` (JSON Lines run stores, see ``runstore.py``),
``reports/`` (generated from the stores only, by ``regenerate.py``) and ``notes/`` (hand-written)."""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "runs"
REPORTS = RESULTS / "reports"
NOTES = RESULTS / "notes"
DATASETS = ["cora", "citeseer", "amazon-computers", "amazon-photo"]
MODELS = ["gcn", "gat", "graphsage", "appnp", "sgc"]
# the fewest epochs of an LTD run that learns: tuned_config's 20-epoch warm-up, then two learning steps
# (meta_signal.py correlates consecutive steps)
MIN_EPOCHS = 22


def data_dir() -> Path:
    env = os.environ.get("DGL_LTD_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    if not (path / "MANIFEST.md").is_file():
        sys.exit(f"benchmark data not found at {path}; set DGL_LTD_DATA")
    return path


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    versions = f"python {platform.python_version()}, torch {torch.__version__}"
    try:
        import dgl

        versions += f", dgl {dgl.__version__}"
    except Exception:
        pass
    threads = torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} cores, torch threads {threads}; {versions}; {platform.platform()}"


def mean_std(values: list) -> tuple:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


# Argument types: a bad value ends the script with argparse's one-line error (exit code 2) before any
# run starts. Lists stay comma-joined strings (the scripts split them), with names made canonical.
def _items(text: str, what: str) -> list:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"give at least one {what}")
    return items


def _paper_names(text: str, what: str, canonical, allowed: list, problem: str = "no paper teacher logits for") -> str:
    """Comma-separated names made canonical by ``canonical``, each one of ``allowed``."""
    from dgl_ltd.errors import UserInputError

    names = []
    for item in _items(text, what):
        try:
            name = canonical(item)
        except UserInputError:
            name = None
        if name not in allowed:
            raise argparse.ArgumentTypeError(f"{problem} {what} {item!r}; choose from: {', '.join(allowed)}")
        names.append(name)
    return ",".join(names)


def dataset_list(text: str) -> str:
    """Comma-separated datasets with the paper's teacher logits (``DATASETS``), aliases allowed."""
    from dgl_ltd.data import canonical_name

    return _paper_names(text, "dataset", canonical_name, DATASETS)


def dataset_name(text: str) -> str:
    """One dataset of ``DATASETS``."""
    names = dataset_list(text)
    if "," in names:
        raise argparse.ArgumentTypeError(f"give one dataset, got {text!r}")
    return names


def model_list(text: str) -> str:
    """Comma-separated paper models (``MODELS``), aliases such as ``sage`` allowed."""
    from dgl_ltd.models import canonical_model_name

    return _paper_names(text, "model", canonical_model_name, MODELS)


def any_model_list(text: str) -> str:
    """Comma-separated GNNs of the package's registry (``gcnii`` too, which has no paper teacher; not the
    graph-free ``mlp``, which has no PyG twin)."""
    from dgl_ltd.models import MODELS as REGISTRY, canonical_model_name

    graph_models = [name for name, cls in REGISTRY.items() if getattr(cls, "takes_graph", True)]
    return _paper_names(text, "model", canonical_model_name, graph_models, problem="unknown or graph-free")


def seed_list(text: str) -> str:
    """Comma-separated integer seeds in [0, 2^32 - 1] (the CLI's check), as a comma-joined string."""
    from dgl_ltd.cli import parse_seeds

    return ",".join(str(s) for s in parse_seeds(text))


def choice_list(choices) -> callable:
    """An argument type: comma-separated names, each one of ``choices``."""
    def parse(text: str) -> str:
        items = _items(text, "name")
        bad = [item for item in items if item not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown name {bad[0]!r}; choose from: {', '.join(choices)}")
        return ",".join(items)
    return parse


def cell_list(text: str) -> str:
    """Comma-separated ``dataset:model`` cells, e.g. ``cora:gcn,citeseer:gat``."""
    cells = []
    for item in _items(text, "cell"):
        if item.count(":") != 1:
            raise argparse.ArgumentTypeError(f"cells are dataset:model pairs such as cora:gcn, got {item!r}")
        dataset, model = item.split(":")
        cells.append(f"{dataset_name(dataset)}:{model_list(model)}")
    return ",".join(cells)


def at_least(minimum: int) -> callable:
    """An argument type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def positive_float(text: str) -> float:
    """An argument type: a finite number > 0 (a learning rate, a memory budget)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def table_head(head: str) -> list:
    """A Markdown table's head row and its separator."""
    return [head, "|" + " --- |" * (head.count("|") - 1)]


def add_grid_arguments(parser, datasets: str, seeds: str) -> None:
    """The options every dataset x model x seed benchmark takes."""
    parser.add_argument("--datasets", type=dataset_list, default=datasets, help="comma-separated datasets")
    parser.add_argument("--models", type=model_list, default=",".join(MODELS), help="comma-separated models")
    parser.add_argument("--seeds", type=seed_list, default=seeds, help="comma-separated student seeds to run")
    parser.add_argument("--threads", type=at_least(1), default=1)
    parser.add_argument("--table-only", action="store_true", help="only rewrite the report from the run store")


def run_then_report(args, run, write_report) -> None:
    """Run the missing cells (unless --table-only), then write the report from the store and print it."""
    import time

    import torch

    torch.set_num_threads(args.threads)
    if not args.table_only:
        start = time.perf_counter()
        run(args)
        print(f"done in {time.perf_counter() - start:.0f} s", flush=True)
    print(write_report())


def write_text(path: Path, text: str) -> str:
    """Write a report (its folder created), returning the text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def command_line() -> str:
    """The command that is running, as a report quotes it."""
    import shlex

    return " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *(shlex.quote(a) for a in sys.argv[1:])])


def parse_store_args(parser: argparse.ArgumentParser, threads: int = 1) -> argparse.Namespace:
    """Add ``--threads`` and ``--table-only`` to a store-backed benchmark's parser, parse, set the threads."""
    import torch

    parser.add_argument("--threads", type=at_least(1), default=threads)
    parser.add_argument("--table-only", action="store_true", help="only rewrite the report from the store")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args
