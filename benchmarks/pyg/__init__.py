"""A PyTorch Geometric twin of ``dgl_ltd``: the same six models, distilled by ``dgl_ltd``'s own loop.

It exists to compare the two graph frameworks with everything else held fixed, so it reuses every
framework-independent part of ``dgl_ltd``, none of which imports DGL: the distillation package
``dgl_ltd.distill`` (settings, input checks, step core, schedules, callbacks, full-graph loop),
``losses``/``ops``, ``metagrad``, ``temperature``, ``training`` and ``metrics``. It re-implements only
what touches the graph: the models (PyG ``nn`` layers), the neighbourhood entropy
(``torch_geometric.utils.scatter``) and the distillation run's inputs (``(x, edge_index)``).
Nothing here imports DGL, so a process that uses only this package measures PyG's own memory.

Modules:

* :mod:`.graph`: self-loops and GCN normalisation of an ``edge_index``, cached per graph;
* :mod:`.models`: ``GCN``, ``GAT``, ``GraphSAGE``, ``APPNP``, ``SGC``, ``GCNII``, each ``forward(x, edge_index)``;
* :mod:`.transfer`: copy a ``dgl_ltd.models`` model's weights into its PyG twin (same starting point);
* :mod:`.entropy`: the teacher's neighbourhood entropy by scatter-mean;
* :mod:`.training`: teacher training on a PyG ``Data`` (``dgl_ltd.training``'s loop);
* :mod:`.distiller`: :class:`~.distiller.PyGDistiller`, ``dgl_ltd.distill.Distiller`` on a PyG ``Data``.

* :mod:`.worker`, :mod:`.report`: the two halves of ``benchmarks/pyg_vs_dgl.py`` (one timed run in a
  fresh process; the Markdown report).

Import it as ``benchmarks.pyg`` with the repository root on ``sys.path``. Names are imported
lazily, so ``import benchmarks.pyg.worker`` in a DGL-only process does not load PyG.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "PyGDistiller": "distiller",
    "neighbourhood_entropy": "entropy",
    "MODELS": "models",
    "build_model": "models",
    "train_teacher": "training",
    "copy_dgl_weights": "transfer",
    "dgl_to_pyg_state": "transfer",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
