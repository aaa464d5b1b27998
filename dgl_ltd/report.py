"""A run report people can look at: where the learned temperatures went, as PNG plots, Markdown and HTML.

:func:`write_report` takes one :class:`~dgl_ltd.distill.DistillResult` (or the results of
several seeds) and writes into a folder

* ``temperature_histogram.png``: the learned temperatures against the start temperature;
* ``temperature_vs_degree.png`` and ``temperature_vs_entropy.png``: temperature against node
  degree and against the neighbourhood entropy of the teacher (:mod:`dgl_ltd.entropy`);
* ``temperature_by_teacher.png``: temperatures where the teacher is right and where it is wrong;
* ``training_curves.png``: validation accuracy, tau mean +- std and meta-gradient norm per epoch;
* ``seed_accuracy.png`` (several seeds): test accuracy per seed against the teacher;
* ``report.md`` (figures linked) and ``report.html`` (one page, figures inlined), both with the
  run's settings, figures and versions.

Node-level plots show the first result (the first seed). A plot that has nothing to show is left
out and the report says why: KD and FT keep one temperature for every node; degree and entropy
need the graph, the teacher split needs the teacher's logits and the labels. Every file is written
under a temporary name and renamed when complete. matplotlib is imported only here, when a report
is written (``pip install 'dgl_ltd[report]'``), never on the training path.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import importlib.util
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import UserInputError
from .report_render import Figure, Section, to_html, to_markdown

FIGURE_FILES = ("temperature_histogram.png", "temperature_vs_degree.png", "temperature_vs_entropy.png",
                "temperature_by_teacher.png", "training_curves.png", "seed_accuracy.png")


@dataclass
class Report:
    """The files :func:`write_report` wrote, and why any plot was left out."""

    markdown: Path
    html: Path
    figures: list
    notes: list


def check_report_dir(out_dir) -> Path:
    """``out_dir`` as a Path, or a one-line error when it cannot become a writable folder or matplotlib is missing.

    Nothing is created here (a run that fails later leaves no empty folder); the nearest existing
    parent must be a writable folder.
    """
    from .files import check_output_folder

    path = Path(out_dir).expanduser()
    check_output_folder(path, "--report")
    if importlib.util.find_spec("matplotlib") is None:
        raise UserInputError("reports need matplotlib: pip install matplotlib (or the package's [report] extra)")
    return path


def write_report(result_or_results, out_dir, graph=None, teacher_logits=None, labels=None,
                 teacher_test_acc: float | None = None, run_info: dict | None = None,
                 seeds: list | None = None) -> Report:
    """Write the PNG plots, ``report.md`` and ``report.html`` of a distillation run into ``out_dir``.

    Parameters
    ----------
    result_or_results : DistillResult or list of DistillResult
        One run, or one per seed (same graph). Node-level plots show the first.
    out_dir : str or Path
        Folder for the report; created if missing. Files of an earlier report there are replaced.
    graph : DGLGraph, optional
        The graph the run trained on: needed for the degree and entropy plots (and, through
        ``ndata['label']`` and ``ndata['test_mask']``, the teacher split and the teacher's accuracy).
    teacher_logits : Tensor, optional
        The teacher's (N, C) logits: needed for the entropy plot and the teacher split.
    labels : Tensor, optional
        (N,) class indices; default ``graph.ndata['label']``.
    teacher_test_acc : float, optional
        Drawn against the seeds; default: the teacher's accuracy on ``graph.ndata['test_mask']``.
    run_info : dict, optional
        Extra settings for the report's first table (dataset, model, teacher source, ...).
    seeds : list of int, optional
        The seed of each result, for labels (default: runs are numbered 1, 2, ...).

    Returns
    -------
    Report
        The paths written and the notes on plots left out.
    """
    results = _as_results(result_or_results)
    path = check_report_dir(out_dir)
    names = _run_names(results, seeds)
    tau = results[0].temperatures.detach().cpu().double().numpy()
    labels = _node_labels(graph, labels, tau.size)
    teacher = _teacher(teacher_logits, tau.size)
    if graph is not None and graph.num_nodes() != tau.size:
        raise UserInputError(f"the graph has {graph.num_nodes()} nodes but the run has {tau.size} temperatures; "
                             f"pass the graph the run trained on")
    if teacher_test_acc is None:
        teacher_test_acc = _teacher_test_acc(graph, teacher, labels)
    path.mkdir(parents=True, exist_ok=True)
    figures, notes = _draw_figures(path, results, names, tau, graph, teacher, labels, teacher_test_acc)
    for stale in set(FIGURE_FILES) - {f.file for f in figures}:  # an earlier report's plot would mislead
        (path / stale).unlink(missing_ok=True)
    sections = _sections(results, names, teacher_test_acc, run_info or {}, figures, notes)
    title = _title(results[0], run_info or {})
    markdown = _replace_atomically(path / "report.md", lambda p: p.write_text(to_markdown(title, sections)))
    page = _replace_atomically(path / "report.html", lambda p: p.write_text(to_html(title, sections, path)))
    return Report(markdown, page, [path / f.file for f in figures], notes)


def _as_results(result_or_results) -> list:
    results = list(result_or_results) if isinstance(result_or_results, (list, tuple)) else [result_or_results]
    if not results:
        raise UserInputError("write_report needs at least one DistillResult; pass the result of Distiller.fit")
    for result in results:
        if not all(hasattr(result, key) for key in ("temperatures", "history", "config", "test_acc")):
            raise UserInputError(f"write_report takes DistillResult objects (from Distiller.fit), got "
                                 f"{type(result).__name__}")
    sizes = {int(r.temperatures.numel()) for r in results}
    if len(sizes) != 1:
        raise UserInputError(f"the results hold {sorted(sizes)} temperatures: runs on different graphs; "
                             f"report them separately")
    return results


def _run_names(results: list, seeds: list | None) -> list:
    if seeds is None:
        return [f"run {i + 1}" for i in range(len(results))]
    if len(seeds) != len(results):
        raise UserInputError(f"{len(seeds)} seeds for {len(results)} results; pass one seed per result")
    return [f"seed {s}" for s in seeds]


def _node_labels(graph, labels, n: int):
    if labels is None and graph is not None and "label" in graph.ndata:
        labels = graph.ndata["label"]
    if labels is None:
        return None
    labels = torch.as_tensor(labels)
    if tuple(labels.shape) != (n,):
        raise UserInputError(f"labels have shape {tuple(labels.shape)} but the run has {n} nodes; pass one per node")
    return labels.cpu()


def _teacher(teacher_logits, n: int):
    if teacher_logits is None:
        return None
    teacher = torch.as_tensor(teacher_logits).detach().cpu().float()
    if teacher.dim() != 2 or teacher.shape[0] != n:
        raise UserInputError(f"teacher logits have shape {tuple(teacher.shape)} but the run has {n} nodes; "
                             f"pass N x C logits")
    return teacher


def _teacher_test_acc(graph, teacher, labels) -> float | None:
    from .metrics import accuracy

    if graph is None or teacher is None or labels is None or "test_mask" not in graph.ndata:
        return None
    mask = graph.ndata["test_mask"].cpu()
    return accuracy(teacher, labels, mask) if bool(mask.any()) else None


def _replace_atomically(path: Path, write) -> Path:
    """Call ``write(partial)`` on a temporary name beside ``path``, then rename it to ``path``."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _save(figure, folder: Path, file: str, caption: str) -> Figure:
    _replace_atomically(folder / file, lambda p: figure.savefig(p, format="png"))
    return Figure(file, caption)


def _draw_figures(folder, results, names, tau, graph, teacher, labels, teacher_acc):
    """Draw every plot the inputs allow; returns the figures and a note for each one left out."""
    from . import report_plots as plots

    figures, notes = [], []
    method = results[0].config.get("method", "?")
    if np.ptp(tau) == 0:
        notes.append(f"The temperatures are constant (tau = {tau[0]:.4g} for every node: method {method} does not "
                     f"learn them), so the four temperature plots are left out.")
    else:
        start = results[0].config.get("resolved_init_tau")
        figures.append(_save(plots.temperature_histogram(tau, start), folder, FIGURE_FILES[0],
                             "Learned temperatures" + ("" if start is None else ", dashed: the start temperature")))
        figures += _graph_figures(folder, tau, graph, teacher, labels, notes)
    histories = [r.history for r in results if r.history]
    if histories:
        figures.append(_save(plots.training_curves(histories, names), folder, FIGURE_FILES[4],
                             "Validation accuracy, tau mean +- std and meta-gradient norm per epoch"))
    else:
        notes.append("The results hold no training history, so the training curves are left out.")
    if len(results) > 1:
        accs = [float(r.test_acc) for r in results]
        figures.append(_save(plots.seed_accuracy(names, accs, teacher_acc), folder, FIGURE_FILES[5],
                             "Test accuracy per seed" + ("" if teacher_acc is None else ", dashed: the teacher")))
    else:
        notes.append("One seed only, so the per-seed accuracy plot is left out (run several seeds to draw it).")
    return figures, notes


def _graph_figures(folder, tau, graph, teacher, labels, notes) -> list:
    """The plots of temperature against degree, neighbourhood entropy and the teacher's correctness."""
    from . import report_plots as plots
    from .metrics import predictions

    figures = []
    if graph is None:
        notes.append("No graph was given, so the degree and entropy plots are left out.")
    else:
        degree = graph.in_degrees().cpu().double().numpy()
        figures.append(_save(plots.temperature_scatter(degree, tau, "in-degree (symlog)", "Temperature against node "
                             "degree", log_x=True), folder, FIGURE_FILES[1], "Temperature against node in-degree"))
        if teacher is None:
            notes.append("No teacher logits were given, so the entropy plot is left out.")
        else:
            from .entropy import neighbourhood_entropy

            entropy = neighbourhood_entropy(graph, teacher.to(graph.device)).cpu().double().numpy()
            figures.append(_save(plots.temperature_scatter(entropy, tau, "neighbourhood entropy of the teacher",
                                                           "Temperature against neighbourhood entropy"),
                                 folder, FIGURE_FILES[2], "Temperature against the teacher's neighbourhood entropy"))
    if teacher is None or labels is None:
        notes.append("The teacher's logits and the labels are both needed to split the temperatures by the "
                     "teacher's correctness; that plot is left out.")
    else:
        right = (predictions(teacher) == labels).numpy()
        figures.append(_save(plots.temperature_by_teacher(tau, right), folder, FIGURE_FILES[3],
                             "Temperatures where the teacher is right and where it is wrong (all nodes)"))
    return figures


def _title(result, run_info: dict) -> str:
    method = str(result.config.get("method", "distillation")).upper()
    where = " on ".join(str(run_info[k]) for k in ("model", "dataset") if run_info.get(k) is not None)
    return f"{method} run report" + (f": {where}" if where else "")


def _sections(results, names, teacher_acc, run_info, figures, notes) -> list:
    accs = np.array([float(r.test_acc) for r in results])
    summary = f"Test accuracy {accs.mean():.4f}"
    if len(results) > 1:
        summary += f" +- {accs.std(ddof=1):.4f} (sample std over {len(results)} seeds)"
    if teacher_acc is not None:
        summary += f"; teacher {teacher_acc:.4f}"
    per_run = [["run", "test acc", "val acc", "best epoch", "epochs", "s / epoch", "tau mean", "tau std", "tau min",
                "tau max"]]
    for name, r in zip(names, results):
        tau = r.temperatures.detach().double()
        per_run.append([name, float(r.test_acc), float(r.val_acc), r.best_epoch, r.epochs,
                        float(r.seconds_per_epoch), float(tau.mean()), float(tau.std()) if tau.numel() > 1 else 0.0,
                        float(tau.min()), float(tau.max())])
    settings = [["setting", "value"]] + [[k, v] for k, v in run_info.items()]
    settings += [[k, v] for k, v in results[0].config.items() if k not in run_info]
    plots_text = notes + (["Node-level plots show " + names[0] + "."] if figures and len(results) > 1 else [])
    return [
        Section("Results", [summary], per_run),
        Section("Plots", plots_text, figures=figures),
        Section("Settings", ["The first run's resolved configuration (every run shares it but the seed)."], settings),
        Section("Versions", [f"Written {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
                             f"{platform.platform()}."], [["package", "version"]] + _versions()),
    ]


def _versions() -> list:
    from . import __version__

    rows = [["python", platform.python_version()], ["dgl_ltd", __version__], ["torch", torch.__version__]]
    for package in ("dgl", "numpy", "matplotlib"):
        try:
            rows.append([package, importlib.metadata.version(package)])
        except importlib.metadata.PackageNotFoundError:
            rows.append([package, "not installed"])
    return rows
