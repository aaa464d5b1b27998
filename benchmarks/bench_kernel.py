"""Benchmark the fused tempered-KD kernel against the eager expression, torch.compile and a copy.

Times one forward + backward (gradients w.r.t. the student logits z and the temperatures tau;
the teacher logits t need no gradient), median over --repeats runs, the methods interleaved in the
same process so that they see the same machine load. ``copy`` is the bytes bound measured in the
same run: ``torch.add(t, z, out=buffer)`` reads two N x C tensors and writes one, as the kernel's
backward does; its bandwidth, applied to the bytes the kernel must move (``bytes_lower_bound``),
gives the time a kernel limited only by memory would take. Peak extra memory is measured for each
method in a fresh subprocess (see ``_memory_child``). Prints a Markdown report; --out writes it.

    python benchmarks/bench_kernel.py --threads 2 --out /tmp/kernel_cpu.md   (benchmarks/results/notes/kernel.md collects such reports)
    python benchmarks/bench_kernel.py --device cuda --sizes 1000000x47
    DGL_LTD_CUDA_LANES=8 python benchmarks/bench_kernel.py --device cuda --methods kernel,eager --inner 20

The CUDA kernels read ``DGL_LTD_CUDA_LANES`` once per process, so a lane count is benchmarked by
setting it for the whole run (``benchmarks/gpu_check.sh`` loops over them). ``--inner K`` times K
calls back to back between two synchronisations, spreading the launch and synchronisation latency.

OpenMP threads wait passively here (``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it):
the code that ``torch.compile`` generates loads its own OpenMP runtime, whose threads otherwise
spin for a while after each call and, on a machine with few cores, slow down whichever method runs
next. Passive waiting does not change the eager or compile times (checked), only removes that
interference.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads its OpenMP runtime

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dgl_ltd import ops  # noqa: E402
from common import at_least, choice_list  # noqa: E402  (benchmarks/common.py: stdlib only)

METHODS = ("kernel", "eager", "compile", "copy", "copy-alloc")


def make_inputs(n: int, c: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    t = (torch.randn(n, c, generator=g) * 3).to(device)
    z = (torch.randn(n, c, generator=g) * 3).to(device).requires_grad_()
    tau = (0.5 + 2 * torch.rand(n, generator=g)).to(device).requires_grad_()
    return t, tau, z


def make_fn(method: str) -> Callable:
    if method in ("copy", "copy-alloc"):
        return CopyStep(preallocated=method == "copy")
    if method == "kernel":
        if not ops.has_compiled_kernel():
            raise SystemExit("dgl_ltd._C is not built: run `python setup.py build_ext --inplace` first")
        return ops.tempered_kd_loss
    if method == "eager":
        return ops.eager_tempered_kd_loss
    return torch.compile(ops.eager_tempered_kd_loss)


class CopyStep:
    """``torch.add(t, z)`` in place of a loss: reads 2 N x C tensors, writes one, into a buffer
    kept from call to call (``copy``) or, like the gradient the kernel returns, into a fresh one
    whose pages the system must first map and zero (``copy-alloc``)."""

    def __init__(self, preallocated: bool) -> None:
        self.preallocated = preallocated
        self.out = None

    def __call__(self, t, tau, z):
        if not self.preallocated:
            torch.add(t, z.detach())
            return None
        if self.out is None or self.out.shape != t.shape:
            self.out = torch.empty_like(t)
        torch.add(t, z.detach(), out=self.out)
        return None


def step(fn: Callable, t, tau, z, sync: Callable[[], None], inner: int = 1) -> float:
    """Seconds per forward + backward, averaged over ``inner`` calls between two synchronisations."""
    z.grad = None
    tau.grad = None
    sync()
    start = time.perf_counter()
    for _ in range(inner):
        loss = fn(t, tau, z)
        if loss is not None:
            loss.backward()
    sync()
    return (time.perf_counter() - start) / inner


def copy_bytes(n: int, c: int, elem: int = 4) -> int:
    """Bytes that the ``copy`` method moves: two N x C tensors read, one written."""
    return 3 * n * c * elem


def bytes_lower_bound(n: int, c: int, elem: int = 4) -> int:
    """Forward reads t, z (and tau, w) once and writes 3 per-row values; backward reads t, z and the
    per-row values and writes dz and dtau."""
    return elem * (2 * n * c + 5 * n) + elem * (3 * n * c + 6 * n)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def _memory_child(method: str, n: int, c: int, device: str, threads: int) -> None:
    """Peak extra memory of one forward+backward after warm-up, printed as JSON (bytes).

    CPU: reset the kernel's resident-set high-water mark (write 5 to /proc/self/clear_refs), take
    VmRSS, run one step, read VmHWM; the parent sets MALLOC_MMAP_THRESHOLD_ so that freed buffers go
    back to the OS and a later allocation must raise RSS again. CUDA: torch.cuda peak statistics.
    The gradients that the step leaves behind (dz, dtau) count as extra memory.
    """
    torch.set_num_threads(threads)
    t, tau, z = make_inputs(n, c, device)
    fn = make_fn(method)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(2):
        step(fn, t, tau, z, sync)
    z.grad = None
    tau.grad = None
    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step(fn, t, tau, z, sync)
        extra = torch.cuda.max_memory_allocated() - base
    else:
        Path("/proc/self/clear_refs").write_text("5")
        base = _status_kb("VmRSS")
        step(fn, t, tau, z, sync)
        extra = (_status_kb("VmHWM") - base) * 1024
    print(json.dumps({"extra_bytes": extra}))


def measure_memory(method: str, n: int, c: int, device: str, threads: int) -> float:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    cmd = [sys.executable, __file__, "--_mem-child", method, "--sizes", f"{n}x{c}", "--device", device,
           "--threads", str(threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["extra_bytes"]


def _cuda_peak(fn: Callable, t, tau, z) -> float:
    z.grad = None
    tau.grad = None
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    step(fn, t, tau, z, torch.cuda.synchronize)
    return torch.cuda.max_memory_allocated() - base


def run_size(n: int, c: int, device: str, repeats: int, methods: Tuple[str, ...], inner: int = 1
             ) -> Tuple[Dict[str, List[float]], Dict[str, float]]:
    t, tau, z = make_inputs(n, c, device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    fns = {m: make_fn(m) for m in methods}
    for m, fn in fns.items():  # warm-up (compiles torch.compile's graphs)
        for _ in range(3 if m == "compile" else 1):
            step(fn, t, tau, z, sync)
    times: Dict[str, List[float]] = {m: [] for m in methods}
    for _ in range(repeats):
        for m, fn in fns.items():
            times[m].append(step(fn, t, tau, z, sync, inner))
    # On CUDA the allocator's peak statistics work in-process (after the warm-up above).
    peaks = {}
    if device == "cuda":
        for m, fn in fns.items():
            peaks[m] = _cuda_peak(fn, t, tau, z)
    return times, peaks


def _commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"
    return (out.stdout.strip() or "unknown") + (" (with uncommitted changes)" if dirty else "")


def environment(device: str, threads: int) -> List[str]:
    cpu = "unknown"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                   if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {_commit()}",
             f"- CPU: {cpu}, nproc={os.cpu_count()}, torch threads={threads}",
             f"- Python {platform.python_version()}, torch {torch.__version__}, kernel path: {ops.kernel_path()}",
             f"- OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"]
    if device == "cuda":
        lanes = os.environ.get(ops.CUDA_LANES_ENV) or "chosen from C"
        lines.append(f"- GPU: {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}, lanes per row: {lanes}")
    try:
        load = os.getloadavg()
        lines.append(f"- load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    except OSError:
        pass
    return lines


def _sizes(text: str) -> List[Tuple[int, int]]:
    try:
        sizes = [tuple(int(x) for x in item.split("x")) for item in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(len(size) != 2 or min(size) < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"sizes are comma-separated NxC with N, C >= 1 (e.g. 1000000x47), got {text!r}")
    return sizes


TIME_HEADER = ["| N | C | method | median fwd+bwd (ms) | min (ms) | time / kernel time | GB/s (lower bound) "
               "| extra peak (MB) | extra / (N*C*4 B) |", "|---|---|---|---|---|---|---|---|---|"]
BOUND_HEADER = ["| N | C | copy median (ms) | copy GB/s | bytes bound (ms) | kernel median (ms) | kernel / bound |",
                "|---|---|---|---|---|---|---|"]


def size_rows(n: int, c: int, args: argparse.Namespace, methods: Tuple[str, ...]) -> Tuple[List[str], List[str]]:
    """Time every method at N x C; return the rows of the time table and of the copy-bound table."""
    times, peaks = run_size(n, c, args.device, args.repeats, methods, args.inner)
    med = {m: statistics.median(v) for m, v in times.items()}
    rows = []
    for m in methods:
        if args.device == "cuda":
            mem = peaks[m]
        else:
            mem = "" if args.no_memory or m.startswith("copy") else measure_memory(m, n, c, args.device, args.threads)
        mem_cols = ("-", "-") if mem == "" else (f"{mem / 2**20:.0f}", f"{mem / (n * c * 4):.2f}")
        ratio = med[m] / med["kernel"] if "kernel" in med else float("nan")
        gbs = (copy_bytes(n, c) if m.startswith("copy") else bytes_lower_bound(n, c)) / med[m] / 1e9
        digits = 3 if med[m] < 0.01 else 1
        rows.append(f"| {n} | {c} | {m} | {med[m] * 1e3:.{digits}f} | {min(times[m]) * 1e3:.{digits}f} | "
                    f"{ratio:.2f}x | {gbs:.1f} | {mem_cols[0]} | {mem_cols[1]} |")
        print(rows[-1], flush=True)
    bound = []
    if "copy" in med and "kernel" in med:
        copy_gbs = copy_bytes(n, c) / med["copy"] / 1e9
        bound_s = bytes_lower_bound(n, c) / (copy_gbs * 1e9)
        bound.append(f"| {n} | {c} | {med['copy'] * 1e3:.1f} | {copy_gbs:.1f} | {bound_s * 1e3:.1f} | "
                     f"{med['kernel'] * 1e3:.1f} | {med['kernel'] / bound_s:.2f}x |")
    return rows, bound


def main(argv: List[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=_sizes, default="1000000x47,169343x40", help="comma-separated NxC")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--repeats", type=at_least(1), default=7)
    p.add_argument("--threads", type=at_least(1), default=torch.get_num_threads())
    p.add_argument("--methods", type=choice_list(METHODS), default=",".join(METHODS),
                   help=f"comma-separated, from: {', '.join(METHODS)}")
    p.add_argument("--inner", type=at_least(1), default=1, help="calls per timed step (between two synchronisations)")
    p.add_argument("--no-memory", action="store_true", help="skip the subprocess memory measurement")
    p.add_argument("--out", type=Path, help="also write the Markdown report here")
    p.add_argument("--_mem-child", dest="mem_child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    os.environ.pop(ops.DISABLE_ENV, None)
    if args.mem_child:
        _memory_child(args.mem_child, *args.sizes[0], args.device, args.threads)
        return
    torch.set_num_threads(args.threads)
    methods = tuple(args.methods.split(","))
    time_rows, bound_rows = list(TIME_HEADER), list(BOUND_HEADER)
    for n, c in args.sizes:
        rows, bound = size_rows(n, c, args, methods)
        time_rows += rows
        bound_rows += bound
    head = [f"Command: `python {' '.join([Path(sys.argv[0]).as_posix()] + sys.argv[1:])}`", ""]
    head += environment(args.device, args.threads)
    head += [f"- repeats: {args.repeats} (interleaved; medians), {args.inner} call(s) per timed step", ""]
    tables = time_rows + ([""] + bound_rows if len(bound_rows) > 2 else [])
    text = "\n".join(head + tables) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
