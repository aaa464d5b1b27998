"""The figures of a run report (:mod:`dgl_ltd.report`), drawn with matplotlib's object API.

matplotlib is imported inside :func:`new_figure` only, so importing this module (or training
anything) never needs it. Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas,
never through ``pyplot``: no global state, no GUI backend, safe in threads and on headless machines.
Every function takes NumPy arrays and returns a finished figure (``figure.savefig`` writes it).
"""
from __future__ import annotations

import numpy as np

FIGURE_SIZE = (6.4, 4.2)
DPI = 110
POINT_ALPHA = 0.35


def new_figure(nrows: int = 1, ncols: int = 1, size: tuple = FIGURE_SIZE):
    """A figure on the Agg canvas and its axes (a 1-D array when there is more than one)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=True)
    return figure, axes


def temperature_histogram(tau: np.ndarray, start: float | None):
    """Histogram of the learned temperatures, with the start temperature marked when known."""
    figure, ax = new_figure()
    ax.hist(tau, bins=min(60, max(10, int(np.sqrt(tau.size)))), color="tab:blue", alpha=0.8)
    if start is not None:
        ax.axvline(start, color="tab:red", linestyle="--", label=f"start temperature {start:.4g}")
        ax.legend()
    ax.set_xlabel("learned temperature tau")
    ax.set_ylabel("nodes")
    ax.set_title(f"Learned temperatures of {tau.size} nodes (mean {tau.mean():.4g}, std {tau.std():.3g})")
    return figure


def temperature_scatter(x: np.ndarray, tau: np.ndarray, xlabel: str, title: str, log_x: bool = False):
    """Temperature of every node against one node property, with the median per bin of ``x``."""
    figure, ax = new_figure()
    ax.scatter(x, tau, s=6, alpha=POINT_ALPHA, color="tab:blue", linewidths=0, label="node")
    centres, medians = binned_medians(x, tau, log_x)
    ax.plot(centres, medians, color="tab:red", marker="o", markersize=3, label="median per bin")
    if log_x:
        ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("learned temperature tau")
    ax.set_title(title)
    ax.legend()
    return figure


def binned_medians(x: np.ndarray, y: np.ndarray, log_x: bool, bins: int = 12):
    """Centres and medians of ``y`` over equal-width (or log-width) bins of ``x``; empty bins are left out."""
    low, high = float(x.min()), float(x.max())
    if high <= low:
        return np.array([low]), np.array([float(np.median(y))])
    edges = np.geomspace(low + 1, high + 1, bins + 1) - 1 if log_x else np.linspace(low, high, bins + 1)
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    centres, medians = [], []
    for b in range(bins):
        inside = which == b
        if inside.any():
            centres.append(float(np.median(x[inside])))
            medians.append(float(np.median(y[inside])))
    return np.array(centres), np.array(medians)


def temperature_by_teacher(tau: np.ndarray, teacher_right: np.ndarray):
    """Box plots of the temperatures where the teacher is right and where it is wrong."""
    figure, ax = new_figure()
    groups = [tau[teacher_right], tau[~teacher_right]]
    names = [f"teacher right\n({int(teacher_right.sum())} nodes)", f"teacher wrong\n({int((~teacher_right).sum())} nodes)"]
    kept = [(g, n) for g, n in zip(groups, names) if g.size]
    ax.boxplot([g for g, _ in kept], showmeans=True)
    ax.set_xticks(np.arange(1, len(kept) + 1), [n for _, n in kept])
    ax.set_ylabel("learned temperature tau")
    ax.set_title("Temperature by whether the teacher's prediction is right")
    return figure


def training_curves(histories: list, names: list):
    """Validation accuracy, tau mean +- std and meta-gradient norm per epoch, one line per run."""
    figure, axes = new_figure(3, 1, size=(6.4, 8.4))
    has_meta = False
    for history, name in zip(histories, names):
        epochs = np.array([h["epoch"] for h in history])
        axes[0].plot(epochs, [h["val_acc"] for h in history], label=name)
        mean = np.array([h["tau_mean"] for h in history])
        std = np.array([h["tau_std"] for h in history])
        line, = axes[1].plot(epochs, mean, label=name)
        axes[1].fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        meta = [(h["epoch"], h["meta_grad_norm"]) for h in history if h.get("meta_grad_norm") is not None]
        if meta:
            has_meta = True
            axes[2].plot(*zip(*meta), marker=".", markersize=3, label=name)
    axes[0].set_ylabel("validation accuracy")
    axes[1].set_ylabel("tau mean +- std")
    axes[2].set_ylabel("meta-gradient norm")
    if has_meta:
        axes[2].set_yscale("log")
    else:
        axes[2].text(0.5, 0.5, "no meta-gradient: the temperatures were not learned", ha="center", va="center",
                     transform=axes[2].transAxes)
    axes[2].set_xlabel("epoch")
    axes[0].set_title("Training curves")
    if len(names) > 1:
        axes[0].legend(fontsize="small")
    return figure


def seed_accuracy(names: list, test_accs: list, teacher_acc: float | None):
    """Test accuracy of every seed, their mean, and the teacher's accuracy."""
    figure, ax = new_figure()
    positions = np.arange(len(names))
    ax.bar(positions, test_accs, color="tab:blue", alpha=0.8, label="student")
    ax.axhline(float(np.mean(test_accs)), color="tab:blue", linestyle=":", label=f"student mean {np.mean(test_accs):.4f}")
    values = list(test_accs)
    if teacher_acc is not None:
        ax.axhline(teacher_acc, color="tab:red", linestyle="--", label=f"teacher {teacher_acc:.4f}")
        values.append(teacher_acc)
    spread = max(values) - min(values)
    ax.set_ylim(max(0.0, min(values) - max(spread, 0.01)), min(1.0, max(values) + max(spread, 0.01)))
    ax.set_xticks(positions, names)
    ax.set_ylabel("test accuracy")
    ax.set_title("Test accuracy per seed")
    ax.legend(loc="lower right")
    return figure
