#!/usr/bin/env bash
# One-shot GPU check of the fused tempered-KD kernel (meant for a fresh CUDA machine, no DGL):
#   1. build dgl_ltd._C in place with the CUDA kernels (sm_90),
#   2. probe that a C++ error (TORCH_CHECK) raised inside the extension reaches Python; if it
#      crashes the interpreter, relink the same objects with another toolchain and probe again,
#   3. run tests/test_ops.py, tests/test_ops_cuda.py and tests/test_step_core_device.py (the CUDA tests, opcheck
#      included, and the step core with GPU tensors: they must run, not skip),
#   4. time kernel vs eager vs torch.compile vs a copy on the GPU, one call per timed step (latency included),
#   5. the same with 20 calls per timed step, then the kernel at each row-group width (lanes per row;
#      DGL_LTD_CUDA_LANES is read once per process, so one benchmark process per width).
# Usage (repository root):  OUT=/some/dir bash benchmarks/gpu_check.sh
# Writes gpu_env.txt, build.log, probe.log, pytest.log, bench.log, gpu_results.txt, bench_lanes.log
# and gpu_lanes.txt into $OUT.
set -u
OUT=${OUT:-/tmp/dgl_ltd_gpu_check}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
ENV="$OUT/gpu_env.txt"

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  nvcc --version | tail -1
  $PY -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  echo "nproc $(nproc)  CC=${CC:-unset} CXX=${CXX:-unset}"
  for c in ${CXX:-} /opt/gcc/bin/g++ /usr/bin/g++; do [ -x "$c" ] && echo "$c: $($c --version | head -1)"; done
} > "$ENV" 2>&1

t0=$(date +%s)
FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=9.0 $PY setup.py build_ext --inplace > "$OUT/build.log" 2>&1
echo "build rc=$? in $(( $(date +%s) - t0 ))s" >> "$ENV"
$PY -c "import torch, dgl_ltd.ops as o; print('built_with_cuda', torch.ops.dgl_ltd.built_with_cuda(), o.KERNEL_PATH)" >> "$ENV" 2>&1

probe() {
  timeout 120 $PY - <<'EOF'
import torch
def attempt(name, fn):
    try:
        fn()
        print(name, "did not raise")
    except RuntimeError as exc:
        print(name, "raised:", str(exc).splitlines()[0][:90], flush=True)
attempt("torch-native", lambda: torch.ones(2) + torch.ones(3))
import dgl_ltd.ops
attempt("torch-native-after-import", lambda: torch.ones(2) + torch.ones(3))
t = torch.zeros(4, 3)
attempt("dgl_ltd-op", lambda: torch.ops.dgl_ltd.tempered_kd_forward(t, torch.ones(3), t, torch.ones(4)))
attempt("dgl_ltd-public-op", lambda: torch.ops.dgl_ltd.tempered_kd_loss(t, torch.ones(3), t))
EOF
}

LINK=$(grep -E -- "-shared .*_C\.cpython" "$OUT/build.log" | tail -1)
relink() {  # $1: C++ driver, $2: extra link flags
  local cmd
  cmd="$(echo "$LINK" | sed -E "s#^[^ ]+#$1#") $2"
  echo "relink: $1 $2" >> "$OUT/probe.log"
  eval "$cmd" >> "$OUT/probe.log" 2>&1 && cp build/lib*/dgl_ltd/_C*.so dgl_ltd/
}
probe > "$OUT/probe.log" 2>&1
rc=$?
echo "probe rc=$rc with the default build" >> "$ENV"
if [ $rc -ne 0 ] && [ -n "$LINK" ]; then
  for variant in "/usr/bin/g++|" "${CXX:-/opt/gcc/bin/g++}|-static-libgcc" "/usr/bin/g++|-static-libgcc"; do
    drv=${variant%%|*}; flags=${variant#*|}
    [ -x "$drv" ] || continue
    relink "$drv" "$flags" || continue
    probe >> "$OUT/probe.log" 2>&1
    rc=$?
    echo "probe rc=$rc after relinking with '$drv $flags'" >> "$ENV"
    [ $rc -eq 0 ] && break
  done
fi
readelf -lW dgl_ltd/_C*.so 2>/dev/null | grep -i eh_frame >> "$ENV"

t0=$(date +%s)
# --noconftest: the project's conftest is not needed here (and must not pull in DGL).
# -n 4 (pytest-xdist, if present): a crashing test fails alone instead of ending the session.
XDIST=""
$PY -c "import xdist" 2>/dev/null && XDIST="-n 4"
timeout 240 $PY -m pytest -q tests/test_ops.py tests/test_ops_cuda.py tests/test_step_core_device.py --noconftest -rs -p no:cacheprovider $XDIST > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? in $(( $(date +%s) - t0 ))s: $(tail -1 "$OUT/pytest.log")" >> "$ENV"

t0=$(date +%s)
timeout 150 $PY benchmarks/bench_kernel.py --device cuda --sizes 1000000x47,169343x40 --repeats 30 \
  --out "$OUT/gpu_results.txt" > "$OUT/bench.log" 2>&1
echo "bench rc=$? in $(( $(date +%s) - t0 ))s" >> "$ENV"

t0=$(date +%s)
timeout 100 $PY benchmarks/bench_kernel.py --device cuda --sizes 1000000x47,169343x40 --repeats 15 --inner 20 \
  --out "$OUT/gpu_lanes.txt" > "$OUT/bench_lanes.log" 2>&1
for lanes in 4 8 16 32; do
  DGL_LTD_CUDA_LANES=$lanes timeout 40 $PY benchmarks/bench_kernel.py --device cuda --sizes 1000000x47,169343x40 \
    --repeats 15 --inner 20 --methods kernel,copy --out "$OUT/gpu_lanes_$lanes.txt" >> "$OUT/bench_lanes.log" 2>&1
  grep "| kernel |" "$OUT/gpu_lanes_$lanes.txt" 2>/dev/null | sed "s/| kernel |/| kernel-L$lanes |/" >> "$OUT/gpu_lanes.txt"
done
echo "bench lanes rc=$? in $(( $(date +%s) - t0 ))s" >> "$ENV"
cat "$ENV" "$OUT/probe.log"
tail -25 "$OUT/pytest.log"
cat "$OUT/gpu_results.txt" 2>/dev/null || tail -30 "$OUT/bench.log"
cat "$OUT/gpu_lanes.txt" 2>/dev/null || tail -30 "$OUT/bench_lanes.log"
