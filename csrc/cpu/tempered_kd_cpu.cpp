// CPU kernels of the fused operators: torch's thread pool over blocks of rows, and row loops
// vectorised with at::vec::Vectorized (cpu/rows_impl.h), compiled for AVX-512, AVX2 and the
// baseline and chosen once, at the first call, from what the processor supports. As in torch,
// ATEN_CPU_CAPABILITY=default|avx2 caps the choice (read once).
#include "tempered_kd.h"

#include "cpu/rows.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

namespace dgl_ltd {
namespace ops {
namespace {

using cpu::BackwardRows;
using cpu::ForwardRows;

template <typename T>
struct RowKernelsOf {
  void (*forward)(const ForwardRows<T>&, int64_t, int64_t, T*);
  void (*backward)(const BackwardRows<T>&, int64_t, int64_t, T*);
};

struct RowKernels {
  RowKernelsOf<float> f32;
  RowKernelsOf<double> f64;
  const char* name;
};

#define DGL_LTD_ROW_KERNELS(ISA)                                                          \
  RowKernels {                                                                            \
    {&cpu::ISA::forward_rows, &cpu::ISA::backward_rows},                                  \
        {&cpu::ISA::forward_rows, &cpu::ISA::backward_rows}, cpu::ISA::name()             \
  }

std::string capability_cap() {
  const char* env = std::getenv("ATEN_CPU_CAPABILITY");
  std::string cap = env == nullptr ? "" : env;
  std::transform(cap.begin(), cap.end(), cap.begin(), [](unsigned char c) { return std::tolower(c); });
  return cap;
}

RowKernels choose_row_kernels() {
#if defined(DGL_LTD_ISA_FLAGS) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const std::string cap = capability_cap();
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  if (avx512 && cap != "avx2" && cap != "default") {
    return DGL_LTD_ROW_KERNELS(AVX512);
  }
  if (avx2 && cap != "default") {
    return DGL_LTD_ROW_KERNELS(AVX2);
  }
#endif
  return DGL_LTD_ROW_KERNELS(DEFAULT);
}

const RowKernels& row_kernels() {
  static const RowKernels kernels = choose_row_kernels();
  return kernels;
}

const RowKernelsOf<float>& kernels_for(float*) {
  return row_kernels().f32;
}
const RowKernelsOf<double>& kernels_for(double*) {
  return row_kernels().f64;
}

constexpr int64_t kGrain = 1 << 15; // elements below which we stay single-threaded
constexpr int64_t kBlock = 1 << 15; // elements per block of rows handed to one thread

// Rows go out in blocks of about kBlock elements through an atomic counter, so that a thread
// slowed down by other load on a shared machine does not hold up the others. The threads are
// torch's (at::parallel_for), so their number follows torch.set_num_threads; each block is
// computed the same way whichever thread takes it, so results do not depend on that number.
template <typename Args, typename T>
void parallel_rows(const Args& args, void (*rows)(const Args&, int64_t, int64_t, T*), int64_t scratch) {
  const int64_t n = args.rows, cols = args.cols;
  if (n == 0) {
    return;
  }
  const int64_t block = std::max<int64_t>(1, kBlock / std::max<int64_t>(cols, 1));
  const int64_t blocks = (n + block - 1) / block;
  const int64_t threads = n * cols < kGrain ? 1 : std::min<int64_t>(at::get_num_threads(), blocks);
  std::atomic<int64_t> next{0};
  auto work = [&](int64_t, int64_t) {
    std::vector<T> buffer(static_cast<size_t>(scratch));
    for (int64_t b = next.fetch_add(1); b < blocks; b = next.fetch_add(1)) {
      rows(args, b * block, std::min(n, (b + 1) * block), buffer.data());
    }
  };
  if (threads <= 1) {
    work(0, 1);
  } else {
    at::parallel_for(0, threads, 1, work);
  }
}

// Ask for transparent huge pages on a large, not yet touched output buffer: the first writes then
// fault in 2 MiB pages instead of 4 KiB ones, which for a fresh N x C gradient costs a good part
// of the backward otherwise. Only advice: ignored where unsupported.
void advise_huge_pages(const at::Tensor& out) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(1) << 21;
  const size_t bytes = out.nbytes();
  if (bytes < 8 * kHuge) {
    return;
  }
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(out.data_ptr()) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(out.data_ptr()) + bytes) & ~(kHuge - 1);
  if (end > begin) {
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  }
#endif
}

template <typename T>
const T* data_or_null(const at::Tensor& x) {
  return x.numel() == 0 ? nullptr : x.data_ptr<T>();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> tempered_kd_forward_cpu(
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const at::Tensor& weight) {
  check_forward_inputs(teacher, tau, student, weight);
  const at::Tensor t = teacher.contiguous(), tu = tau.contiguous();
  const at::Tensor z = student.contiguous(), w = weight.contiguous();
  const int64_t n = z.size(0), cols = z.size(1);
  at::Tensor loss = at::empty({n}, z.options());
  at::Tensor lse_s = at::empty({n}, z.options());
  at::Tensor lse_z = at::empty({n}, z.options());
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "tempered_kd_forward_cpu", [&] {
    const ForwardRows<scalar_t> args{
        t.data_ptr<scalar_t>(), tu.data_ptr<scalar_t>(), z.data_ptr<scalar_t>(), data_or_null<scalar_t>(w),
        loss.data_ptr<scalar_t>(), lse_s.data_ptr<scalar_t>(), lse_z.data_ptr<scalar_t>(), n, cols};
    parallel_rows(args, kernels_for(static_cast<scalar_t*>(nullptr)).forward, cpu::forward_scratch(cols));
  });
  return {loss, lse_s, lse_z};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> tempered_kd_backward_cpu(
    const at::Tensor& grad_rows,
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const at::Tensor& weight,
    const at::Tensor& lse_s,
    const at::Tensor& lse_z,
    bool need_teacher) {
  check_backward_inputs(grad_rows, teacher, tau, student, weight, lse_s, lse_z);
  const at::Tensor& g = grad_rows; // read with its stride (an expanded scalar needs no copy)
  const at::Tensor t = teacher.contiguous(), tu = tau.contiguous(), z = student.contiguous();
  const at::Tensor w = weight.contiguous(), ls = lse_s.contiguous(), lz = lse_z.contiguous();
  const int64_t n = z.size(0), cols = z.size(1);
  at::Tensor dz = at::empty({n, cols}, z.options());
  at::Tensor dtau = at::empty({n}, z.options());
  at::Tensor dt = need_teacher ? at::empty({n, cols}, z.options()) : at::empty({0}, z.options());
  advise_huge_pages(dz);
  advise_huge_pages(dt);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "tempered_kd_backward_cpu", [&] {
    const BackwardRows<scalar_t> args{
        g.data_ptr<scalar_t>(), g.stride(0), t.data_ptr<scalar_t>(), tu.data_ptr<scalar_t>(),
        z.data_ptr<scalar_t>(), data_or_null<scalar_t>(w), ls.data_ptr<scalar_t>(), lz.data_ptr<scalar_t>(),
        need_teacher ? dt.data_ptr<scalar_t>() : nullptr, dtau.data_ptr<scalar_t>(), dz.data_ptr<scalar_t>(),
        n, cols};
    parallel_rows(args, kernels_for(static_cast<scalar_t*>(nullptr)).backward, cpu::backward_scratch(cols));
  });
  return {dt, dtau, dz};
}

std::string cpu_kernel_isa() {
  return row_kernels().name;
}

} // namespace

TORCH_LIBRARY_IMPL(dgl_ltd, CPU, m) {
  m.impl("tempered_kd_forward", &tempered_kd_forward_cpu);
  m.impl("tempered_kd_backward", &tempered_kd_backward_cpu);
}

TORCH_LIBRARY_IMPL(dgl_ltd, CompositeExplicitAutograd, m) {
  m.impl("cpu_kernel_isa", &cpu_kernel_isa);
}

} // namespace ops
} // namespace dgl_ltd
