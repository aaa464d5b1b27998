"""Checking and coercing what :meth:`Distiller.fit` is given, in one place, before any training.

Masks, features and labels left out come from ``graph.ndata``; a graph that has only DGL's usual
``train_mask``/``val_mask``/``test_mask`` works: the label loss then uses the training nodes and the
temperatures are judged (and their start calibrated) on the validation nodes.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import UserInputError
from ..metrics import check_finite, check_mask


@dataclass
class NodeData:
    """Everything a run reads per node, checked: (N, F) features, (N,) labels, (N, C) teacher logits, masks."""

    graph: object
    feat: torch.Tensor
    labels: torch.Tensor
    teacher: torch.Tensor
    distill_mask: torch.Tensor
    val_mask: torch.Tensor
    test_mask: torch.Tensor | None
    meta_mask: torch.Tensor | None = None  # whose label loss the learning step lowers (LTD, LTD-S)
    calibration_mask: torch.Tensor | None = None  # where the start temperature is fitted
    meta_on: str | None = None
    calibrate_on: str | None = None

    @property
    def num_nodes(self) -> int:
        return int(self.feat.shape[0])


def check_graph(graph) -> None:
    """A homogeneous DGLGraph, not a block: the one-line error says what to pass instead."""
    if getattr(graph, "is_block", False):
        raise UserInputError("fit takes the whole graph, not a block; to train on sampled blocks pass the graph "
                             "with fanouts=(10, 10) (--fanouts 10,10)")
    if not hasattr(graph, "num_nodes") or not hasattr(graph, "ndata"):
        raise UserInputError(f"graph must be a DGLGraph, got {type(graph).__name__}")
    if len(graph.ntypes) != 1 or len(graph.canonical_etypes) > 1:
        raise UserInputError("graph is a heterograph; pass a homogeneous graph, e.g. "
                             "dgl.to_homogeneous(g, ndata=['feat', 'label', ...])")


def _node_data(ndata, key: str, given, fallback: str | None = None):
    """``given``, else ``ndata[key]`` (else ``ndata[fallback]``), with a one-line error when none is there."""
    if isinstance(given, np.ndarray):  # NumPy masks, features and labels are welcome
        return torch.as_tensor(given)
    if given is not None:
        return given
    if key in ndata:
        return ndata[key]
    if fallback is not None and fallback in ndata:
        return ndata[fallback]
    argument = "labels" if key == "label" else key
    also = f" or {fallback!r}" if fallback else ""
    raise UserInputError(f"graph.ndata has no {key!r}{also}; store it there or pass {argument}=...")


def _student_dtype(student: nn.Module) -> torch.dtype:
    weights = [p for p in student.parameters() if p.is_floating_point()]
    return weights[0].dtype if weights else torch.get_default_dtype()


def _features(nd, feat, student: nn.Module, n: int) -> torch.Tensor:
    dtype = _student_dtype(student)
    if isinstance(feat, np.ndarray) and np.issubdtype(feat.dtype, np.floating):
        feat = torch.as_tensor(feat, dtype=dtype)  # NumPy floats take the student's dtype silently
    feat = _node_data(nd, "feat", feat)
    if not isinstance(feat, torch.Tensor) or feat.shape[0] != n or not feat.is_floating_point():
        shape = tuple(feat.shape) if hasattr(feat, "shape") else type(feat).__name__
        raise UserInputError(f"node features have shape {shape} and dtype {getattr(feat, 'dtype', None)}; the graph "
                             f"has {n} nodes: pass one floating-point row per node")
    if feat.dtype != dtype:
        warnings.warn(f"dgl_ltd: casting {feat.dtype} node features to the student's {dtype}", stacklevel=4)
        feat = feat.to(dtype)
    return feat


def _test_mask(nd, test_mask, n: int):
    if test_mask is None and "test_mask" in nd:
        test_mask = nd["test_mask"]
    if isinstance(test_mask, np.ndarray):
        test_mask = torch.as_tensor(test_mask)
    if test_mask is None:
        return None
    if not isinstance(test_mask, torch.Tensor) or test_mask.dtype != torch.bool:
        what = f"dtype {test_mask.dtype}" if isinstance(test_mask, torch.Tensor) else type(test_mask).__name__
        raise UserInputError(f"test_mask must be a boolean tensor, got {what}; pass a bool mask")
    if tuple(test_mask.shape) != (n,):
        raise UserInputError(f"test_mask has shape {tuple(test_mask.shape)} but the graph has {n} nodes; "
                             f"pass one entry per node")
    return test_mask  # may be empty: then test_acc is NaN


def _judging(choice: str, temp_mask, what: str) -> str:
    """Resolve ``'auto'``: V_L^E when there is one, else the validation nodes."""
    if choice == "auto":
        return "temp" if temp_mask is not None else "val"
    if choice == "temp" and temp_mask is None:
        raise UserInputError(f"{what}='temp' needs V_L^E: graph.ndata has no 'temp_mask'; store it there, pass "
                             f"temp_mask=..., or use {what}='val'")
    return choice


def _check_labels(labels: torch.Tensor, masks: list, classes: int, n: int) -> torch.Tensor:
    if isinstance(labels, torch.Tensor) and not labels.is_floating_point() and labels.dtype != torch.bool:
        labels = labels.long()  # any integer class indices
    if not isinstance(labels, torch.Tensor) or tuple(labels.shape) != (n,) or labels.dtype != torch.long:
        shape = tuple(labels.shape) if hasattr(labels, "shape") else type(labels).__name__
        raise UserInputError(f"labels have shape {shape} and dtype {getattr(labels, 'dtype', None)}; pass one int64 "
                             f"class index per node ({n})")
    used = torch.zeros(n, dtype=torch.bool, device=labels.device)
    for mask in masks:
        if mask is not None:
            used |= mask.to(labels.device)
    if used.any():  # labels outside every mask (e.g. -1 on unlabelled nodes) are never read
        low, high = int(labels[used].min()), int(labels[used].max())
        if not 0 <= low <= high < classes:
            raise UserInputError(f"labels range over [{low}, {high}] on the masked nodes but the teacher logits have "
                                 f"{classes} columns; pass one logit column per class")
    return labels


def check_inputs(cfg, student: nn.Module, graph, teacher_logits, feat=None, labels=None, distill_mask=None,
                 temp_mask=None, val_mask=None, test_mask=None) -> NodeData:
    """Every check of :meth:`Distiller.fit`'s arguments; returns them as tensors ready to train with."""
    check_graph(graph)
    nd = graph.ndata
    n = graph.num_nodes()
    feat = _features(nd, feat, student, n)
    labels = _node_data(nd, "label", labels)
    distill_mask = check_mask(_node_data(nd, "distill_mask", distill_mask, fallback="train_mask"), "distill_mask", n)
    val_mask = check_mask(_node_data(nd, "val_mask", val_mask), "val_mask", n)
    if temp_mask is not None or "temp_mask" in nd:
        temp_mask = check_mask(_node_data(nd, "temp_mask", temp_mask), "temp_mask", n)
    test_mask = _test_mask(nd, test_mask, n)
    if not isinstance(teacher_logits, torch.Tensor):
        teacher_logits = torch.as_tensor(teacher_logits)
    if teacher_logits.dim() != 2 or teacher_logits.shape[0] != n:
        raise UserInputError(
            f"teacher logits have shape {tuple(teacher_logits.shape)} but the graph has {n} nodes; pass N x C logits")
    data = NodeData(graph, feat, labels, teacher_logits, distill_mask, val_mask, test_mask)
    if cfg.learns:
        data.meta_on = _judging(cfg.meta_on, temp_mask, "meta_on")
        data.calibrate_on = _judging(cfg.calibrate_on, temp_mask, "calibrate_on")
        data.meta_mask = temp_mask if data.meta_on == "temp" else val_mask
        data.calibration_mask = temp_mask if data.calibrate_on == "temp" else val_mask
    masks = [distill_mask, val_mask, test_mask, data.meta_mask]
    data.labels = _check_labels(labels, masks, teacher_logits.shape[1], n)
    check_finite(teacher_logits, "teacher logits")
    check_finite(feat, "node features")
    data.teacher = teacher_logits.detach().to(feat.device, feat.dtype)
    return data
