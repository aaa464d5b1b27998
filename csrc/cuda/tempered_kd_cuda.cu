// CUDA kernels: a group of L lanes per row (L = 4, 8, 16 or 32; 256 / L rows per block,
// grid-stride over rows). L is chosen per call from C (see lanes_for), so a short row (C = 47)
// does not leave most of a warp idle, and the shuffle merges take log2(L) steps instead of 5.
//
// Forward: each lane keeps an online softmax state over its columns,
//   ms, ss = sum exp(s - ms)  (s = t / tau),  mz, sz = sum exp(z - mz),  a = sum exp(s - ms) (z - mz),
// and the L states are merged with butterfly shuffles inside the group; lane 0 writes loss, lse_s, lse_z.
// Backward: sweep 1 recomputes p and softmax(z) from the saved log-sum-exps, writes dl/dz and
// reduces <p,t>, <p,z>; sweep 2 (row now in L1/L2) forms the centred covariance for dl/dtau and
// writes dl/dt when asked.
#include "tempered_kd.h"

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h> // getCurrentCUDAStream without the cuBLAS/cuSPARSE headers
#include <torch/library.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath> // INFINITY
#include <cstdlib> // getenv
#include <string>
#include <tuple>
#include <type_traits> // integral_constant

namespace dgl_ltd {
namespace ops {

namespace {

constexpr int kWarp = 32;
constexpr int kThreads = 256;
constexpr unsigned kFullMask = 0xffffffffu;

// The lanes of this thread's row group: L consecutive lanes starting at a multiple of L. The
// shuffles below name only those lanes, so groups of one warp may leave the row loop at
// different iterations (a group's lanes always take the same path).
template <int L>
__device__ __forceinline__ unsigned group_mask() {
  static_assert(L == 4 || L == 8 || L == 16 || L == 32, "lanes per row: 4, 8, 16 or 32");
  if constexpr (L == kWarp) {
    return kFullMask;
  } else {
    const unsigned first = (threadIdx.x % kWarp) & ~static_cast<unsigned>(L - 1);
    return ((1u << L) - 1u) << first;
  }
}

__device__ __forceinline__ float exp_(float x) {
  return expf(x);
}
__device__ __forceinline__ double exp_(double x) {
  return exp(x);
}
// s = t / tau is recomputed in the backward and must equal the forward's value bit for bit:
// with --use_fast_math a plain '/' becomes an approximate division that the compiler may fuse
// differently in each kernel (an error of 1e-4 in s = 1e4 is then amplified by 1 / tau^2 in
// dl/dtau). The _rn intrinsics give correctly rounded results that are never contracted.
__device__ __forceinline__ float div_rn(float a, float b) {
  return __fdiv_rn(a, b);
}
__device__ __forceinline__ double div_rn(double a, double b) {
  return __ddiv_rn(a, b);
}
__device__ __forceinline__ float sub_rn(float a, float b) {
  return __fsub_rn(a, b);
}
__device__ __forceinline__ double sub_rn(double a, double b) {
  return __dsub_rn(a, b);
}
__device__ __forceinline__ float log_(float x) {
  return logf(x);
}
__device__ __forceinline__ double log_(double x) {
  return log(x);
}

template <int L, typename T>
__device__ __forceinline__ T group_sum(T x, unsigned mask) {
  for (int off = L / 2; off > 0; off >>= 1) {
    x += __shfl_xor_sync(mask, x, off);
  }
  return x;
}

template <typename T>
struct OnlineStats {
  T ms; // running max of s = t / tau
  T ss; // sum exp(s - ms); >= 1 once a column was seen, 0 for an empty state
  T mz; // running max of z
  T sz; // sum exp(z - mz)
  T a; // sum exp(s - ms) * (z - mz)

  __device__ __forceinline__ void push(T s, T z) {
    if (z > mz) {
      if (ss > 0) {
        a -= (z - mz) * ss;
      }
      sz *= exp_(mz - z);
      mz = z;
    }
    if (s > ms) {
      const T f = exp_(ms - s);
      ss *= f;
      a *= f;
      ms = s;
    }
    const T e = exp_(s - ms);
    const T dz = z - mz;
    ss += e;
    a += e * dz;
    sz += exp_(dz);
  }

  __device__ __forceinline__ void merge(const OnlineStats& o) {
    if (o.ss == T(0)) {
      return;
    }
    if (ss == T(0)) {
      *this = o;
      return;
    }
    const T nmz = mz > o.mz ? mz : o.mz;
    const T nms = ms > o.ms ? ms : o.ms;
    const T fa = exp_(ms - nms), fb = exp_(o.ms - nms);
    const T aa = a - (nmz - mz) * ss, ab = o.a - (nmz - o.mz) * o.ss;
    sz = sz * exp_(mz - nmz) + o.sz * exp_(o.mz - nmz);
    ss = fa * ss + fb * o.ss;
    a = fa * aa + fb * ab;
    ms = nms;
    mz = nmz;
  }

  template <int L>
  __device__ __forceinline__ void group_merge(unsigned mask) {
    for (int off = L / 2; off > 0; off >>= 1) {
      OnlineStats o;
      o.ms = __shfl_xor_sync(mask, ms, off);
      o.ss = __shfl_xor_sync(mask, ss, off);
      o.mz = __shfl_xor_sync(mask, mz, off);
      o.sz = __shfl_xor_sync(mask, sz, off);
      o.a = __shfl_xor_sync(mask, a, off);
      merge(o);
    }
  }
};

template <typename T, int L>
__global__ void __launch_bounds__(kThreads) tempered_kd_forward_kernel(
    const T* __restrict__ t,
    const T* __restrict__ tau,
    const T* __restrict__ z,
    const T* __restrict__ w, // nullptr: all ones
    T* __restrict__ loss,
    T* __restrict__ lse_s,
    T* __restrict__ lse_z,
    int64_t rows,
    int64_t cols) {
  constexpr int kRowsPerBlock = kThreads / L;
  const int lane = threadIdx.x % L;
  const unsigned mask = group_mask<L>();
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kRowsPerBlock;
  const T neg_inf = -static_cast<T>(INFINITY); // host-only numeric_limits is not callable here
  for (int64_t v = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / L; v < rows;
       v += stride) {
    const T* tr = t + v * cols;
    const T* zr = z + v * cols;
    const T tv = tau[v];
    OnlineStats<T> st{neg_inf, T(0), neg_inf, T(0), T(0)};
    for (int64_t c = lane; c < cols; c += L) {
      st.push(div_rn(tr[c], tv), zr[c]);
    }
    st.group_merge<L>(mask);
    if (lane == 0) {
      const T log_sz = log_(st.sz);
      lse_s[v] = st.ms + log_(st.ss);
      lse_z[v] = st.mz + log_sz;
      loss[v] = (w == nullptr ? T(1) : w[v]) * (log_sz - st.a / st.ss);
    }
  }
}

template <typename T, int L>
__global__ void __launch_bounds__(kThreads) tempered_kd_backward_kernel(
    const T* __restrict__ g,
    int64_t g_stride, // 0 when the incoming gradient is one value expanded over the rows
    const T* __restrict__ t,
    const T* __restrict__ tau,
    const T* __restrict__ z,
    const T* __restrict__ w, // nullptr: all ones
    const T* __restrict__ lse_s,
    const T* __restrict__ lse_z,
    T* __restrict__ dt, // nullptr unless the teacher needs a gradient
    T* __restrict__ dtau,
    T* __restrict__ dz,
    int64_t rows,
    int64_t cols) {
  constexpr int kRowsPerBlock = kThreads / L;
  const int lane = threadIdx.x % L;
  const unsigned mask = group_mask<L>();
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kRowsPerBlock;
  for (int64_t v = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / L; v < rows;
       v += stride) {
    const T* tr = t + v * cols;
    const T* zr = z + v * cols;
    T* dzr = dz + v * cols;
    const T tv = tau[v], ls = lse_s[v], lz = lse_z[v];
    const T coef = g[v * g_stride] * (w == nullptr ? T(1) : w[v]);
    T pt = 0, pz = 0;
    for (int64_t c = lane; c < cols; c += L) {
      const T tc = tr[c], zc = zr[c];
      const T p = exp_(sub_rn(div_rn(tc, tv), ls));
      pt += p * tc;
      pz += p * zc;
      dzr[c] = coef * (exp_(zc - lz) - p);
    }
    pt = group_sum<L>(pt, mask);
    pz = group_sum<L>(pz, mask);
    T cov = 0;
    T* dtr = dt == nullptr ? nullptr : dt + v * cols;
    const T k = -coef / tv;
    for (int64_t c = lane; c < cols; c += L) {
      const T tc = tr[c], zc = zr[c];
      const T p = exp_(sub_rn(div_rn(tc, tv), ls));
      cov += p * (tc - pt) * (zc - pz);
      if (dtr != nullptr) {
        dtr[c] = k * p * (zc - pz);
      }
    }
    cov = group_sum<L>(cov, mask);
    if (lane == 0) {
      dtau[v] = coef * cov / tv / tv;
    }
  }
}

// Lanes per row: the smallest power of two that gives each lane at most cols_per_lane columns,
// between 4 and 32; the forward and the backward kernel use different limits (why these:
// benchmarks/results/notes/kernel.md, "rows of 4 to 32 lanes").
// DGL_LTD_CUDA_LANES=4|8|16|32 overrides both (for benchmarks and tests); it is read once, at the
// first call (a bad value raises at every call, since the failed initialisation is retried).
constexpr int64_t kForwardColsPerLane = 16;
constexpr int64_t kBackwardColsPerLane = 4;
constexpr const char* kLanesEnv = "DGL_LTD_CUDA_LANES";

int read_lanes_override() {
  const char* env = std::getenv(kLanesEnv);
  const std::string v = env == nullptr ? "" : env;
  if (v.empty()) {
    return 0;
  }
  TORCH_CHECK(
      v == "4" || v == "8" || v == "16" || v == "32",
      kLanesEnv,
      " must be 4, 8, 16 or 32, got '",
      v,
      "': unset it to let the kernel choose");
  return std::stoi(v);
}

int lanes_for(int64_t cols, int64_t cols_per_lane) {
  static const int lanes_override = read_lanes_override();
  if (lanes_override != 0) {
    return lanes_override;
  }
  int lanes = 4;
  while (lanes < kWarp && lanes * cols_per_lane < cols) {
    lanes *= 2;
  }
  return lanes;
}

// Calls f(std::integral_constant<int, L>) for the runtime lane count.
template <typename F>
void with_lanes(int lanes, F&& f) {
  switch (lanes) {
    case 4:
      f(std::integral_constant<int, 4>{});
      break;
    case 8:
      f(std::integral_constant<int, 8>{});
      break;
    case 16:
      f(std::integral_constant<int, 16>{});
      break;
    default:
      f(std::integral_constant<int, 32>{});
  }
}

// Enough blocks to fill the device a few times over; the kernels grid-stride over the rest.
int64_t grid_for(int64_t rows, int lanes, c10::DeviceIndex device) {
  int sms = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t rows_per_block = kThreads / lanes;
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
  const int64_t resident = static_cast<int64_t>(std::max(sms, 1)) * (2048 / kThreads) * 4;
  return std::max<int64_t>(1, std::min(blocks, resident));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> tempered_kd_forward_cuda(
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const at::Tensor& weight) {
  check_forward_inputs(teacher, tau, student, weight);
  TORCH_CHECK(student.is_cuda(), "tempered_kd_forward_cuda: expected CUDA tensors");
  const c10::cuda::CUDAGuard guard(student.device());
  const at::Tensor t = teacher.contiguous(), tu = tau.contiguous();
  const at::Tensor z = student.contiguous(), w = weight.contiguous();
  const int64_t n = z.size(0), cols = z.size(1);
  at::Tensor loss = at::empty({n}, z.options());
  at::Tensor lse_s = at::empty({n}, z.options());
  at::Tensor lse_z = at::empty({n}, z.options());
  if (n == 0) {
    return {loss, lse_s, lse_z};
  }
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int lanes = lanes_for(cols, kForwardColsPerLane);
  const int64_t grid = grid_for(n, lanes, student.device().index());
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "tempered_kd_forward_cuda", [&] {
    with_lanes(lanes, [&](auto l) {
      tempered_kd_forward_kernel<scalar_t, decltype(l)::value><<<grid, kThreads, 0, stream>>>(
          t.data_ptr<scalar_t>(),
          tu.data_ptr<scalar_t>(),
          z.data_ptr<scalar_t>(),
          w.numel() == 0 ? nullptr : w.data_ptr<scalar_t>(),
          loss.data_ptr<scalar_t>(),
          lse_s.data_ptr<scalar_t>(),
          lse_z.data_ptr<scalar_t>(),
          n,
          cols);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {loss, lse_s, lse_z};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> tempered_kd_backward_cuda(
    const at::Tensor& grad_rows,
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const at::Tensor& weight,
    const at::Tensor& lse_s,
    const at::Tensor& lse_z,
    bool need_teacher) {
  check_backward_inputs(grad_rows, teacher, tau, student, weight, lse_s, lse_z);
  TORCH_CHECK(student.is_cuda(), "tempered_kd_backward_cuda: expected CUDA tensors");
  const c10::cuda::CUDAGuard guard(student.device());
  const at::Tensor& g = grad_rows; // read with its stride (an expanded scalar needs no copy)
  const at::Tensor t = teacher.contiguous();
  const at::Tensor tu = tau.contiguous(), z = student.contiguous(), w = weight.contiguous();
  const at::Tensor ls = lse_s.contiguous(), lz = lse_z.contiguous();
  const int64_t n = z.size(0), cols = z.size(1);
  at::Tensor dz = at::empty({n, cols}, z.options());
  at::Tensor dtau = at::empty({n}, z.options());
  at::Tensor dt = need_teacher ? at::empty({n, cols}, z.options()) : at::empty({0}, z.options());
  if (n == 0) {
    return {dt, dtau, dz};
  }
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int lanes = lanes_for(cols, kBackwardColsPerLane);
  const int64_t grid = grid_for(n, lanes, student.device().index());
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "tempered_kd_backward_cuda", [&] {
    with_lanes(lanes, [&](auto l) {
      tempered_kd_backward_kernel<scalar_t, decltype(l)::value><<<grid, kThreads, 0, stream>>>(
          g.data_ptr<scalar_t>(),
          g.stride(0),
          t.data_ptr<scalar_t>(),
          tu.data_ptr<scalar_t>(),
          z.data_ptr<scalar_t>(),
          w.numel() == 0 ? nullptr : w.data_ptr<scalar_t>(),
          ls.data_ptr<scalar_t>(),
          lz.data_ptr<scalar_t>(),
          need_teacher ? dt.data_ptr<scalar_t>() : nullptr,
          dtau.data_ptr<scalar_t>(),
          dz.data_ptr<scalar_t>(),
          n,
          cols);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {dt, dtau, dz};
}

} // namespace

TORCH_LIBRARY_IMPL(dgl_ltd, CUDA, m) {
  m.impl("tempered_kd_forward", &tempered_kd_forward_cuda);
  m.impl("tempered_kd_backward", &tempered_kd_backward_cuda);
}

} // namespace ops
} // namespace dgl_ltd
