"""The CUDA kernels of dgl_ltd._C against the CPU kernels (run only where a GPU is visible)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from ops_cases import (F64, ROOT, assert_as_accurate, assert_close_scaled, inputs, loss_and_grads, node_weight,
                       ops, raw)

pytestmark = [
    pytest.mark.skipif(not ops.has_compiled_kernel(), reason="dgl_ltd._C is not built; kernel tests skipped"),
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


@pytest.mark.parametrize("n,c", [(0, 5), (1, 1), (37, 1), (100, 47), (50, 33), (20, 700)])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("tau_kind", ["pos", "mixed", "tiny"])
def test_cuda_kernel_matches_cpu_kernel(n: int, c: int, dtype: torch.dtype, tau_kind: str) -> None:
    assert torch.ops.dgl_ltd.built_with_cuda(), "dgl_ltd._C lacks CUDA kernels: rebuild with FORCE_CUDA=1"
    t, tau, z = inputs(n, c, dtype, tau_kind=tau_kind, scale=1.0 if tau_kind == "tiny" else 3.0)
    w = torch.rand(n, dtype=dtype)
    for need_t, ww, g_expanded in ((False, w, False), (True, w, False), (True, w[:0], True)):
        cpu = raw(t, tau, z, ww, need_t, g_expanded)
        gpu = raw(t.cuda(), tau.cuda(), z.cuda(), ww.cuda(), need_t, g_expanded)
        if dtype == F64:
            for a, b in zip(gpu, cpu):
                assert_close_scaled(a.cpu(), b, rtol=1e-10)
        else:
            ref = raw(t.double(), tau.double(), z.double(), ww.double(), need_t, g_expanded)
            assert_as_accurate(gpu, cpu, ref, rtol=5e-5)


@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
def test_cuda_loss_end_to_end(reduction: str) -> None:
    t, tau, z = inputs(300, 47, torch.float32, tau_kind="mixed", scale=1e4)
    w = node_weight("mask", 300)
    ref = loss_and_grads(ops.eager_tempered_kd_loss, t.double(), tau.double(), z.double(), w, reduction)
    cpu = loss_and_grads(ops.tempered_kd_loss, t, tau, z, w, reduction)
    got = loss_and_grads(ops.tempered_kd_loss, t.cuda(), tau.cuda(), z.cuda(), w.cuda(), reduction)
    assert_as_accurate(got, cpu, ref, rtol=5e-5)


def test_cuda_opcheck() -> None:
    from torch.testing._internal.optests import opcheck

    t, tau, z = inputs(6, 5, torch.float32, device="cuda")
    w = torch.rand(6, device="cuda")
    result = opcheck(torch.ops.dgl_ltd.tempered_kd_loss.default, (t, tau.requires_grad_(), z.requires_grad_(), w))
    assert set(result.values()) == {"SUCCESS"}, result


# The lane count is read once per process, so each count runs in its own interpreter, which
# compares its GPU results with its own CPU kernel and prints the largest differences.
_LANES_CHILD = """
import json, sys, torch
sys.path.insert(0, "tests")
from ops_cases import inputs, raw
out = {}
for n, c in [(1, 1), (37, 3), (257, 47), (65, 33), (20, 700)]:
    for dtype in (torch.float32, torch.float64):
        t, tau, z = inputs(n, c, dtype, tau_kind="mixed")
        w = torch.rand(n, dtype=dtype)
        cpu = raw(t, tau, z, w, True)
        gpu = raw(t.cuda(), tau.cuda(), z.cuda(), w.cuda(), True)
        ref = raw(t.double(), tau.double(), z.double(), w.double(), True)
        out[f"{n}x{c}/{dtype}"] = [[(a.cpu().double() - r).abs().max().item(), (b.double() - r).abs().max().item(),
                                    r.abs().max().item()] for a, b, r in zip(gpu, cpu, ref)]
print(json.dumps(out))
"""


@pytest.mark.parametrize("lanes", ["4", "8", "16", "32"])
def test_cuda_every_lane_count_matches_cpu(lanes: str) -> None:
    """Every row-group width of the CUDA kernels (DGL_LTD_CUDA_LANES) gives the CPU kernel's results,
    also when N is not a multiple of the rows per block and C is below or above the group width."""
    env = dict(os.environ, **{ops.CUDA_LANES_ENV: lanes})
    out = subprocess.run([sys.executable, "-c", _LANES_CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-800:]
    for case, errors in json.loads(out.stdout.splitlines()[-1]).items():
        rtol = 1e-10 if "float64" in case else 5e-5
        for err_gpu, err_cpu, scale in errors:
            assert err_gpu <= max(rtol * max(1.0, scale), 8 * err_cpu), (case, err_gpu, err_cpu, scale)


def test_cuda_bad_lane_override_is_an_error() -> None:
    # In a subprocess: the variable is read once per process, and a C++ error must not end the session.
    code = (
        "import torch, dgl_ltd.ops\n"
        "x = torch.zeros(4, 3, device='cuda')\n"
        "for _ in range(2):\n"
        "    try:\n"
        "        torch.ops.dgl_ltd.tempered_kd_forward(x, torch.ones(4, device='cuda'), x, torch.ones(4, device='cuda'))\n"
        "    except RuntimeError as exc:\n"
        "        print(str(exc).splitlines()[0])\n"
    )
    env = dict(os.environ, **{ops.CUDA_LANES_ENV: "12"})
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-500:]
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all("DGL_LTD_CUDA_LANES must be 4, 8, 16 or 32, got '12'" in l for l in lines), lines
