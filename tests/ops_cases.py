"""Inputs and comparisons shared by the tests of the fused loss (test_ops.py, test_ops_cuda.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import torch

try:
    from dgl_ltd import ops
except ImportError:  # running `pytest` from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dgl_ltd import ops

F64 = torch.float64
ROOT = Path(ops.__file__).resolve().parents[1]


def inputs(n: int, c: int, dtype: torch.dtype = F64, tau_kind: str = "pos", scale: float = 3.0,
           device: str = "cpu", seed: int = 0):
    """Teacher logits, temperatures and student logits of N nodes and C classes."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(n, c, generator=g, dtype=dtype) * scale
    z = torch.randn(n, c, generator=g, dtype=dtype) * scale
    u = torch.rand(n, generator=g, dtype=dtype)
    tau = {
        "pos": 0.5 + 2 * u,
        "neg": -(0.5 + 2 * u),
        "mixed": torch.where(torch.arange(n) % 2 == 0, 0.3 + u, -0.3 - u),
        "tiny": 1e-4 * (1 + u),
    }[tau_kind]
    return t.to(device), tau.to(device), z.to(device)


def node_weight(kind: str, n: int, dtype: torch.dtype = F64, device: str = "cpu") -> Optional[torch.Tensor]:
    """No weight, a boolean mask, or float weights, for N nodes."""
    g = torch.Generator().manual_seed(1)
    if kind == "none":
        return None
    if kind == "mask":
        return (torch.rand(n, generator=g) > 0.4).to(device)
    return torch.rand(n, generator=g, dtype=dtype).to(device)


def loss_and_grads(fn, t, tau, z, w, reduction, need_t=True) -> List[torch.Tensor]:
    """[loss, d/dtau, d/dz(, d/dt)] of fn(t, tau, z, w, reduction), on fresh leaves."""
    t = t.detach().clone().requires_grad_(need_t)
    tau = tau.detach().clone().requires_grad_()
    z = z.detach().clone().requires_grad_()
    loss = fn(t, tau, z, w, reduction)
    leaves = [tau, z] + ([t] if need_t else [])
    grads = torch.autograd.grad(loss.sum(), leaves, allow_unused=True) if loss.numel() else [
        torch.zeros_like(x) for x in leaves
    ]
    return [loss.detach()] + [g.detach() for g in grads]


def assert_close_scaled(got: torch.Tensor, ref: torch.Tensor, rtol: float) -> None:
    """Compare with a tolerance relative to the largest magnitude in the reference."""
    assert torch.isfinite(got).all(), "non-finite values"
    scale = max(1.0, ref.abs().max().item()) if ref.numel() else 1.0
    torch.testing.assert_close(got.to(ref.dtype), ref, rtol=rtol, atol=rtol * scale)


def raw(t, tau, z, w, need_t, g_expanded=False) -> List[torch.Tensor]:
    """Every output of the internal forward and backward operators, for one incoming gradient."""
    loss, ls, lz = torch.ops.dgl_ltd.tempered_kd_forward(t, tau, z, w)
    if g_expanded:
        g = torch.full((1,), 0.75, dtype=t.dtype, device=t.device).expand(t.shape[0])
    else:
        g = torch.linspace(0.5, 1.5, t.shape[0], dtype=t.dtype, device=t.device)
    dt, dtau, dz = torch.ops.dgl_ltd.tempered_kd_backward(g, t, tau, z, w, ls, lz, need_t)
    return [loss, ls, lz, dtau, dz] + ([dt] if need_t else [])


def assert_as_accurate(got, cpu, ref, rtol: float) -> None:
    """Results within rtol * scale of the float64 reference, or no worse than 8x the CPU kernel's
    own error (float32 with --use_fast_math divides and exponentiates less exactly)."""
    for a, c, r in zip(got, cpu, ref):
        a, c, r = a.cpu().double(), c.cpu().double(), r.cpu().double()
        assert a.shape == r.shape and torch.isfinite(a).all()
        if r.numel() == 0:
            continue
        scale = max(1.0, r.abs().max().item())
        err, err_cpu = (a - r).abs().max().item(), (c - r).abs().max().item()
        assert err <= max(rtol * scale, 8 * err_cpu), (err, err_cpu, scale)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run Python code in a fresh interpreter at the repository root (a C++ crash then fails one test),
    without the variables that switch the compiled kernel off, plus ``env``."""
    environ = {k: v for k, v in os.environ.items() if k not in (ops.NO_EXT_ENV, ops.DISABLE_ENV)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(environ, **env), capture_output=True,
                          text=True, timeout=180)
