"""dgl_ltd: knowledge distillation for DGL graph neural networks with learned, node-specific temperatures.

The method of "Learning to Distill Graph Neural Networks" (LTD, Yang et al., WSDM 2023).

Submodules are imported lazily, so ``dgl_ltd.ops`` (the tempered-softmax kernel and its wrapper)
works on machines without DGL; everything else needs DGL 2.1 with torch 2.0-2.2.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "load_dataset": "data",
    "build_model": "models",
    "train_teacher": "training",
    "neighbourhood_entropy": "entropy",
    "TemperatureNet": "temperature",
    "Distiller": "distill",
    "DistillResult": "distill",
    "tempered_kd_loss": "ops",
}
_SUBMODULES = ("data", "models", "training", "entropy", "temperature", "losses", "distill", "settings", "ops", "cli",
               "cli_args", "devices", "files", "hparams", "metagrad", "metrics")

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'dgl_ltd' has no attribute {name!r}")
