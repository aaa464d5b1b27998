"""GNN-to-MLP distillation (the GLNN setting): does a learned per-node temperature help an MLP student?

Students: GLNN's MLP of each dataset (``dgl_ltd.models.glnn_mlp``: 2 layers of 128, dataset dropout)
trained full-graph with :class:`dgl_ltd.Distiller`'s defaults (Adam 0.01, weight decay 5e-4, mean
losses, label weight 1, early stopping on validation accuracy with patience 50, at most 600 epochs),
under the paper's split (``--protocol ltd``: 20 + 20 labelled and 10 validation nodes per class).
"MLP alone" trains the same MLP on the 40 labelled nodes per class (V_L^D and V_L^E, what the
teachers trained on) with the same optimiser and early stopping. KD is FT's grid run at T = 1 (KD
is FT at T = 1; in the inductive setting, whose FT trials are scored on the observed nodes only, KD
runs on its own); "FT tuned" is FT at the grid temperature (0.25, 0.5, 1, 2, 4) that scores best on
the validation nodes; LTD and LTD-S start at the teacher's calibrated temperature.

* transductive: the teachers are the LTD paper's shipped GraphSAGE and GCN logits; the KD term
  sees every node; accuracy on the test nodes.
* inductive: ``--share`` (20%) of the test nodes, drawn with the run's seed, are held out of the
  teacher's training graph and of distillation (``dgl_ltd.inductive.inductive_split``). A teacher of
  this package (``build_teacher``, ``train_teacher`` with ``TEACHER_DEFAULTS``, the run's seed) trains
  on the observed node subgraph; the students distil its logits there; accuracy on the held-out
  nodes: the MLP's from their features, the teacher's from the whole graph.

For every LTD run the learned temperatures are compared with the MLP's and the teacher's correctness
and with the log degree on the test nodes (Pearson correlation), to see whether the temperatures
single out the nodes the MLP gets wrong.

Usage: python benchmarks/glnn.py [--datasets cora,citeseer] [--teachers graphsage,gcn] [--seeds 0,1,2]
[--settings transductive,inductive] [--share 0.2] [--threads 1] [--table-only]. Runs are appended to
results/runs/glnn.jsonl (resumable); the report is results/reports/glnn.md (benchmarks/glnn_report.py).
"""
from __future__ import annotations

import argparse
import time

import torch

from common import RESULTS, at_least, choice_list, data_dir, seed_list
from runstore import RunStore

DATASETS = ["cora", "citeseer", "amazon-computers", "amazon-photo"]
TEACHERS = ["graphsage", "gcn"]
SETTINGS = ["transductive", "inductive"]
METHODS = ["ft", "ltd", "ltd-s"]
STORE = RESULTS / "runs" / "glnn.jsonl"
# GLNN's Table 2 (transductive; GraphSAGE teacher / MLP alone / GLNN), as quoted in issue 17
GLNN_PUBLISHED = {"cora": (80.52, 59.22, 80.54), "citeseer": (70.33, 59.61, 71.77),
                  "amazon-computers": (82.97, 67.65, 83.03), "amazon-photo": (90.90, 77.29, 92.11)}


def share_type(text: str) -> float:
    """argparse type of ``--share``: the held-out share in (0, 1)."""
    from dgl_ltd.errors import UserInputError
    from dgl_ltd.inductive import check_share

    try:
        return check_share(float(text))
    except (ValueError, UserInputError) as exc:
        raise argparse.ArgumentTypeError(str(exc) if isinstance(exc, UserInputError) else
                                         f"the inductive share must be a number in (0, 1), got {text!r}") from None


def mlp_for(dataset: str, graph, n_classes: int):
    from dgl_ltd.models import glnn_mlp

    return glnn_mlp(graph.ndata["feat"].shape[1], n_classes, dataset)


def student_config(distiller) -> dict:
    from dataclasses import asdict

    config = dict(asdict(distiller.config), student="glnn_mlp")
    config.pop("show_progress")
    return config


def correlation(a: torch.Tensor, b: torch.Tensor) -> float | None:
    a, b = a.double(), b.double()
    if a.std() == 0 or b.std() == 0:
        return None
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def temperature_figures(res, graph, teacher: torch.Tensor, nodes: torch.Tensor) -> dict:
    """Where the learned temperatures went, on ``nodes``: spread and correlations."""
    tau = res.temperatures.detach()[nodes]
    labels = graph.ndata["label"][nodes]
    mlp_right = (res.logits.detach()[nodes].argmax(1) == labels).double()
    teacher_right = (teacher[nodes].argmax(1) == labels).double()
    log_degree = torch.log1p(graph.in_degrees()[nodes].double())
    start = res.config.get("resolved_init_tau")
    return {"tau_mean": float(tau.mean()), "tau_std": float(tau.std()), "tau_start": start,
            "share_moved_10pct": float(((tau - start).abs() > 0.1 * abs(start)).double().mean()) if start else None,
            "corr_tau_mlp_correct": correlation(tau, mlp_right),
            "corr_tau_teacher_correct": correlation(tau, teacher_right),
            "corr_tau_log_degree": correlation(tau, log_degree)}


def run_student(store, key: dict, graph, teacher, dataset: str, method: str, seed: int, score) -> None:
    """One distillation run (skipped when the store has it); ``score(res) -> figures`` scores it."""
    from dgl_ltd import Distiller
    from dgl_ltd.training import set_seed

    set_seed(seed)
    distiller = Distiller(mlp_for(dataset, graph, teacher.shape[1]), method, show_progress=False)
    config = student_config(distiller)
    if store.get(key, config) is not None:
        return
    start = time.perf_counter()
    res = distiller.fit(graph, teacher, seed=seed)
    figures = {"val_acc": res.val_acc, "epochs": res.epochs, "seconds": time.perf_counter() - start, **score(res)}
    if "ft_trials" in res.config:
        figures["ft_trials"] = res.config["ft_trials"]
        figures["temperature"] = res.config["temperature"]
    store.add(key, config, figures)
    print(f"{key}: {figures.get('test_acc', 0):.4f} in {figures['seconds']:.0f} s", flush=True)


def run_alone(store, key: dict, graph, dataset: str, seed: int, score) -> None:
    """The MLP on the labelled nodes only, with the students' optimiser and early stopping."""
    from dgl_ltd.distill import DistillConfig
    from dgl_ltd.training import fit_classifier, set_seed

    defaults = DistillConfig()
    config = {"student": "glnn_mlp", "lr": defaults.alpha, "weight_decay": defaults.weight_decay,
              "max_epochs": defaults.max_epochs, "patience": defaults.patience}
    if store.get(key, config) is not None:
        return
    set_seed(seed)
    nd = graph.ndata
    model = mlp_for(dataset, graph, int(nd["label"].max()) + 1)
    res = fit_classifier(model, (nd["feat"],), nd["label"], nd["train_mask"], nd["val_mask"], None, config["lr"],
                         config["weight_decay"], config["max_epochs"], config["patience"])
    store.add(key, config, {"val_acc": res.val_acc, "epochs": res.epochs, **score(res.model)})


def transductive(store, dataset: str, teachers: list, seeds: list) -> None:
    from dgl_ltd.data import accuracy, load_dataset, load_logits
    from dgl_ltd.hparams import teacher_logits_path

    graph = load_dataset(dataset, data_dir(), "ltd")
    nd = graph.ndata
    test = nd["test_mask"].nonzero().squeeze(-1)
    base = {"bench": "glnn", "setting": "transductive", "dataset": dataset}
    for seed in seeds:
        run_alone(store, {**base, "role": "alone", "seed": seed}, graph, dataset, seed,
                  lambda model: {"test_acc": accuracy(model.inference(graph, nd["feat"]), nd["label"], nd["test_mask"])})
    for model in teachers:
        path = teacher_logits_path(data_dir(), dataset, model)
        teacher = load_logits(path, graph)
        key = {**base, "role": "teacher", "teacher": model, "seed": None}
        if store.get(key, {"logits": path.name}) is None:
            store.add(key, {"logits": path.name}, {"test_acc": accuracy(teacher, nd["label"], nd["test_mask"])})
        for seed in seeds:
            for method in METHODS:
                def score(res, teacher=teacher):
                    out = {"test_acc": res.test_acc}
                    return {**out, **temperature_figures(res, graph, teacher, test)} if method != "ft" else out
                run_student(store, {**base, "role": "student", "teacher": model, "method": method, "seed": seed},
                            graph, teacher, dataset, method, seed, score)


def observed_graph(graph, share: float, seed: int) -> tuple:
    """The observed node subgraph (with its masks) and the held-out node ids of ``graph``."""
    from dgl_ltd._compat import dgl
    from dgl_ltd.inductive import inductive_split

    observed, held_out = inductive_split(graph, share, seed)
    return dgl.node_subgraph(graph, observed), observed, held_out


def inductive_teacher(store, base: dict, graph, sub, held_out, model: str, seed: int) -> torch.Tensor:
    """Train the teacher on the observed subgraph; its logits there; its held-out accuracy on the whole graph."""
    from dgl_ltd.data import accuracy
    from dgl_ltd.models import build_teacher
    from dgl_ltd.training import TEACHER_DEFAULTS, evaluate, set_seed, train_teacher

    set_seed(seed)
    nd = graph.ndata
    net = build_teacher(model, nd["feat"].shape[1], int(nd["label"].max()) + 1)
    res = train_teacher(net, sub, seed=seed, show_progress=False, **TEACHER_DEFAULTS[model])
    whole = evaluate(res.model, graph, nd["feat"])
    key = {**base, "role": "teacher", "teacher": model, "seed": seed}
    if store.get(key, TEACHER_DEFAULTS[model]) is None:
        store.add(key, TEACHER_DEFAULTS[model], {"test_acc": accuracy(whole[held_out], nd["label"][held_out],
                                                                      torch.ones(len(held_out), dtype=torch.bool)),
                                                 "observed_test_acc": res.test_acc, "epochs": res.epochs})
    return res.logits.detach()


def inductive(store, dataset: str, teachers: list, seeds: list, share: float) -> None:
    from dgl_ltd.data import accuracy, load_dataset

    graph = load_dataset(dataset, data_dir(), "ltd")
    feat, labels = graph.ndata["feat"], graph.ndata["label"]
    base = {"bench": "glnn", "setting": "inductive", "share": share, "dataset": dataset}
    for seed in seeds:
        sub, observed, held_out = observed_graph(graph, share, seed)
        every = torch.ones(len(held_out), dtype=torch.bool)

        def held_out_acc(model):
            return accuracy(model.inference(None, feat[held_out]), labels[held_out], every)

        run_alone(store, {**base, "role": "alone", "seed": seed}, sub, dataset, seed,
                  lambda model: {"test_acc": held_out_acc(model)})
        sub_test = sub.ndata["test_mask"].nonzero().squeeze(-1)
        for model in teachers:
            teacher = inductive_teacher(store, base, graph, sub, held_out, model, seed)
            for method in ["kd"] + METHODS:  # FT's grid scores its trials on the observed nodes: KD runs alone
                def score(res, teacher=teacher):
                    out = {"test_acc": held_out_acc(res.student), "observed_test_acc": res.test_acc}
                    return {**out, **temperature_figures(res, sub, teacher, sub_test)} if method.startswith("ltd") else out
                run_student(store, {**base, "role": "student", "teacher": model, "method": method, "seed": seed},
                            sub, teacher, dataset, method, seed, score)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=choice_list(DATASETS), default="cora,citeseer")
    parser.add_argument("--teachers", type=choice_list(TEACHERS), default=",".join(TEACHERS))
    parser.add_argument("--settings", type=choice_list(SETTINGS), default=",".join(SETTINGS))
    parser.add_argument("--seeds", type=seed_list, default="0,1,2")
    parser.add_argument("--share", type=share_type, default=0.2, help="inductive: held-out share of the test nodes")
    parser.add_argument("--threads", type=at_least(1), default=1)
    parser.add_argument("--table-only", action="store_true", help="only rewrite the report from the store")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    store = RunStore(STORE)
    seeds = [int(s) for s in args.seeds.split(",")]
    if not args.table_only:
        for setting in args.settings.split(","):
            for dataset in args.datasets.split(","):
                if setting == "transductive":
                    transductive(store, dataset, args.teachers.split(","), seeds)
                else:
                    inductive(store, dataset, args.teachers.split(","), seeds, args.share)
    from glnn_report import write_report

    print(write_report(store))


if __name__ == "__main__":
    main()
