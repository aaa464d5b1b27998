"""Benchmark the fused tempered-KD kernel against the eager expression and torch.compile.

Times one forward + backward (gradients w.r.t. the student logits z and the temperatures tau;
the teacher logits t need no gradient), median over --repeats runs, the three methods interleaved
in the same process so that they see the same machine load. Peak extra memory is measured for each
method in a fresh subprocess (see ``_memory_child``). Prints a Markdown report; --out writes it.

    python benchmarks/bench_kernel.py --threads 2 --out /tmp/kernel_cpu.md   (kernel.md collects such reports)
    python benchmarks/bench_kernel.py --device cuda --sizes 1000000x47
    python benchmarks/bench_kernel.py --device cuda --methods kernel,kernel-L8,kernel-L16,kernel-L32,eager --inner 20

On CUDA, ``kernel-L<n>`` runs the kernel with n lanes per row (``DGL_LTD_CUDA_LANES``) instead of
the width it picks from C, and ``--inner K`` times K calls back to back between two
synchronisations, so that the launch and synchronisation latency is spread over K calls.

OpenMP threads wait passively here (``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it):
the code that ``torch.compile`` generates loads its own OpenMP runtime, whose threads otherwise
spin for a while after each call and, on a machine with few cores, slow down whichever method runs
next. Passive waiting does not change the eager or compile times (checked), only removes that
interference.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads its OpenMP runtime

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dgl_ltd import ops  # noqa: E402
from common import at_least, choice_list  # noqa: E402  (benchmarks/common.py: stdlib only)

METHODS = ("kernel", "eager", "compile")


def make_inputs(n: int, c: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    t = (torch.randn(n, c, generator=g) * 3).to(device)
    z = (torch.randn(n, c, generator=g) * 3).to(device).requires_grad_()
    tau = (0.5 + 2 * torch.rand(n, generator=g)).to(device).requires_grad_()
    return t, tau, z


def make_fn(method: str) -> Callable:
    if method == "kernel" or method.startswith("kernel-L"):
        if not ops.has_compiled_kernel():
            raise SystemExit("dgl_ltd._C is not built: run `python setup.py build_ext --inplace` first")
        return ops.tempered_kd_loss
    if method == "eager":
        return ops.eager_tempered_kd_loss
    return torch.compile(ops.eager_tempered_kd_loss)


@contextlib.contextmanager
def method_env(method: str) -> Iterator[None]:
    """For ``kernel-L<n>``: ``DGL_LTD_CUDA_LANES=n`` while the step runs. Both the forward and the
    backward launcher read it, so it must stay set until the backward has been launched."""
    if not method.startswith("kernel-L"):
        yield
        return
    os.environ[ops.CUDA_LANES_ENV] = method[len("kernel-L"):]
    try:
        yield
    finally:
        os.environ.pop(ops.CUDA_LANES_ENV, None)


def step(fn: Callable, t, tau, z, sync: Callable[[], None], inner: int = 1) -> float:
    """Seconds per forward + backward, averaged over ``inner`` calls between two synchronisations."""
    z.grad = None
    tau.grad = None
    sync()
    start = time.perf_counter()
    for _ in range(inner):
        fn(t, tau, z).backward()
    sync()
    return (time.perf_counter() - start) / inner


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
    with method_env(method):
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
            with method_env(m):
                step(fn, t, tau, z, sync)
    times: Dict[str, List[float]] = {m: [] for m in methods}
    for _ in range(repeats):
        for m, fn in fns.items():
            with method_env(m):
                times[m].append(step(fn, t, tau, z, sync, inner))
    # On CUDA the allocator's peak statistics work in-process (after the warm-up above).
    peaks = {}
    if device == "cuda":
        for m, fn in fns.items():
            with method_env(m):
                peaks[m] = _cuda_peak(fn, t, tau, z)
    return times, peaks


def environment(device: str, threads: int) -> List[str]:
    cpu = "unknown"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                   if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [f"- CPU: {cpu}, nproc={os.cpu_count()}, torch threads={threads}",
             f"- Python {platform.python_version()}, torch {torch.__version__}",
             f"- OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"]
    if device == "cuda":
        lines.append(f"- GPU: {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}")
    try:
        load = os.getloadavg()
        lines.append(f"- load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    except OSError:
        pass
    return lines


KNOWN_METHODS = METHODS + tuple(f"kernel-L{lanes}" for lanes in (4, 8, 16, 32))


def _sizes(text: str) -> List[Tuple[int, int]]:
    try:
        sizes = [tuple(int(x) for x in item.split("x")) for item in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(len(size) != 2 or min(size) < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"sizes are comma-separated NxC with N, C >= 1 (e.g. 1000000x47), got {text!r}")
    return sizes


def main(argv: List[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=_sizes, default="1000000x47,169343x40", help="comma-separated NxC")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--repeats", type=at_least(1), default=7)
    p.add_argument("--threads", type=at_least(1), default=torch.get_num_threads())
    p.add_argument("--methods", type=choice_list(KNOWN_METHODS), default=",".join(METHODS),
                   help=f"comma-separated, from: {', '.join(KNOWN_METHODS)} (kernel-L<n>: n CUDA lanes per row)")
    p.add_argument("--inner", type=at_least(1), default=1, help="calls per timed step (between two synchronisations)")
    p.add_argument("--no-memory", action="store_true", help="skip the subprocess memory measurement")
    p.add_argument("--out", type=Path, help="also write the Markdown report here")
    p.add_argument("--_mem-child", dest="mem_child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sizes = args.sizes
    os.environ.pop(ops.DISABLE_ENV, None)
    if args.mem_child:
        _memory_child(args.mem_child, *sizes[0], args.device, args.threads)
        return
    torch.set_num_threads(args.threads)
    methods = tuple(args.methods.split(","))
    report = ["| N | C | method | median fwd+bwd (ms) | min (ms) | time / kernel time | GB/s (lower bound) "
              "| extra peak (MB) | extra / (N*C*4 B) |", "|---|---|---|---|---|---|---|---|---|"]
    for n, c in sizes:
        times, peaks = run_size(n, c, args.device, args.repeats, methods, args.inner)
        med = {m: statistics.median(v) for m, v in times.items()}
        nc_bytes = n * c * 4
        for m in methods:
            if args.device == "cuda":
                mem = peaks[m]
            else:
                mem = "" if args.no_memory else measure_memory(m, n, c, args.device, args.threads)
            mem_cols = ("-", "-") if mem == "" else (f"{mem / 2**20:.0f}", f"{mem / nc_bytes:.2f}")
            ratio = med[m] / med["kernel"] if "kernel" in med else float("nan")
            gbs = bytes_lower_bound(n, c) / med[m] / 1e9
            digits = 3 if med[m] < 0.01 else 1
            report.append(f"| {n} | {c} | {m} | {med[m] * 1e3:.{digits}f} | {min(times[m]) * 1e3:.{digits}f} | "
                          f"{ratio:.2f}x | {gbs:.1f} | {mem_cols[0]} | {mem_cols[1]} |")
            print(report[-1], flush=True)
    head = [f"Command: `python {' '.join([Path(sys.argv[0]).as_posix()] + sys.argv[1:])}`", ""]
    head += environment(args.device, args.threads)
    head += [f"- repeats: {args.repeats} (interleaved), {args.inner} call(s) per timed step", ""]
    text = "\n".join(head + report) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
