"""A JSON Lines run store: one record per run, with its provenance, keyed by the hash of its config.

Every record holds ``key`` (what the run is: dataset, model, method, seed, ...), ``config`` (the
full resolved settings), ``config_hash`` (of key and config: a changed default makes a new hash,
so old runs never mix with new ones), ``figures``, ``commit``, ``date``, ``machine`` and
``versions``. Records migrated from the earlier JSON caches also say where they came from
(``migrated_from``). Reports are generated from the records only (:func:`provenance_lines`).
"""
from __future__ import annotations

import datetime
import hashlib
import json
import platform
from pathlib import Path

from common import ROOT, git_commit, machine

PROVENANCE = ("commit", "date", "machine", "versions")


def config_hash(key: dict, config: dict) -> str:
    text = json.dumps({"key": key, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def versions() -> dict:
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__}
    try:
        import dgl

        out["dgl"] = dgl.__version__
    except Exception:  # the store is also read where DGL is missing
        pass
    return out


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class RunStore:
    """Records of ``path`` (a ``.jsonl`` file), looked up by config hash (the last record of a hash wins)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.records = {}
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    record = json.loads(line)
                    self.records[record["config_hash"]] = record

    def get(self, key: dict, config: dict) -> dict | None:
        return self.records.get(config_hash(key, config))

    def add(self, key: dict, config: dict, figures: dict, **provenance) -> dict:
        """Append one run's record (flushed at once, so an interrupted benchmark resumes).

        ``provenance`` overrides this checkout's ``commit``, ``date``, ``machine`` and ``versions``
        (for runs made elsewhere) and may add fields such as ``migrated_from``.
        """
        record = {"key": key, "config": config, "config_hash": config_hash(key, config), "figures": figures,
                  "commit": git_commit(), "date": now(), "machine": machine(), "versions": versions()}
        record.update(provenance)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        self.records[record["config_hash"]] = record
        return record

    def find(self, **match) -> list:
        """Records whose key has every given value."""
        return [r for r in self.records.values() if all(r["key"].get(k) == v for k, v in match.items())]


def provenance_lines(store: RunStore, records: list | None = None) -> list:
    """Where a report's figures come from: the store, its record count, commits, dates and machines.

    ``records``: the records the report uses (default all of the store). Deterministic, so that
    regenerating a report from an unchanged store rewrites the same text.
    """
    records = list(store.records.values()) if records is None else records
    try:
        name = store.path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        name = store.path.name
    dates = sorted(r["date"] for r in records if r["date"] != "unknown")
    lines = [f"Generated from `{name}` ({len(records)} records) by `python benchmarks/regenerate.py`; "
             "every record holds its config, commit, date, machine and versions.",
             "Commits: " + ", ".join(sorted({r["commit"] for r in records})) + "."]
    if dates:
        lines.append(f"Dates: {dates[0][:10]} to {dates[-1][:10]}"
                     + (f" ({len(records) - len(dates)} unknown)." if len(dates) < len(records) else "."))
    lines += [f"Machine: {m}." for m in sorted({r["machine"] for r in records})]
    return lines


def load_parts(path: Path) -> dict:
    """``{part: figures}`` of a store whose records are keyed ``{"part": name}`` (newest record wins)."""
    return {r["key"]["part"]: r["figures"] for r in RunStore(path).records.values() if "part" in r["key"]}


def save_parts(path: Path, parts: dict) -> None:
    """Store each part of ``parts`` as one record (provenance of this run) unless an identical one is there."""
    store = RunStore(path)
    stored = load_parts(path)
    for name, figures in parts.items():
        if stored.get(name) != figures:
            store.add({"part": name, "figures_hash": config_hash({}, figures)}, {}, figures)
