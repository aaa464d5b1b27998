"""dgl_ltd.ops without its compiled module: the import-time warning, the path it reports, the fallback."""
from __future__ import annotations

import pytest
import torch

from ops_cases import F64, ops, run_python

HAS_KERNEL = ops.has_compiled_kernel()


_WITHOUT_EXTENSION = """
import sys, warnings
sys.modules["dgl_ltd._C"] = None  # the import of the compiled module now fails, as after a failed build
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import dgl_ltd.ops as ops
import torch
t = torch.linspace(-2, 2, 12, dtype=torch.float64).reshape(4, 3)
tau = torch.full((4,), 1.5, dtype=torch.float64)
with warnings.catch_warnings():
    warnings.simplefilter("error")  # calls do not warn again
    print(repr(float(ops.tempered_kd_loss(t, tau, t.flip(1), reduction="mean"))))
print(ops.KERNEL_PATH)
print(len(caught), caught[0].message if caught else "")
"""


def test_missing_module_warns_at_import_and_falls_back() -> None:
    out = run_python(_WITHOUT_EXTENSION)
    assert out.returncode == 0, out.stderr[-800:]
    value, path, warned = out.stdout.splitlines()[-3:]
    t = torch.linspace(-2, 2, 12, dtype=F64).reshape(4, 3)
    expected = ops.eager_tempered_kd_loss(t, torch.full((4,), 1.5, dtype=F64), t.flip(1), reduction="mean")
    assert float(value) == pytest.approx(expected.item(), rel=1e-15)
    assert path.startswith("eager (dgl_ltd._C is not available")
    assert warned.startswith("1 dgl_ltd._C is not available") and "DGL_LTD_NO_EXT=1" in warned


def test_no_warning_when_the_extension_was_declined() -> None:
    out = run_python(_WITHOUT_EXTENSION, DGL_LTD_NO_EXT="1")
    assert out.returncode == 0, out.stderr[-800:]
    path, warned = out.stdout.splitlines()[-2:]
    assert path.startswith("eager (") and warned == "0 "


def test_kernel_path_names_what_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    if HAS_KERNEL:
        assert ops.KERNEL_PATH == ops.kernel_path()
        assert ops.kernel_path() == f"compiled-cpu{'+cuda' * torch.ops.dgl_ltd.built_with_cuda()} " \
            f"({torch.ops.dgl_ltd.cpu_kernel_isa()})"
    monkeypatch.setenv(ops.DISABLE_ENV, "1")
    assert ops.kernel_path().startswith("eager (")
