"""Fused per-node tempered-softmax knowledge-distillation loss.

For node ``v`` with teacher logits ``t_v``, temperature ``tau_v``, student logits ``z_v`` and
weight ``w_v``::

    p_v = softmax(t_v / tau_v)
    l_v = w_v * (-sum_c p_vc * log_softmax(z_v)_c) = w_v * (logsumexp(z_v) - <p_v, z_v>)

:func:`tempered_kd_loss` runs the operator ``torch.ops.dgl_ltd.tempered_kd_loss`` of the compiled
module ``dgl_ltd._C`` (vectorised C++ on torch's CPU thread pool, CUDA on the GPU), which is
differentiable by itself (its gradient is registered in C++): one sweep over the rows forward, one
backward, saving only two log-sum-exps per row instead of N x C probability matrices. Without the
compiled module it evaluates :func:`eager_tempered_kd_loss`, the plain PyTorch expression, with the
same results. :data:`KERNEL_PATH` (and :func:`kernel_path`) say which of the two runs; importing
this module warns once when ``dgl_ltd._C`` is missing, unless ``DGL_LTD_NO_EXT=1`` asked for none.

Environment variables: ``DGL_LTD_DISABLE_KERNEL=1`` forces the eager expression;
``DGL_LTD_CUDA_LANES=4|8|16|32``, read once per process, fixes how many GPU lanes share a row in
both CUDA kernels (by default they pick it from C; ``benchmarks/results/notes/kernel.md``);
``ATEN_CPU_CAPABILITY=default|avx2``, read once, caps the instruction set of the CPU kernels.

This module imports only torch, so it works on machines without DGL.
"""
from __future__ import annotations

import os
import warnings
from typing import Optional, Tuple

import torch
from torch import Tensor

__all__ = ["eager_tempered_kd_loss", "tempered_kd_loss", "has_compiled_kernel", "kernel_path", "KERNEL_PATH"]

_REDUCTIONS = ("sum", "mean", "none")
_KERNEL_DTYPES = (torch.float32, torch.float64)
DISABLE_ENV = "DGL_LTD_DISABLE_KERNEL"
NO_EXT_ENV = "DGL_LTD_NO_EXT"
CUDA_LANES_ENV = "DGL_LTD_CUDA_LANES"  # read once, at the first CUDA call, by the CUDA launchers

try:
    from . import _C  # noqa: F401  (loading the library registers torch.ops.dgl_ltd.*)
except ImportError as exc:  # built with DGL_LTD_NO_EXT=1, a failed build, or an incompatible torch
    _C = None
    _IMPORT_ERROR: Optional[str] = str(exc) or type(exc).__name__
else:
    _IMPORT_ERROR = None


def has_compiled_kernel() -> bool:
    """Whether the compiled module ``dgl_ltd._C`` was loaded (CPU kernels at least).

    Returns
    -------
    bool
        ``True`` when ``torch.ops.dgl_ltd.tempered_kd_loss`` is available. The environment
        variable ``DGL_LTD_DISABLE_KERNEL=1`` does not change this answer; it only makes
        :func:`tempered_kd_loss` use the eager expression.
    """
    return _C is not None


def _cuda_kernels() -> bool:
    return _C is not None and bool(torch.ops.dgl_ltd.built_with_cuda())


def kernel_path() -> str:
    """Which implementation :func:`tempered_kd_loss` runs for float32/float64 CPU tensors, in words.

    Returns
    -------
    str
        ``'compiled-cpu (<isa>)'`` or ``'compiled-cpu+cuda (<isa>)'`` (``<isa>``: the instruction
        set of the CPU row loops: ``avx512``, ``avx2`` or ``default``) when the compiled operator
        runs; ``'eager (<reason>)'`` when the eager expression does (the module is missing, or
        ``DGL_LTD_DISABLE_KERNEL=1``).

    Examples
    --------
    >>> from dgl_ltd.ops import kernel_path
    >>> kernel_path().split(" ")[0] in ("compiled-cpu", "compiled-cpu+cuda", "eager")
    True
    """
    if _C is None:
        return f"eager (dgl_ltd._C is not available: {_IMPORT_ERROR})"
    if os.environ.get(DISABLE_ENV, "") == "1":
        return f"eager ({DISABLE_ENV}=1)"
    devices = "cpu+cuda" if _cuda_kernels() else "cpu"
    return f"compiled-{devices} ({torch.ops.dgl_ltd.cpu_kernel_isa()})"


def _warn_missing_kernel() -> None:
    if _C is None and os.environ.get(NO_EXT_ENV, "") != "1":
        warnings.warn(
            f"dgl_ltd._C is not available ({_IMPORT_ERROR}): tempered_kd_loss runs the eager PyTorch "
            "expression (same results, about 5x slower, 6x more memory). Rebuild with "
            f"`pip install --no-build-isolation .`, or set {NO_EXT_ENV}=1 to run without it on purpose.",
            RuntimeWarning,
            stacklevel=3,
        )


_warn_missing_kernel()
KERNEL_PATH: str = kernel_path()
"""What :func:`kernel_path` said at import."""


def _use_kernel(x: Tensor) -> bool:
    if _C is None or os.environ.get(DISABLE_ENV, "") == "1" or x.dtype not in _KERNEL_DTYPES:
        return False
    if x.device.type == "cpu":
        return True
    return x.device.type == "cuda" and _cuda_kernels()


def _prepare(
    teacher: Tensor, tau: Tensor, student: Tensor, weight: Optional[Tensor], reduction: str
) -> Tuple[Tensor, Optional[Tensor]]:
    """Validate the inputs; return tau as (N,) and the weight as a (N,) tensor of student's dtype."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}: pass 'sum', 'mean' or 'none'")
    if student.dim() != 2:
        raise ValueError(
            f"student logits must be 2-D (N, C), got shape {tuple(student.shape)}: reshape them to (num_nodes, num_classes)"
        )
    if teacher.shape != student.shape:
        raise ValueError(
            f"teacher logits {tuple(teacher.shape)} and student logits {tuple(student.shape)} differ in shape: "
            "pass both as (N, C) for the same nodes"
        )
    if student.shape[1] == 0:
        raise ValueError("student logits have 0 classes: pass logits of shape (N, C) with C >= 1")
    n = student.shape[0]
    if tau.shape not in ((n,), (n, 1)):
        raise ValueError(
            f"tau must have shape (N,) or (N, 1) with N={n}, got {tuple(tau.shape)}: give one temperature per node"
        )
    if not (student.is_floating_point() and teacher.is_floating_point() and tau.is_floating_point()):
        raise ValueError("teacher, tau and student must be floating-point tensors: cast them with .float()")
    if weight is not None:
        if weight.shape not in ((n,), (n, 1)):
            raise ValueError(
                f"weight must have shape (N,) with N={n}, got {tuple(weight.shape)}: give one weight (or mask bit) per node"
            )
        weight = weight.detach().reshape(n).to(student.dtype)  # the weight gets no gradient
    return tau.reshape(n), weight


def _safe_mean(total: Tensor, weight_sum: Tensor) -> Tensor:
    """total / weight_sum, and 0 (with zero gradient, not NaN) when weight_sum == 0."""
    nonzero = weight_sum != 0
    return torch.where(nonzero, total / torch.where(nonzero, weight_sum, torch.ones_like(weight_sum)), torch.zeros_like(total))


def eager_tempered_kd_loss(
    teacher: Tensor,
    tau: Tensor,
    student: Tensor,
    weight: Optional[Tensor] = None,
    reduction: str = "sum",
) -> Tensor:
    """Reference tempered-softmax KD loss written with plain PyTorch operators.

    Differentiable any number of times (it is what ``double_backward=True`` uses), but it
    materialises several N x C intermediates.

    Parameters
    ----------
    teacher : Tensor, shape (N, C)
        Teacher logits.
    tau : Tensor, shape (N,) or (N, 1)
        Per-node temperature (may be negative; must not be 0).
    student : Tensor, shape (N, C)
        Student logits.
    weight : Tensor, shape (N,), optional
        Per-node weights or a boolean mask; default all ones.
    reduction : {'sum', 'mean', 'none'}
        ``'mean'`` divides by ``weight.sum()`` (by N without weights) and returns 0 when it is 0.

    Returns
    -------
    Tensor
        A scalar, or shape (N,) for ``reduction='none'``.

    Examples
    --------
    >>> import torch
    >>> from dgl_ltd.ops import eager_tempered_kd_loss
    >>> t, z = torch.zeros(3, 4), torch.zeros(3, 4)
    >>> round(eager_tempered_kd_loss(t, torch.ones(3), z).item(), 4)  # 3 * log(4)
    4.1589
    """
    tau, weight = _prepare(teacher, tau, student, weight, reduction)
    p = torch.softmax(teacher / tau.unsqueeze(1), dim=1)
    rows = -(p * torch.log_softmax(student, dim=1)).sum(dim=1)
    if weight is not None:
        rows = rows * weight
    return _reduce(rows, weight, reduction)


def _reduce(rows: Tensor, weight: Optional[Tensor], reduction: str) -> Tensor:
    """The weighted per-node losses, summed, averaged over the weights, or as they are."""
    if reduction == "none":
        return rows
    total = rows.sum()
    if reduction == "sum":
        return total
    weight_sum = weight.sum() if weight is not None else total.new_tensor(float(rows.shape[0]))
    return _safe_mean(total, weight_sum)


def _kernel_loss(teacher: Tensor, tau: Tensor, student: Tensor, weight: Optional[Tensor], reduction: str) -> Tensor:
    """The compiled operator (differentiable through its C++ autograd kernel), then the reduction."""
    return _reduce(torch.ops.dgl_ltd.tempered_kd_loss(teacher, tau, student, weight), weight, reduction)


def tempered_kd_loss(
    teacher: Tensor,
    tau: Tensor,
    student: Tensor,
    weight: Optional[Tensor] = None,
    reduction: str = "sum",
    double_backward: bool = False,
) -> Tensor:
    """Per-node tempered-softmax KD loss, fused into one compiled kernel per direction.

    Computes ``l_v = w_v * CE(softmax(teacher_v / tau_v), log_softmax(student_v))`` and reduces
    it. Gradients flow to ``student``, ``tau`` and (when it requires grad) ``teacher``; never to
    ``weight``. The compiled backward is differentiable once only (a second derivative raises): pass
    ``double_backward=True`` to use :func:`eager_tempered_kd_loss` instead when you need
    gradients of gradients (e.g. ``create_graph=True``, gradient penalties, meta-gradients).

    The kernel is used for float32/float64 tensors on the CPU, and on CUDA when ``dgl_ltd._C``
    was built with CUDA; other dtypes/devices, ``DGL_LTD_DISABLE_KERNEL=1``, or a missing
    ``dgl_ltd._C`` (warned about at import) use the eager expression, with the same results.

    Parameters
    ----------
    teacher : Tensor, shape (N, C)
        Teacher logits.
    tau : Tensor, shape (N,) or (N, 1)
        Per-node temperature; may be negative or tiny, must not be exactly 0.
    student : Tensor, shape (N, C)
        Student logits.
    weight : Tensor, shape (N,), optional
        Per-node weights (float) or mask (bool); default all ones.
    reduction : {'sum', 'mean', 'none'}
        ``'sum'`` -> scalar ``sum_v l_v``; ``'mean'`` -> ``sum_v l_v / sum_v w_v`` (0.0 when the
        weights sum to 0 or N == 0); ``'none'`` -> shape (N,).
    double_backward : bool
        Route to the eager expression so that the result is differentiable twice.

    Returns
    -------
    Tensor
        Scalar, or shape (N,) for ``reduction='none'``; student's device, and the student's dtype when
        all three inputs share it (mixed dtypes take the eager path and PyTorch's type promotion).

    Examples
    --------
    >>> import torch
    >>> from dgl_ltd.ops import tempered_kd_loss
    >>> t = torch.randn(5, 3)
    >>> z = torch.randn(5, 3, requires_grad=True)
    >>> tau = torch.full((5,), 2.0, requires_grad=True)
    >>> loss = tempered_kd_loss(t, tau, z, weight=torch.tensor([1, 1, 0, 1, 1]).bool(), reduction="mean")
    >>> loss.backward()
    >>> z.grad.shape, tau.grad.shape
    (torch.Size([5, 3]), torch.Size([5]))
    """
    tau_flat, w = _prepare(teacher, tau, student, weight, reduction)
    same = teacher.dtype == student.dtype == tau.dtype and teacher.device == student.device == tau.device
    if double_backward or not same or not _use_kernel(student):
        return eager_tempered_kd_loss(teacher, tau, student, weight, reduction)
    return _kernel_loss(teacher, tau_flat, student, w, reduction)
