"""Tests of the fused tempered-softmax KD loss on the CPU (dgl_ltd.ops / dgl_ltd._C). No DGL needed.

The CUDA kernels are tested in test_ops_cuda.py; the inputs and comparisons are in ops_cases.py.
"""
from __future__ import annotations

import importlib

import pytest
import torch

from ops_cases import F64, assert_close_scaled, inputs, loss_and_grads, node_weight, ops, raw, run_python

HAS_KERNEL = ops.has_compiled_kernel()
needs_kernel = pytest.mark.skipif(
    not HAS_KERNEL, reason="dgl_ltd._C is not built (setup.py build_ext --inplace); kernel tests skipped"
)


@pytest.fixture(autouse=True)
def _kernel_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ops.DISABLE_ENV, raising=False)


# ---------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------


@needs_kernel
def test_ops_are_registered_with_schema() -> None:
    loss = torch.ops.dgl_ltd.tempered_kd_loss.default
    assert str(loss._schema) == (
        "dgl_ltd::tempered_kd_loss(Tensor teacher, Tensor tau, Tensor student, Tensor? weight=None) -> Tensor loss_rows"
    )
    fwd = torch.ops.dgl_ltd.tempered_kd_forward.default
    bwd = torch.ops.dgl_ltd.tempered_kd_backward.default
    assert str(fwd._schema) == (
        "dgl_ltd::tempered_kd_forward(Tensor teacher, Tensor tau, Tensor student, Tensor weight) "
        "-> (Tensor loss_rows, Tensor lse_s, Tensor lse_z)"
    )
    assert [a.name for a in bwd._schema.arguments] == [
        "grad_rows", "teacher", "tau", "student", "weight", "lse_s", "lse_z", "need_teacher"]
    assert torch.ops.dgl_ltd.built_with_cuda() in (True, False)
    assert torch.ops.dgl_ltd.cpu_kernel_isa() in ("avx512", "avx2", "default")


@needs_kernel
def test_each_backend_registers_its_own_key() -> None:
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    for key in ("CPU", "Meta"):
        assert has("dgl_ltd::tempered_kd_forward", key) and has("dgl_ltd::tempered_kd_backward", key), key
    assert has("dgl_ltd::tempered_kd_forward", "CUDA") == torch.ops.dgl_ltd.built_with_cuda()
    assert has("dgl_ltd::tempered_kd_loss", "Autograd")  # a C++ autograd kernel, not a Python Function
    assert has("dgl_ltd::tempered_kd_loss", "CompositeExplicitAutograd")


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("wkind,teacher_grad", [("float", False), ("none", True), ("mask", False)])
def test_opcheck_public_operator_every_check(dtype: torch.dtype, wkind: str, teacher_grad: bool) -> None:
    from torch.testing._internal.optests import opcheck

    t, tau, z = inputs(7, 5, dtype)
    w = node_weight(wkind, 7, dtype)
    w = None if w is None else w.to(dtype)
    args = (t.requires_grad_(teacher_grad), tau.requires_grad_(), z.requires_grad_(), w)
    result = opcheck(torch.ops.dgl_ltd.tempered_kd_loss.default, args)  # every check, autograd registration included
    assert set(result) >= {"test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic"}
    assert set(result.values()) == {"SUCCESS"}, result


@needs_kernel
def test_opcheck_internal_operators() -> None:
    from torch.testing._internal.optests import opcheck

    t, tau, z = inputs(6, 5, torch.float32)
    w = torch.rand(6)
    loss, ls, lz = torch.ops.dgl_ltd.tempered_kd_forward(t, tau, z, w)
    # No input requires grad here: these operators are not differentiable (see test_double_backward).
    utils = ("test_schema", "test_faketensor", "test_aot_dispatch_dynamic")
    opcheck(torch.ops.dgl_ltd.tempered_kd_forward.default, (t, tau, z, w), test_utils=utils)
    for need_t in (False, True):
        opcheck(torch.ops.dgl_ltd.tempered_kd_backward.default,
                (torch.ones_like(w), t, tau, z, w, ls, lz, need_t), test_utils=utils)


@needs_kernel
def test_operator_below_autograd_gives_the_same_rows() -> None:
    t, tau, z = inputs(20, 6)
    w = torch.rand(20, dtype=F64)
    with_grad = torch.ops.dgl_ltd.tempered_kd_loss(t, tau, z.requires_grad_(), w)
    assert with_grad.grad_fn is not None
    with torch.inference_mode():  # skips the Autograd key: the CompositeExplicitAutograd kernel runs
        rows = torch.ops.dgl_ltd.tempered_kd_loss(t, tau, z, w)
    assert torch.equal(rows, with_grad.detach())
    assert_close_scaled(rows, ops.eager_tempered_kd_loss(t, tau, z, w, "none").detach(), rtol=1e-12)


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
    out = run_python(_RAW_CHECKS)
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
    t, tau, z = inputs(50, 9, dtype)
    ones, empty = torch.ones(50, dtype=dtype), torch.empty(0, dtype=dtype)
    full = raw(t, tau, z, ones, True)
    for g_expanded in (False, True):
        got = raw(t, tau, z, empty, True, g_expanded)
        for a, b in zip(got, full if not g_expanded else raw(t, tau, z, ones, True, True)):
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
    t, tau, z = inputs(5, 4, tau_kind=tau_kind, scale=1.0)
    w = node_weight("float", 5)
    t.requires_grad_()
    tau.requires_grad_()
    z.requires_grad_()
    fn = lambda t_, tau_, z_: ops._kernel_loss(t_, tau_, z_, w, reduction)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (t, tau, z), eps=1e-6, atol=1e-7, rtol=1e-5)
    op = lambda t_, tau_, z_: torch.ops.dgl_ltd.tempered_kd_loss(t_, tau_, z_, w)  # noqa: E731  (the operator itself)
    assert torch.autograd.gradcheck(op, (t, tau, z), eps=1e-6, atol=1e-7, rtol=1e-5)


SHAPES = [(0, 3), (1, 1), (7, 1), (13, 5), (33, 47), (9, 300)]


@needs_kernel
@pytest.mark.parametrize("n,c", SHAPES)
@pytest.mark.parametrize("tau_kind", ["pos", "neg", "mixed", "tiny"])
@pytest.mark.parametrize("wkind", ["none", "mask", "float"])
def test_matches_eager_float64(n: int, c: int, tau_kind: str, wkind: str) -> None:
    t, tau, z = inputs(n, c, tau_kind=tau_kind)
    w = node_weight(wkind, n)
    for reduction in ("sum", "mean", "none"):
        got = loss_and_grads(ops.tempered_kd_loss, t, tau, z, w, reduction)
        ref = loss_and_grads(ops.eager_tempered_kd_loss, t, tau, z, w, reduction)
        for a, b in zip(got, ref):
            assert_close_scaled(a, b, rtol=1e-9)


@needs_kernel
@pytest.mark.parametrize("n,c", [(33, 47), (9, 300), (64, 10), (9, 16), (17, 64), (9, 128)])  # 16 | C: no partial vector
@pytest.mark.parametrize("tau_kind", ["pos", "mixed", "tiny"])
def test_float32_matches_float64_reference(n: int, c: int, tau_kind: str) -> None:
    t, tau, z = inputs(n, c, tau_kind=tau_kind, scale=1.0 if tau_kind == "tiny" else 3.0)
    w = node_weight("float", n)
    ref = loss_and_grads(ops.eager_tempered_kd_loss, t, tau, z, w, "none")
    got = loss_and_grads(ops.tempered_kd_loss, t.float(), tau.float(), z.float(), w.float(), "none")
    eager32 = loss_and_grads(ops.eager_tempered_kd_loss, t.float(), tau.float(), z.float(), w.float(), "none")
    for a, e, b in zip(got, eager32, ref):
        err, err_eager = (a.double() - b).abs().max().item(), (e.double() - b).abs().max().item()
        scale = max(1.0, b.abs().max().item())
        assert err <= max(2e-5 * scale, 4 * err_eager), (err, err_eager, scale)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_large_logits_are_finite_and_accurate(dtype: torch.dtype) -> None:
    t, tau, z = inputs(40, 47, scale=1e4, tau_kind="mixed")
    z[:5] = t[:5] / tau[:5, None]  # student = tempered teacher: a loss near 0 in a sea of 1e4s
    ref = loss_and_grads(ops.eager_tempered_kd_loss, t, tau, z, None, "none")
    got = loss_and_grads(ops.tempered_kd_loss, t.to(dtype), tau.to(dtype), z.to(dtype), None, "none")
    rtol = 1e-10 if dtype == F64 else 2e-5
    for a, b in zip(got, ref):
        assert torch.isfinite(a).all()
        assert_close_scaled(a, b, rtol)


@needs_kernel
def test_long_rows_cross_online_chunks() -> None:
    # Rows of more than 512 columns take several online-softmax chunks in the forward: put the
    # student's maximum in the second chunk and the teacher's in the third, so that both running
    # maxima grow after the first chunk.
    t, tau, z = inputs(6, 1300, scale=2.0)
    t[:, 1250] += 40.0
    z[:, 900] += 30.0
    for dtype, rtol in ((F64, 1e-10), (torch.float32, 2e-5)):
        got = loss_and_grads(ops.tempered_kd_loss, t.to(dtype), tau.to(dtype), z.to(dtype), None, "none")
        ref = loss_and_grads(ops.eager_tempered_kd_loss, t, tau, z, None, "none")
        for a, b in zip(got, ref):
            assert_close_scaled(a, b, rtol=rtol)


@needs_kernel
def test_mean_with_zero_weight_sum_is_zero_not_nan() -> None:
    t, tau, z = inputs(5, 4)
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
    t, tau, z = inputs(12, 7)
    tT, zT = t.t().contiguous().t(), z.t().contiguous().t()
    assert not tT.is_contiguous()
    tau_col = tau[:, None].clone().requires_grad_()
    zT.requires_grad_()
    ops.tempered_kd_loss(tT, tau_col, zT).backward()
    ref = loss_and_grads(ops.eager_tempered_kd_loss, t, tau, z, None, "sum", need_t=False)
    torch.testing.assert_close(tau_col.grad.squeeze(1), ref[1])
    torch.testing.assert_close(zT.grad, ref[2])


@needs_kernel
def test_thread_count_does_not_change_results() -> None:
    t, tau, z = inputs(3000, 47, torch.float32)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = loss_and_grads(ops.tempered_kd_loss, t, tau, z, None, "none")
        torch.set_num_threads(max(2, before))
        many = loss_and_grads(ops.tempered_kd_loss, t, tau, z, None, "none")
    finally:
        torch.set_num_threads(before)
    for a, b in zip(one, many):
        assert torch.equal(a, b)


@needs_kernel
def test_double_backward() -> None:
    t, tau, z = inputs(6, 5)
    z.requires_grad_()
    (g,) = torch.autograd.grad(ops.tempered_kd_loss(t, tau, z), z, create_graph=True)
    with pytest.raises(RuntimeError, match="derivative for dgl_ltd::tempered_kd_backward is not implemented"):
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
    t, tau, z = inputs(4, 3)
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
    t, tau, z = inputs(20, 6)
    w = node_weight("mask", 20)
    expected = [loss_and_grads(ops.tempered_kd_loss, t, tau, z, w, r) for r in ("sum", "mean", "none")]
    monkeypatch.setenv(ops.DISABLE_ENV, "1")

    def _boom(*args, **kwargs):
        raise AssertionError("compiled kernel used although DGL_LTD_DISABLE_KERNEL=1")

    monkeypatch.setattr(ops, "_kernel_loss", _boom)
    for r, exp in zip(("sum", "mean", "none"), expected):
        for a, b in zip(loss_and_grads(ops.tempered_kd_loss, t, tau, z, w, r), exp):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


_ISA_CHILD = """
import sys, torch
sys.path.insert(0, "tests")
from ops_cases import inputs, raw
print(torch.ops.dgl_ltd.cpu_kernel_isa())
for dtype in (torch.float32, torch.float64):
    t, tau, z = inputs(300, 47, dtype, tau_kind="mixed")
    torch.save(raw(t, tau, z, torch.rand(300, dtype=dtype, generator=torch.Generator().manual_seed(2)), True),
               sys.argv[1] + str(dtype))
"""


@needs_kernel
@pytest.mark.parametrize("cap", ["default", "avx2"])
def test_every_instruction_set_gives_the_same_results(cap: str, tmp_path) -> None:
    """ATEN_CPU_CAPABILITY caps the row loops' instruction set; each build agrees with the widest one."""
    widest = str(tmp_path / "widest")
    capped = str(tmp_path / cap)
    assert run_python(_ISA_CHILD.replace("sys.argv[1]", repr(widest))).returncode == 0
    out = run_python(_ISA_CHILD.replace("sys.argv[1]", repr(capped)), ATEN_CPU_CAPABILITY=cap)
    assert out.returncode == 0, out.stderr[-800:]
    isa = out.stdout.split()[0]
    assert isa == cap or (cap == "avx2" and isa == "default")  # avx2 only where the processor has it
    for dtype, rtol in ((torch.float32, 2e-6), (F64, 1e-13)):
        for a, b in zip(torch.load(capped + str(dtype)), torch.load(widest + str(dtype))):
            assert_close_scaled(a, b, rtol)


def test_ops_module_does_not_import_dgl() -> None:
    code = (
        "import sys; sys.modules['dgl'] = None\n"  # any `import dgl` now raises ImportError
        "import dgl_ltd.ops as o, torch\n"
        "print(float(o.tempered_kd_loss(torch.zeros(2, 3), torch.ones(2), torch.zeros(2, 3))))"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert abs(float(out.stdout.split()[-1]) - 2 * 1.0986122886681098) < 1e-5
    assert importlib.import_module("dgl_ltd.ops") is ops
