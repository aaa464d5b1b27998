"""A JSON Lines run store: one record per run, with its provenance, keyed by the hash of its config.

Every record holds ``key`` (what the run is: dataset, model, method, seed, ...), ``config`` (the
full resolved settings), ``config_hash`` (of key and config: a changed default makes a new hash,
so old runs never mix with new ones), ``figures``, ``commit``, ``date``, ``machine`` and ``versions``.
Reports are generated from the records only.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import platform
from pathlib import Path

from common import git_commit, machine


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


class RunStore:
    """Records of ``path`` (a ``.jsonl`` file), looked up by config hash."""

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

    def add(self, key: dict, config: dict, figures: dict) -> dict:
        """Append one run's record (flushed at once, so an interrupted benchmark resumes)."""
        record = {"key": key, "config": config, "config_hash": config_hash(key, config), "figures": figures,
                  "commit": git_commit(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                      timespec="seconds"), "machine": machine(), "versions": versions()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        self.records[record["config_hash"]] = record
        return record

    def find(self, **match) -> list:
        """Records whose key has every given value."""
        return [r for r in self.records.values() if all(r["key"].get(k) == v for k, v in match.items())]

    def provenance(self, name: str) -> list:
        """A report's opening lines about the store: its file, record count, commits and machines."""
        records = list(self.records.values())
        commits = sorted({r["commit"] for r in records})
        machines = sorted({r["machine"] for r in records})
        return [f"Runs in `{name}` ({len(records)} records; commits {', '.join(commits) or '-'}).", "",
                *[f"Machine: {m}" for m in machines]]
