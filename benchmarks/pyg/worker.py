"""One benchmark job of ``benchmarks/pyg_vs_dgl.py`` in a fresh process, on one framework.

``python -m benchmarks.pyg.worker --framework {dgl,pyg} --bundle FILE --job JSON`` (from the
repository root) loads the prepared data bundle, builds the graph the framework's way (a
``DGLGraph``, or a PyG ``Data`` with ``edge_index``), and runs the job: teacher training and
distillation runs of one model, each student starting from the DGL model's initial weights stored
in the bundle (copied into the PyG twin by :func:`.transfer.copy_dgl_weights`), after one untimed
warm-up step of a throwaway copy (so one-time library start-up is not timed). It prints one
JSON line. The DGL path never imports PyG and the PyG path never imports DGL (the output says
which were loaded), so the process's peak resident memory (``ru_maxrss``) is the framework's own.

Jobs (``kind``):

* ``timing``: fixed-length runs (``epochs``, patience larger than the run, temperatures learned
  from epoch ``warmup``); reports each method's mean seconds per epoch;
* ``accuracy``: the tuned configuration with its early stopping; reports test/validation accuracy.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

import psutil
import torch

METHODS = ("teacher", "kd", "ltd-s", "ltd")


def rss_mb() -> float:
    """Current resident set size of this process in MiB."""
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class DGLBackend:
    """``dgl_ltd`` itself: ``DGLGraph``, ``dgl_ltd.models``, ``train_teacher`` and ``Distiller``."""

    name = "dgl"

    def __init__(self, bundle: dict, device: torch.device):
        import dgl

        from dgl_ltd.distill import Distiller
        from dgl_ltd.models import build_model
        from dgl_ltd.training import train_teacher

        self._distiller, self._build, self._train = Distiller, build_model, train_teacher
        graph = dgl.graph((bundle["src"], bundle["dst"]), num_nodes=bundle["num_nodes"])
        graph.ndata["feat"] = bundle["feat"]
        graph.ndata["label"] = bundle["label"]
        for name, mask in bundle["masks"].items():
            graph.ndata[name] = mask
        self.graph = graph.to(device)

    def build(self, model: str, state: dict, in_feats: int, n_classes: int, device: torch.device):
        net = self._build(model, in_feats, n_classes)
        net.load_state_dict(state)
        return net.to(device)

    def warm_up(self, net) -> None:
        """One untimed Adam step and eval pass: one-time start-up costs (lazy imports, kernels) stay out of the timings."""
        optimizer = torch.optim.Adam(net.parameters())  # the first Adam imports torch._dynamo (~1.5 s)
        net.train()
        net(self.graph, self.graph.ndata["feat"]).sum().backward()
        optimizer.step()
        net.eval()
        with torch.no_grad():
            net(self.graph, self.graph.ndata["feat"])

    def train_teacher(self, net, lr: float, weight_decay: float, epochs: int, patience: int, seed: int):
        return self._train(net, self.graph, lr=lr, weight_decay=weight_decay, max_epochs=epochs,
                           patience=patience, seed=seed, show_progress=False)

    def distill(self, net, method: str, config: dict, teacher: torch.Tensor, seed: int):
        return self._distiller(net, method, **config).fit(self.graph, teacher, seed=seed)


class PyGBackend:
    """The PyG twin: ``Data``/``edge_index``, :mod:`.models`, :func:`.training.train_teacher`, :class:`.distiller.PyGDistiller`."""

    name = "pyg"

    def __init__(self, bundle: dict, device: torch.device):
        from torch_geometric.data import Data

        from .distiller import PyGDistiller
        from .models import build_model
        from .training import train_teacher
        from .transfer import copy_dgl_weights

        self._distiller, self._build, self._train, self._copy = PyGDistiller, build_model, train_teacher, copy_dgl_weights
        edge_index = torch.stack([bundle["src"], bundle["dst"]])
        self.data = Data(x=bundle["feat"], edge_index=edge_index, y=bundle["label"], **bundle["masks"]).to(device)

    def build(self, model: str, state: dict, in_feats: int, n_classes: int, device: torch.device):
        net = self._build(model, in_feats, n_classes)
        self._copy(model, state, net)
        return net.to(device)

    def warm_up(self, net) -> None:
        """One untimed Adam step and eval pass: one-time start-up costs (lazy imports, kernels) stay out of the timings."""
        optimizer = torch.optim.Adam(net.parameters())  # the first Adam imports torch._dynamo (~1.5 s)
        net.train()
        net(self.data.x, self.data.edge_index).sum().backward()
        optimizer.step()
        net.eval()
        with torch.no_grad():
            net(self.data.x, self.data.edge_index)

    def train_teacher(self, net, lr: float, weight_decay: float, epochs: int, patience: int, seed: int):
        return self._train(net, self.data, lr=lr, weight_decay=weight_decay, max_epochs=epochs, patience=patience,
                           seed=seed)

    def distill(self, net, method: str, config: dict, teacher: torch.Tensor, seed: int):
        return self._distiller(net, method, **config).fit(self.data, teacher, seed=seed)


def run_job(framework: str, bundle: dict, job: dict) -> dict[str, Any]:
    """Run ``job`` on ``framework`` and return its figures (see the module docstring)."""
    device = torch.device(job.get("device", "cpu"))
    backend = (DGLBackend if framework == "dgl" else PyGBackend)(bundle, device)
    model, seed = job["model"], int(job["seed"])
    in_feats, n_classes = bundle["feat"].shape[1], bundle["n_classes"]
    state = bundle["init"][model][seed]
    teacher = bundle["teachers"][model].to(device)
    timing = job["kind"] == "timing"
    epochs = int(job.get("epochs", 20))
    out: dict[str, Any] = {"framework": framework, "model": model, "seed": seed, "kind": job["kind"],
                           "device": str(device), "threads": torch.get_num_threads(),
                           "results": {}}
    backend.warm_up(backend.build(model, state, in_feats, n_classes, device))
    out["rss_setup_mb"] = rss_mb()  # imports, data, graph and one warm-up step
    for method in job["methods"]:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        net = backend.build(model, state, in_feats, n_classes, device)
        if method == "teacher":
            opt = bundle["teacher_opt"][model]
            max_epochs, patience = (epochs, 10 * epochs) if timing else (600, 50)
            _sync(device)
            start = time.perf_counter()
            res = backend.train_teacher(net, opt["lr"], opt["weight_decay"], max_epochs, patience, seed)
            _sync(device)
            seconds = time.perf_counter() - start
            row = {"seconds_per_epoch": seconds / res.epochs, "epochs": res.epochs}
        else:
            config = dict(bundle["configs"][model][method], show_progress=False)
            if timing:
                config.update(max_epochs=epochs, patience=10 * epochs)
                if method.startswith("ltd"):
                    config["warmup"] = int(job.get("warmup", 2))
            res = backend.distill(net, method, config, teacher, seed)
            row = {"seconds_per_epoch": res.seconds_per_epoch, "epochs": res.epochs}
        row.update(test_acc=res.test_acc, val_acc=res.val_acc, best_epoch=res.best_epoch, peak_rss_mb=peak_rss_mb())
        if device.type == "cuda":
            row["gpu_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        out["results"][method] = row
        del net, res
    out["rss_peak_mb"] = peak_rss_mb()
    out["dgl_loaded"] = "dgl" in sys.modules
    out["pyg_loaded"] = "torch_geometric" in sys.modules
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=("dgl", "pyg"), required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--job", required=True, help="JSON object: kind, model, seed, methods, epochs, warmup, device")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bundle = torch.load(args.bundle)
    print(json.dumps(run_job(args.framework, bundle, json.loads(args.job))), flush=True)


if __name__ == "__main__":
    main()
