"""Tests of the fused tempered-softmax KD loss (dgl_ltd.ops / dgl_ltd._C). No DGL needed."""
from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path
from typing import List, Optional

import pytest
import torch

try:
    from dgl_ltd import ops
except ImportError:  # running `pytest` from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dgl_ltd import ops

HAS_KERNEL = ops.has_compiled_kernel()
needs_kernel = pytest.mark.skipif(
    not HAS_KERNEL, reason="dgl_ltd._C is not built (setup.py build_ext --inplace); kernel tests skipped"
)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
F64 = torch.float64


@pytest.fixture(autouse=True)
def _kernel_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ops.DISABLE_ENV, raising=False)


def _inputs(n: int, c: int, dtype: torch.dtype = F64, tau_kind: str = "pos", scale: float = 3.0,
            device: str = "cpu", seed: int = 0):
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


def _weight(kind: str, n: int, dtype: torch.dtype = F64, device: str = "cpu") -> Optional[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    if kind == "none":
        return None
    if kind == "mask":
        return (torch.rand(n, generator=g) > 0.4).to(device)
    return torch.rand(n, generator=g, dtype=dtype).to(device)


def _loss_and_grads(fn, t, tau, z, w, reduction, need_t=True) -> List[torch.Tensor]:
    t = t.detach().clone().requires_grad_(need_t)
    tau = tau.detach().clone().requires_grad_()
    z = z.detach().clone().requires_grad_()
    loss = fn(t, tau, z, w, reduction)
    inputs = [tau, z] + ([t] if need_t else [])
    grads = torch.autograd.grad(loss.sum(), inputs, allow_unused=True) if loss.numel() else [
        torch.zeros_like(x) for x in inputs
    ]
    return [loss.detach()] + [g.detach() for g in grads]


def _assert_close_scaled(got: torch.Tensor, ref: torch.Tensor, rtol: float) -> None:
    """Compare with a tolerance relative to the largest magnitude in the reference."""
    assert torch.isfinite(got).all(), "non-finite values"
    scale = max(1.0, ref.abs().max().item()) if ref.numel() else 1.0
    torch.testing.assert_close(got.to(ref.dtype), ref, rtol=rtol, atol=rtol * scale)


# ---------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------


@needs_kernel
def test_ops_are_registered_with_schema() -> None:
    fwd = torch.ops.dgl_ltd.tempered_kd_forward.default
    bwd = torch.ops.dgl_ltd.tempered_kd_backward.default
    assert str(fwd._schema) == (
        "dgl_ltd::tempered_kd_forward(Tensor teacher, Tensor tau, Tensor student, Tensor weight) "
        "-> (Tensor loss_rows, Tensor lse_s, Tensor lse_z)"
    )
    assert [a.name for a in bwd._schema.arguments] == [
        "grad_rows", "teacher", "tau", "student", "weight", "lse_s", "lse_z", "need_teacher"]
    assert len(bwd._schema.returns) == 3


def _opcheck():
    if hasattr(torch.library, "opcheck"):
        return torch.library.opcheck
    try:
        from torch.testing._internal.optests import opcheck
    except ImportError:  # torch 2.2 needs the optional `expecttest` package for this
        return None
    return opcheck


@needs_kernel
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_opcheck(device: str) -> None:
    opcheck = _opcheck()
    if opcheck is None:
        pytest.skip("neither torch.library.opcheck nor torch.testing._internal.optests is usable here")
    t, tau, z = _inputs(6, 5, torch.float32, device=device)
    w = torch.rand(6, device=device)
    loss, ls, lz = torch.ops.dgl_ltd.tempered_kd_forward(t, tau, z, w)
    # Autograd is wired in Python (one torch.autograd.Function), so the autograd-registration
    # check does not apply to these raw operators.
    utils = ("test_schema", "test_faketensor", "test_aot_dispatch_dynamic")
    opcheck(torch.ops.dgl_ltd.tempered_kd_forward.default, (t, tau, z, w), test_utils=utils)
    for need_t in (False, True):
        opcheck(torch.ops.dgl_ltd.tempered_kd_backward.default,
                (torch.ones_like(w), t, tau, z, w, ls, lz, need_t), test_utils=utils)


_RAW_CHECKS = """
import torch, dgl_ltd.ops
t = torch.zeros(4, 3, dtype=torch.float64)
tau, w = torch.ones(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
cases = [(t, tau[:3], t, w), (t[:, :2], tau, t, w), (t.half(), tau.half(), t.half(), w.half()), (t, tau, t, w.float())]
for args in cases:
    try:
        torch.ops.dgl_ltd.tempered_kd_forward(*args)
        print("no error")
    except RuntimeError as exc:
        print(str(exc).splitlines()[0], flush=True)
"""


@needs_kernel
def test_raw_op_checks_shapes() -> None:
    # In a subprocess: if C++ exceptions cannot unwind through the extension (a toolchain
    # mismatch), this test fails instead of taking the whole test session down.
    import subprocess

    root = Path(ops.__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", _RAW_CHECKS], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (
        f"a TORCH_CHECK error in dgl_ltd._C crashed the interpreter (rc={out.returncode}); was the extension "
        f"linked with another compiler than torch's runtime expects? stdout={out.stdout!r} stderr={out.stderr[-500:]!r}"
    )
    lines = out.stdout.splitlines()
    expected = ["tau must have shape", "same shape", "float32 and float64", "weight must have dtype"]
    assert len(lines) == len(expected), out.stdout
    for line, text in zip(lines, expected):
        assert text in line, (line, text)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_empty_weight_and_expanded_grad(dtype: torch.dtype) -> None:
    t, tau, z = _inputs(50, 9, dtype)
    ones, empty = torch.ones(50, dtype=dtype), torch.empty(0, dtype=dtype)
    full = _raw(t, tau, z, ones, True)
    for g_expanded in (False, True):
        got = _raw(t, tau, z, empty, True, g_expanded)
        for a, b in zip(got, full if not g_expanded else _raw(t, tau, z, ones, True, True)):
            assert torch.equal(a, b)
    strided_g = torch.linspace(0.5, 1.5, 100, dtype=dtype)[::2]
    loss, ls, lz = torch.ops.dgl_ltd.tempered_kd_forward(t, tau, z, ones)
    got = torch.ops.dgl_ltd.tempered_kd_backward(strided_g, t, tau, z, ones, ls, lz, True)
    ref = torch.ops.dgl_ltd.tempered_kd_backward(strided_g.contiguous(), t, tau, z, ones, ls, lz, True)
    for a, b in zip(got, ref):
        assert torch.equal(a, b)


# ---------------------------------------------------------------------------------------------
# Gradients and agreement with the eager expression
# ---------------------------------------------------------------------------------------------


@needs_kernel
@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
@pytest.mark.parametrize("tau_kind", ["pos", "mixed"])
def test_gradcheck_compiled(reduction: str, tau_kind: str) -> None:
    t, tau, z = _inputs(5, 4, tau_kind=tau_kind, scale=1.0)
    w = _weight("float", 5)
    t.requires_grad_()
    tau.requires_grad_()
    z.requires_grad_()
    fn = lambda t_, tau_, z_: ops._TemperedKD.apply(t_, tau_, z_, w, reduction)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (t, tau, z), eps=1e-6, atol=1e-7, rtol=1e-5)


SHAPES = [(0, 3), (1, 1), (7, 1), (13, 5), (33, 47), (9, 300)]


@needs_kernel
@pytest.mark.parametrize("n,c", SHAPES)
@pytest.mark.parametrize("tau_kind", ["pos", "neg", "mixed", "tiny"])
@pytest.mark.parametrize("wkind", ["none", "mask", "float"])
def test_matches_eager_float64(n: int, c: int, tau_kind: str, wkind: str) -> None:
    t, tau, z = _inputs(n, c, tau_kind=tau_kind)
    w = _weight(wkind, n)
    for reduction in ("sum", "mean", "none"):
        got = _loss_and_grads(ops.tempered_kd_loss, t, tau, z, w, reduction)
        ref = _loss_and_grads(ops.eager_tempered_kd_loss, t, tau, z, w, reduction)
        for a, b in zip(got, ref):
            _assert_close_scaled(a, b, rtol=1e-9)


@needs_kernel
@pytest.mark.parametrize("n,c", [(33, 47), (9, 300), (64, 10)])
@pytest.mark.parametrize("tau_kind", ["pos", "mixed", "tiny"])
def test_float32_matches_float64_reference(n: int, c: int, tau_kind: str) -> None:
    t, tau, z = _inputs(n, c, tau_kind=tau_kind, scale=1.0 if tau_kind == "tiny" else 3.0)
    w = _weight("float", n)
    ref = _loss_and_grads(ops.eager_tempered_kd_loss, t, tau, z, w, "none")
    got = _loss_and_grads(ops.tempered_kd_loss, t.float(), tau.float(), z.float(), w.float(), "none")
    eager32 = _loss_and_grads(ops.eager_tempered_kd_loss, t.float(), tau.float(), z.float(), w.float(), "none")
    for a, e, b in zip(got, eager32, ref):
        err, err_eager = (a.double() - b).abs().max().item(), (e.double() - b).abs().max().item()
        scale = max(1.0, b.abs().max().item())
        assert err <= max(2e-5 * scale, 4 * err_eager), (err, err_eager, scale)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_large_logits_are_finite_and_accurate(dtype: torch.dtype) -> None:
    t, tau, z = _inputs(40, 47, scale=1e4, tau_kind="mixed")
    z[:5] = t[:5] / tau[:5, None]  # student = tempered teacher: a loss near 0 in a sea of 1e4s
    ref = _loss_and_grads(ops.eager_tempered_kd_loss, t, tau, z, None, "none")
    got = _loss_and_grads(ops.tempered_kd_loss, t.to(dtype), tau.to(dtype), z.to(dtype), None, "none")
    rtol = 1e-10 if dtype == F64 else 2e-5
    for a, b in zip(got, ref):
        assert torch.isfinite(a).all()
        _assert_close_scaled(a, b, rtol)


@needs_kernel
def test_long_rows_cross_online_chunks() -> None:
    # C > 256 uses several online-softmax chunks; put the maxima in late chunks.
    t, tau, z = _inputs(6, 700, scale=2.0)
    t[:, 650] += 40.0
    z[:, 400] += 30.0
    got = _loss_and_grads(ops.tempered_kd_loss, t, tau, z, None, "none")
    ref = _loss_and_grads(ops.eager_tempered_kd_loss, t, tau, z, None, "none")
    for a, b in zip(got, ref):
        _assert_close_scaled(a, b, rtol=1e-10)


@needs_kernel
def test_mean_with_zero_weight_sum_is_zero_not_nan() -> None:
    t, tau, z = _inputs(5, 4)
    for w in (torch.zeros(5, dtype=torch.bool), None):
        n_rows = 0 if w is None else 5
        tt, ta, zz = t[:n_rows], tau[:n_rows], z[:n_rows].clone().requires_grad_()
        ww = None if w is None else w
        loss = ops.tempered_kd_loss(tt, ta, zz, ww, "mean")
        loss.backward()
        assert loss.item() == 0.0
        assert torch.equal(zz.grad, torch.zeros_like(zz))


@needs_kernel
def test_noncontiguous_and_column_tau() -> None:
    t, tau, z = _inputs(12, 7)
    tT, zT = t.t().contiguous().t(), z.t().contiguous().t()
    assert not tT.is_contiguous()
    tau_col = tau[:, None].clone().requires_grad_()
    zT.requires_grad_()
    ops.tempered_kd_loss(tT, tau_col, zT).backward()
    ref = _loss_and_grads(ops.eager_tempered_kd_loss, t, tau, z, None, "sum", need_t=False)
    torch.testing.assert_close(tau_col.grad.squeeze(1), ref[1])
    torch.testing.assert_close(zT.grad, ref[2])


@needs_kernel
def test_thread_count_does_not_change_results() -> None:
    t, tau, z = _inputs(3000, 47, torch.float32)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _loss_and_grads(ops.tempered_kd_loss, t, tau, z, None, "none")
        torch.set_num_threads(max(2, before))
        many = _loss_and_grads(ops.tempered_kd_loss, t, tau, z, None, "none")
    finally:
        torch.set_num_threads(before)
    for a, b in zip(one, many):
        assert torch.equal(a, b)


@needs_kernel
def test_double_backward() -> None:
    t, tau, z = _inputs(6, 5)
    z.requires_grad_()
    (g,) = torch.autograd.grad(ops.tempered_kd_loss(t, tau, z), z, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|does not require grad"):
        g.pow(2).sum().backward()
    z2 = z.detach().clone().requires_grad_()
    (g2,) = torch.autograd.grad(ops.tempered_kd_loss(t, tau, z2, double_backward=True), z2, create_graph=True)
    (h2,) = torch.autograd.grad(g2.pow(2).sum(), z2)
    z3 = z.detach().clone().requires_grad_()
    (g3,) = torch.autograd.grad(ops.eager_tempered_kd_loss(t, tau, z3), z3, create_graph=True)
    (h3,) = torch.autograd.grad(g3.pow(2).sum(), z3)
    torch.testing.assert_close(h2, h3)
    torch.testing.assert_close(g.detach(), g3.detach())


# ---------------------------------------------------------------------------------------------
# Validation and fallback (run without the compiled module too)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [ops.tempered_kd_loss, ops.eager_tempered_kd_loss])
def test_input_validation(fn) -> None:
    t, tau, z = _inputs(4, 3)
    with pytest.raises(ValueError, match="differ in shape"):
        fn(t[:, :2], tau, z)
    with pytest.raises(ValueError, match="tau must have shape"):
        fn(t, tau[:3], z)
    with pytest.raises(ValueError, match="reduction must be one of"):
        fn(t, tau, z, reduction="avg")
    with pytest.raises(ValueError, match="2-D"):
        fn(t[0], tau, z[0])
    with pytest.raises(ValueError, match="weight must have shape"):
        fn(t, tau, z, torch.ones(5))
    with pytest.raises(ValueError, match="0 classes"):
        fn(t[:, :0], tau, z[:, :0])


def test_eager_reference_value() -> None:
    t, z = torch.zeros(3, 4, dtype=F64), torch.zeros(3, 4, dtype=F64)
    expected = 3 * torch.log(torch.tensor(4.0, dtype=F64))
    torch.testing.assert_close(ops.eager_tempered_kd_loss(t, torch.ones(3, dtype=F64), z), expected)
    torch.testing.assert_close(ops.tempered_kd_loss(t, torch.ones(3, dtype=F64), z), expected)


def test_env_var_forces_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    t, tau, z = _inputs(20, 6)
    w = _weight("mask", 20)
    expected = [_loss_and_grads(ops.tempered_kd_loss, t, tau, z, w, r) for r in ("sum", "mean", "none")]
    monkeypatch.setenv(ops.DISABLE_ENV, "1")

    def _boom(*args, **kwargs):
        raise AssertionError("compiled kernel used although DGL_LTD_DISABLE_KERNEL=1")

    monkeypatch.setattr(ops._TemperedKD, "apply", _boom)
    for r, exp in zip(("sum", "mean", "none"), expected):
        for a, b in zip(_loss_and_grads(ops.tempered_kd_loss, t, tau, z, w, r), exp):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_missing_module_warns_once_and_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    t, tau, z = _inputs(10, 4)
    expected = _loss_and_grads(ops.eager_tempered_kd_loss, t, tau, z, None, "mean")
    monkeypatch.setattr(ops, "_C", None)
    monkeypatch.setattr(ops, "_warned_missing", False)
    assert not ops.has_compiled_kernel()
    with pytest.warns(RuntimeWarning, match="falls back to the eager"):
        got = _loss_and_grads(ops.tempered_kd_loss, t, tau, z, None, "mean")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second call must not warn again
        ops.tempered_kd_loss(t, tau, z)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_ops_module_does_not_import_dgl() -> None:
    code = (
        "import sys; sys.modules['dgl'] = None\n"  # any `import dgl` now raises ImportError
        "import dgl_ltd.ops as o, torch\n"
        "print(float(o.tempered_kd_loss(torch.zeros(2, 3), torch.ones(2), torch.zeros(2, 3))))"
    )
    import subprocess

    root = Path(ops.__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert abs(float(out.stdout.split()[-1]) - 2 * 1.0986122886681098) < 1e-5
    assert importlib.import_module("dgl_ltd.ops") is ops


# ---------------------------------------------------------------------------------------------
# CUDA kernel against the CPU kernel
# ---------------------------------------------------------------------------------------------


def _raw(t, tau, z, w, need_t, g_expanded=False):
    loss, ls, lz = torch.ops.dgl_ltd.tempered_kd_forward(t, tau, z, w)
    if g_expanded:
        g = torch.full((1,), 0.75, dtype=t.dtype, device=t.device).expand(t.shape[0])
    else:
        g = torch.linspace(0.5, 1.5, t.shape[0], dtype=t.dtype, device=t.device)
    dt, dtau, dz = torch.ops.dgl_ltd.tempered_kd_backward(g, t, tau, z, w, ls, lz, need_t)
    return [loss, ls, lz, dtau, dz] + ([dt] if need_t else [])


def _assert_as_accurate(got, cpu, ref, rtol: float) -> None:
    """GPU results must be within rtol * scale of the float64 reference, or no worse than 8x the
    CPU kernel's own error (float32 with --use_fast_math divides and exponentiates less exactly)."""
    for a, c, r in zip(got, cpu, ref):
        a, c, r = a.cpu().double(), c.cpu().double(), r.cpu().double()
        assert a.shape == r.shape and torch.isfinite(a).all()
        if r.numel() == 0:
            continue
        scale = max(1.0, r.abs().max().item())
        err, err_cpu = (a - r).abs().max().item(), (c - r).abs().max().item()
        assert err <= max(rtol * scale, 8 * err_cpu), (err, err_cpu, scale)


@needs_kernel
@needs_cuda
@pytest.mark.parametrize("n,c", [(0, 5), (1, 1), (37, 1), (100, 47), (50, 33), (20, 700)])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("tau_kind", ["pos", "mixed", "tiny"])
def test_cuda_kernel_matches_cpu_kernel(n: int, c: int, dtype: torch.dtype, tau_kind: str) -> None:
    assert ops._C.built_with_cuda(), "dgl_ltd._C lacks CUDA kernels: rebuild with FORCE_CUDA=1"
    t, tau, z = _inputs(n, c, dtype, tau_kind=tau_kind, scale=1.0 if tau_kind == "tiny" else 3.0)
    w = torch.rand(n, dtype=dtype)
    for need_t, ww, g_expanded in ((False, w, False), (True, w, False), (True, w[:0], True)):
        cpu = _raw(t, tau, z, ww, need_t, g_expanded)
        gpu = _raw(t.cuda(), tau.cuda(), z.cuda(), ww.cuda(), need_t, g_expanded)
        if dtype == F64:
            for a, b in zip(gpu, cpu):
                _assert_close_scaled(a.cpu(), b, rtol=1e-10)
        else:
            ref = _raw(t.double(), tau.double(), z.double(), ww.double(), need_t, g_expanded)
            _assert_as_accurate(gpu, cpu, ref, rtol=5e-5)


@needs_kernel
@needs_cuda
@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
def test_cuda_loss_end_to_end(reduction: str) -> None:
    t, tau, z = _inputs(300, 47, torch.float32, tau_kind="mixed", scale=1e4)
    w = _weight("mask", 300)
    ref = _loss_and_grads(ops.eager_tempered_kd_loss, t.double(), tau.double(), z.double(), w, reduction)
    cpu = _loss_and_grads(ops.tempered_kd_loss, t, tau, z, w, reduction)
    got = _loss_and_grads(ops.tempered_kd_loss, t.cuda(), tau.cuda(), z.cuda(), w.cuda(), reduction)
    _assert_as_accurate(got, cpu, ref, rtol=5e-5)


@needs_kernel
@needs_cuda
@pytest.mark.parametrize("lanes", ["4", "8", "16", "32"])
@pytest.mark.parametrize("n,c", [(1, 1), (37, 3), (257, 47), (65, 33), (20, 700)])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_cuda_every_lane_count_matches_cpu(lanes: str, n: int, c: int, dtype: torch.dtype,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row-group width of the CUDA kernels (DGL_LTD_CUDA_LANES) gives the CPU kernel's results,
    also when N is not a multiple of the rows per block and C is below or above the group width."""
    t, tau, z = _inputs(n, c, dtype, tau_kind="mixed")
    w = torch.rand(n, dtype=dtype)
    cpu = _raw(t, tau, z, w, True)
    monkeypatch.setenv(ops.CUDA_LANES_ENV, lanes)
    gpu = _raw(t.cuda(), tau.cuda(), z.cuda(), w.cuda(), True)
    if dtype == F64:
        for a, b in zip(gpu, cpu):
            _assert_close_scaled(a.cpu(), b, rtol=1e-10)
    else:
        ref = _raw(t.double(), tau.double(), z.double(), w.double(), True)
        _assert_as_accurate(gpu, cpu, ref, rtol=5e-5)


@needs_kernel
@needs_cuda
def test_cuda_bad_lane_override_is_an_error() -> None:
    # In a subprocess, like test_raw_op_checks_shapes: a C++ error must not end the session.
    import os
    import subprocess

    code = (
        "import torch, dgl_ltd.ops\n"
        "x = torch.zeros(4, 3, device='cuda')\n"
        "try:\n"
        "    torch.ops.dgl_ltd.tempered_kd_forward(x, torch.ones(4, device='cuda'), x, torch.ones(4, device='cuda'))\n"
        "except RuntimeError as exc:\n"
        "    print(str(exc).splitlines()[0])\n"
    )
    root = Path(ops.__file__).resolve().parents[1]
    env = dict(os.environ, **{ops.CUDA_LANES_ENV: "12"})
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-500:]
    assert "DGL_LTD_CUDA_LANES must be 4, 8, 16 or 32, got '12'" in out.stdout, out.stdout
