"""Helpers shared by the benchmark scripts: machine/version header, data folder, result caching."""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATASETS = ["cora", "citeseer", "amazon-computers", "amazon-photo"]
MODELS = ["gcn", "gat", "graphsage", "appnp", "sgc"]


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


def load_cache(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def save_cache(path: Path, cache: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cache, indent=1, sort_keys=True))


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def report_lines(title: str, command: str, explanation: list, head: str) -> list:
    """The opening of a results file: title, command and commit, machine, explanation, table head."""
    return [f"# {title}", "", f"Command: `{command}` (commit {git_commit()}).", f"Machine: {machine()}.", "",
            *explanation, "", head, "|" + " --- |" * (head.count("|") - 1)]


def add_grid_arguments(parser, datasets: str, seeds: str) -> None:
    """The options every dataset x model x seed benchmark takes."""
    parser.add_argument("--datasets", default=datasets)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seeds", default=seeds)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table-only", action="store_true", help="only rewrite the table from the cache")


def run_then_table(args, run, table) -> None:
    """Run the missing cells (unless --table-only), then print and write the table."""
    import time

    import torch

    torch.set_num_threads(args.threads)
    if not args.table_only:
        start = time.perf_counter()
        run(args)
        print(f"done in {time.perf_counter() - start:.0f} s", flush=True)
    print(table(args))


def kept_commands_line(report: Path, default: str) -> str:
    """The hand-kept 'Commands:' line of an existing report (its runs came from many commands), else ``default``."""
    lines = report.read_text().splitlines() if report.exists() else []
    return next((line for line in lines if line.startswith("Commands: ")), default)
