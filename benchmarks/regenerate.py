"""Rebuild every report under ``benchmarks/results/reports/`` from the run stores of ``results/runs/``.

Each benchmark script with a store exposes ``STORE``, ``REPORT`` and ``report(store) -> str``;
``plots.py`` draws its pictures from the same stores. Nothing is trained or timed, so regenerating
from unchanged stores rewrites the same files (``tests/test_regenerate.py`` checks that).

Usage: python benchmarks/regenerate.py [--out benchmarks/results/reports] [--no-plots]
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from common import REPORTS, RUNS
from runstore import RunStore

# the scripts whose report is written from their store, in the order they are rebuilt
SCRIPTS = ("teachers", "reproduce", "ltd_variants", "ltd_s_speed", "horizon", "meta_signal", "calibration",
           "epoch_cost", "dropin", "dropin_rescue", "second_order", "minibatch_pyg", "glnn_report", "mlp_inference",
           "minibatch_parity", "minibatch_epoch_swing", "minibatch_cost", "minibatch_memory")


def reports(out: Path, runs: Path = RUNS) -> list:
    """Write the report of every script whose store exists under ``runs`` into ``out``; return the paths."""
    written = []
    for name in SCRIPTS:
        module = importlib.import_module(name)
        store_path = runs / module.STORE.name
        if not store_path.is_file():
            continue
        path = out / module.REPORT.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(module.report(RunStore(store_path)))
        written.append(path)
    return written


def main(argv: list | None = None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPORTS, help="folder for the reports")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG pictures (they need matplotlib)")
    args = parser.parse_args(argv)
    written = reports(args.out)
    for path in written:
        print(path)
    if not args.no_plots:
        import plots

        written += plots.main(["--out", str(args.out)])  # (prints its own paths)
    return written


if __name__ == "__main__":
    sys.exit(main() and None)
