// CPU kernels: torch's thread pool over rows, one sweep over each row per pass.
//
// Forward: an online (running-max) log-sum-exp over row chunks. Each chunk of a row is read from
// memory once; its maxima are found first, the running sums are rescaled if a maximum grew, then
// the chunk's exponentials are accumulated from cache. Per row we keep
//   ms, Ss = sum exp(s - ms)           (s = t / tau),
//   mz, Sz = sum exp(z - mz),
//   A      = sum exp(s - ms) * (z - mz),
// so that l = w * (log Sz - A / Ss) without cancellation when the student's logits are large.
// Backward: p = exp(s - lse_s) is recomputed once per element into a small row buffer, then a
// second sweep over the cached row forms the centred covariance used by d/dtau.
// Row buffers are padded to whole SIMD vectors so that no loop has a scalar tail.
#include "tempered_kd.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

// Compile the row loops for several x86 ISAs and pick one at load time, so that a default
// (-march=x86-64) build still runs the exponentials 8 or 16 lanes wide on AVX2 / AVX-512 machines.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && \
    __GNUC__ >= 12 && !defined(DGL_LTD_NO_TARGET_CLONES)
#define DGL_LTD_MULTIVERSION \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DGL_LTD_MULTIVERSION
#endif

#if defined(__GNUC__)
#define DGL_LTD_INLINE inline __attribute__((always_inline))
#else
#define DGL_LTD_INLINE inline
#endif

namespace dgl_ltd {
namespace ops {

namespace {

constexpr int64_t kChunk = 256; // columns per online-softmax step (fits in L1)
constexpr int64_t kGrain = 1 << 15; // elements below which we stay single-threaded
constexpr int64_t kBlock = 1 << 15; // elements per block of rows handed to one thread
constexpr int64_t kLanes = 16; // row buffers are padded to whole vectors, so no scalar tail loops

inline int64_t padded(int64_t n) {
  return (n + kLanes - 1) / kLanes * kLanes;
}

// exp(x) for x <= 0 in float, written so that the compiler can vectorise it: round x / ln2 to
// n, reduce r = x - n ln2 (|r| <= ln2 / 2), evaluate a degree-7 Taylor polynomial (error below
// one float ulp on that interval) and scale by 2^n through the exponent bits. Values below the
// smallest normal float flush to 0; NaN propagates.
DGL_LTD_INLINE float exp_nonpos(float x) {
  const bool tiny = x < -87.0f;
  x = tiny ? -87.0f : x;
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693145751953125f;
  r = r - n * 1.42860682030941723e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return tiny ? 0.0f : p * scale;
}

DGL_LTD_INLINE double exp_nonpos(double x) {
  return std::exp(x);
}

// ---------------------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------------------

template <typename scalar_t>
struct ForwardArgs {
  const scalar_t* t;
  const scalar_t* tau;
  const scalar_t* z;
  const scalar_t* w; // nullptr: all ones
  scalar_t* loss;
  scalar_t* lse_s;
  scalar_t* lse_z;
  int64_t rows;
  int64_t cols;
};

template <typename scalar_t>
DGL_LTD_INLINE void forward_rows(const ForwardArgs<scalar_t>& a, int64_t begin, int64_t end) {
  const int64_t C = a.cols;
  const scalar_t neg_inf = -std::numeric_limits<scalar_t>::infinity();
  const scalar_t z_pad = std::numeric_limits<scalar_t>::lowest() / 2; // exp(z_pad - mz) == 0
  const int64_t cap = padded(std::min(C, kChunk));
  std::vector<scalar_t> buf(static_cast<size_t>(2 * cap));
  scalar_t* s = buf.data(); // t / tau for the current chunk, padded with -inf
  scalar_t* zb = s + cap; // z for the current chunk, padded with z_pad
  const int64_t total = a.rows * C;
  for (int64_t v = begin; v < end; ++v) {
    const scalar_t* t = a.t + v * C;
    const scalar_t* z = a.z + v * C;
    const scalar_t tau = a.tau[v];
    scalar_t ms = neg_inf, mz = neg_inf;
    scalar_t Ss = 0, Sz = 0, A = 0;
    for (int64_t c0 = 0; c0 < C; c0 += kChunk) {
      const int64_t len = std::min(kChunk, C - c0);
      const int64_t lp = padded(len);
      const scalar_t* tc = t + c0;
      const scalar_t* zc = z + c0;
      // Whole vectors: past the row's end we read the next row (overwritten by the padding below),
      // except at the very end of the tensor.
      const int64_t lr = (v * C + c0 + lp <= total) ? lp : len;
#pragma omp simd
      for (int64_t c = 0; c < lr; ++c) {
        s[c] = tc[c] / tau;
        zb[c] = zc[c];
      }
      for (int64_t c = len; c < lp; ++c) {
        s[c] = neg_inf;
        zb[c] = z_pad;
      }
      scalar_t cms = neg_inf, cmz = neg_inf;
#pragma omp simd reduction(max : cms, cmz)
      for (int64_t c = 0; c < lp; ++c) {
        cms = s[c] > cms ? s[c] : cms;
        cmz = zb[c] > cmz ? zb[c] : cmz;
      }
      if (c0 == 0) {
        ms = cms;
        mz = cmz;
      } else {
        if (cmz > mz) { // re-centre A and Sz on the new student maximum
          A -= (cmz - mz) * Ss;
          Sz *= exp_nonpos(mz - cmz);
          mz = cmz;
        }
        if (cms > ms) { // rescale the teacher sums to the new teacher maximum
          const scalar_t f = exp_nonpos(ms - cms);
          Ss *= f;
          A *= f;
          ms = cms;
        }
      }
      scalar_t ss = 0, sz = 0, aa = 0;
#pragma omp simd reduction(+ : ss, sz, aa)
      for (int64_t c = 0; c < lp; ++c) {
        const scalar_t e = exp_nonpos(s[c] - ms);
        const scalar_t dz = zb[c] - mz;
        ss += e;
        aa += e * dz;
        sz += exp_nonpos(dz);
      }
      Ss += ss;
      Sz += sz;
      A += aa;
    }
    const scalar_t log_sz = std::log(Sz);
    a.lse_s[v] = ms + std::log(Ss);
    a.lse_z[v] = mz + log_sz;
    const scalar_t wv = a.w == nullptr ? scalar_t(1) : a.w[v];
    a.loss[v] = wv * (log_sz - A / Ss);
  }
}

DGL_LTD_MULTIVERSION void forward_rows_f32(const ForwardArgs<float>& a, int64_t b, int64_t e) {
  forward_rows<float>(a, b, e);
}

void forward_rows_f64(const ForwardArgs<double>& a, int64_t b, int64_t e) {
  forward_rows<double>(a, b, e);
}

// ---------------------------------------------------------------------------------------------
// Backward
// ---------------------------------------------------------------------------------------------

template <typename scalar_t>
struct BackwardArgs {
  const scalar_t* g;
  int64_t g_stride; // 0 when the incoming gradient is one value expanded over the rows
  const scalar_t* t;
  const scalar_t* tau;
  const scalar_t* z;
  const scalar_t* w; // nullptr: all ones
  const scalar_t* lse_s;
  const scalar_t* lse_z;
  scalar_t* dt; // nullptr unless the teacher needs a gradient
  scalar_t* dtau;
  scalar_t* dz;
  int64_t rows;
  int64_t cols;
};

template <typename scalar_t>
DGL_LTD_INLINE void backward_rows(const BackwardArgs<scalar_t>& a, int64_t begin, int64_t end) {
  const int64_t C = a.cols;
  const int64_t cp = padded(C);
  // Row buffers padded to whole vectors: s = -inf (so p = 0), t = z = 0 in the padding.
  std::vector<scalar_t> buf(static_cast<size_t>(5 * cp), scalar_t(0));
  scalar_t* sb = buf.data();
  scalar_t* tb = sb + cp;
  scalar_t* zb = tb + cp;
  scalar_t* pb = zb + cp;
  scalar_t* gb = pb + cp;
  const int64_t total = a.rows * C;
  for (int64_t v = begin; v < end; ++v) {
    const scalar_t* t = a.t + v * C;
    const scalar_t* z = a.z + v * C;
    const scalar_t tau = a.tau[v];
    const scalar_t ls = a.lse_s[v];
    const scalar_t lz = a.lse_z[v];
    const scalar_t coef = a.g[v * a.g_stride] * (a.w == nullptr ? scalar_t(1) : a.w[v]);
    const int64_t lr = (v * C + cp <= total) ? cp : C; // as in forward_rows
#pragma omp simd
    for (int64_t c = 0; c < lr; ++c) {
      sb[c] = t[c] / tau;
      tb[c] = t[c];
      zb[c] = z[c];
    }
    for (int64_t c = C; c < cp; ++c) {
      sb[c] = -std::numeric_limits<scalar_t>::infinity();
      tb[c] = 0;
      zb[c] = 0;
    }
    // Sweep 1: p, <p, t>, <p, z> and dl/dz = coef * (softmax(z) - p).
    scalar_t pt = 0, pz = 0;
#pragma omp simd reduction(+ : pt, pz)
    for (int64_t c = 0; c < cp; ++c) {
      const scalar_t pc = exp_nonpos(sb[c] - ls);
      pb[c] = pc;
      pt += pc * tb[c];
      pz += pc * zb[c];
      gb[c] = coef * (exp_nonpos(zb[c] - lz) - pc);
    }
    std::memcpy(a.dz + v * C, gb, static_cast<size_t>(C) * sizeof(scalar_t));
    // Sweep 2 (row in cache): centred covariance sum_c p_c (t_c - <p,t>) (z_c - <p,z>).
    scalar_t cov = 0;
#pragma omp simd reduction(+ : cov)
    for (int64_t c = 0; c < cp; ++c) {
      cov += pb[c] * (tb[c] - pt) * (zb[c] - pz);
    }
    a.dtau[v] = coef * cov / tau / tau;
    if (a.dt != nullptr) {
      scalar_t* dt = a.dt + v * C;
      const scalar_t k = -coef / tau;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        dt[c] = k * pb[c] * (zb[c] - pz);
      }
    }
  }
}

DGL_LTD_MULTIVERSION void backward_rows_f32(const BackwardArgs<float>& a, int64_t b, int64_t e) {
  backward_rows<float>(a, b, e);
}

void backward_rows_f64(const BackwardArgs<double>& a, int64_t b, int64_t e) {
  backward_rows<double>(a, b, e);
}

inline void rows_of(const ForwardArgs<float>& a, int64_t b, int64_t e) { forward_rows_f32(a, b, e); }
inline void rows_of(const ForwardArgs<double>& a, int64_t b, int64_t e) { forward_rows_f64(a, b, e); }
inline void rows_of(const BackwardArgs<float>& a, int64_t b, int64_t e) { backward_rows_f32(a, b, e); }
inline void rows_of(const BackwardArgs<double>& a, int64_t b, int64_t e) { backward_rows_f64(a, b, e); }

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

// Rows are handed out in blocks of about kBlock elements, dynamically (an atomic block counter),
// so that a thread slowed down by other load on a shared machine does not hold up the others.
// The threads are torch's own (at::parallel_for, one worker per thread): a second OpenMP runtime
// in this module would keep its threads spinning beside torch's and steal the cores from the
// operators that run next. The thread count follows torch.set_num_threads; results do not
// depend on it.
template <typename Args>
void parallel_rows(const Args& args, int64_t rows, int64_t cols) {
  if (rows == 0) {
    return;
  }
  const int64_t block = std::max<int64_t>(1, kBlock / std::max<int64_t>(cols, 1));
  const int64_t blocks = (rows + block - 1) / block;
  const int64_t threads = rows * cols < kGrain ? 1 : std::min<int64_t>(at::get_num_threads(), blocks);
  if (threads <= 1) {
    rows_of(args, 0, rows);
    return;
  }
  std::atomic<int64_t> next{0};
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) {
    for (int64_t b = next.fetch_add(1); b < blocks; b = next.fetch_add(1)) {
      rows_of(args, b * block, std::min(rows, (b + 1) * block));
    }
  });
}

} // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> tempered_kd_forward_cpu(
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const at::Tensor& weight) {
  check_forward_inputs(teacher, tau, student, weight);
  TORCH_CHECK(student.device().is_cpu(), "tempered_kd_forward_cpu: expected CPU tensors");
  const at::Tensor t = teacher.contiguous(), tu = tau.contiguous();
  const at::Tensor z = student.contiguous(), w = weight.contiguous();
  const int64_t n = z.size(0), cols = z.size(1);
  at::Tensor loss = at::empty({n}, z.options());
  at::Tensor lse_s = at::empty({n}, z.options());
  at::Tensor lse_z = at::empty({n}, z.options());
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "tempered_kd_forward_cpu", [&] {
    const ForwardArgs<scalar_t> args{
        t.data_ptr<scalar_t>(),
        tu.data_ptr<scalar_t>(),
        z.data_ptr<scalar_t>(),
        w.numel() == 0 ? nullptr : w.data_ptr<scalar_t>(),
        loss.data_ptr<scalar_t>(),
        lse_s.data_ptr<scalar_t>(),
        lse_z.data_ptr<scalar_t>(),
        n,
        cols};
    parallel_rows(args, n, cols);
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
  TORCH_CHECK(student.device().is_cpu(), "tempered_kd_backward_cpu: expected CPU tensors");
  const at::Tensor& g = grad_rows; // read with its stride (an expanded scalar needs no copy)
  const at::Tensor t = teacher.contiguous();
  const at::Tensor tu = tau.contiguous(), z = student.contiguous(), w = weight.contiguous();
  const at::Tensor ls = lse_s.contiguous(), lz = lse_z.contiguous();
  const int64_t n = z.size(0), cols = z.size(1);
  at::Tensor dz = at::empty({n, cols}, z.options());
  at::Tensor dtau = at::empty({n}, z.options());
  at::Tensor dt = need_teacher ? at::empty({n, cols}, z.options()) : at::empty({0}, z.options());
  advise_huge_pages(dz);
  advise_huge_pages(dt);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "tempered_kd_backward_cpu", [&] {
    const BackwardArgs<scalar_t> args{
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
        cols};
    parallel_rows(args, n, cols);
  });
  return {dt, dtau, dz};
}

} // namespace ops
} // namespace dgl_ltd
