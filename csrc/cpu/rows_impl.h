// The CPU row loops, written once with ATen's at::vec::Vectorized<T> (as torch's own softmax
// kernels are) and compiled once per instruction set by isa/rows_<isa>.cpp, which defines
// DGL_LTD_ISA before including this file (setup.py adds the matching -m flags and CPU_CAPABILITY).
//
// Forward (per row, per chunk of at most kForwardChunk columns): pass 1 divides t by tau once into
// the scratch row and takes the maxima of t / tau and z; pass 2 accumulates, from cache,
//   Ss = sum exp(s - ms),  Sz = sum exp(z - mz),  A = sum exp(s - ms) (z - mz),
// rescaling the running sums when a later chunk raises a maximum (online softmax), so that
// l = w (log Sz - A / Ss) is formed without cancellation when the logits are large.
// Backward (per row): sweep 1 recomputes p = exp(s - lse_s) into the scratch row, writes
// dl/dz = g w (softmax(z) - p) and sums <p, t>, <p, z>; sweep 2 (row in cache) forms the centred
// covariance for dl/dtau and, when asked, dl/dt.
//
// Rows of at most kMaxShortVectors vectors (C <= 64 in float with AVX-512) take the register-resident
// variants of rows_short.h instead.
//
// The last, partial vector of a row keeps its lanes past the row's end neutral (s = -inf, p = 0,
// z - mz = 0 with exp masked to 0). Whole vectors are read past a row's end whenever that memory
// still belongs to the tensor, and written past it when the next rows belong to the same call
// (they are written afterwards, in order, by the same thread).
#pragma once

#include "cpu/rows.h"

#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#ifndef DGL_LTD_ISA
#error "define DGL_LTD_ISA (DEFAULT, AVX2 or AVX512) and DGL_LTD_ISA_NAME before including rows_impl.h"
#endif

namespace dgl_ltd {
namespace ops {
namespace cpu {
namespace DGL_LTD_ISA {
namespace {

template <typename T>
using Vec = at::vec::Vectorized<T>;

// exp(x) for x <= 0 (what the row loops exponentiate), inlined. Double lanes use ATen's exp
// (Sleef, 1 ulp). Float lanes use the same Cody-Waite scheme written with Vectorized arithmetic, to
// avoid a call into libtorch per vector: n = round(x / ln 2), r = x - n ln 2 (|r| <= ln 2 / 2),
// a degree-7 Taylor polynomial of exp(r) (truncation below one float ulp on that interval), times
// 2^n built from the exponent bits. x is clamped at -86 first, so exp(-inf) and anything below
// gives exp(-86) ~ 4.5e-38 instead of 0 (no blend, and no subnormal product, whose microcode
// assist would cost more than the whole polynomial): next to the sums it enters, whose largest
// term is 1, that is far below rounding. NaN stays NaN.
template <typename T>
inline Vec<T> exp_nonpos(const Vec<T>& x) {
  return x.exp();
}

template <>
inline Vec<float> exp_nonpos<float>(const Vec<float>& x) {
  using V = Vec<float>;
  const V y = at::vec::clamp_min(x, V(-86.0f));
  const V n = (y * V(1.44269504088896341f)).round();
  V r = at::vec::fmadd(n, V(-0.693145751953125f), y);
  r = at::vec::fmadd(n, V(-1.42860682030941723e-6f), r);
  V p(1.0f / 5040.0f);
  p = at::vec::fmadd(p, r, V(1.0f / 720.0f));
  p = at::vec::fmadd(p, r, V(1.0f / 120.0f));
  p = at::vec::fmadd(p, r, V(1.0f / 24.0f));
  p = at::vec::fmadd(p, r, V(1.0f / 6.0f));
  p = at::vec::fmadd(p, r, V(0.5f));
  p = at::vec::fmadd(p, r, V(1.0f));
  p = at::vec::fmadd(p, r, V(1.0f));
  // (n + 127) * 2^23 is exact in float and, converted to an integer, is the bit pattern of 2^n.
  const V biased = at::vec::fmadd(n, V(8388608.0f), V(1065353216.0f));
  return p * at::vec::cast<float>(at::vec::convert_to_int_of_same_size(biased));
}

// Lane-wise maximum without NaN bookkeeping (a NaN in a row reaches the sums through exp anyway).
template <typename T>
inline Vec<T> vmax(const Vec<T>& x, const Vec<T>& y) {
  return at::vec::clamp_min(x, y);
}

template <typename T>
inline T hmax(const Vec<T>& v) {
  return at::vec::vec_reduce_all<T>([](const Vec<T>& x, const Vec<T>& y) { return vmax<T>(x, y); }, v);
}

template <typename T>
inline T hsum(const Vec<T>& v) {
  return at::vec::vec_reduce_all<T>([](const Vec<T>& x, const Vec<T>& y) { return x + y; }, v);
}

// The lanes of a row's last, partial vector that lie inside the row: the same for every row.
template <typename T>
inline Vec<T> tail_mask(int64_t count) {
  return Vec<T>::arange(T(0), T(1)) < Vec<T>(static_cast<T>(count));
}

// keep ? x : fill, lane by lane.
template <typename T>
inline Vec<T> keep_or(const Vec<T>& x, const Vec<T>& keep, const Vec<T>& fill) {
  return Vec<T>::blendv(fill, x, keep);
}

// The first `count` (< vector width) values at p in the lanes that `keep`, `fill` in the others.
// `whole`: a full vector may be read at p (the memory past the row belongs to the tensor).
template <typename T>
inline Vec<T> load_part(const T* p, int64_t count, bool whole, const Vec<T>& keep, const Vec<T>& fill) {
  return keep_or<T>(whole ? Vec<T>::loadu(p) : Vec<T>::loadu(p, count), keep, fill);
}

// Writes the first `count` lanes of x to p (all of them when `whole`: the rest is overwritten later).
template <typename T>
inline void store_part(const Vec<T>& x, T* p, int64_t count, bool whole) {
  if (whole) {
    x.store(p);
  } else {
    x.store(p, count);
  }
}

// One row's forward statistics, before the logarithms (taken for a group of rows at once).
template <typename T>
struct RowSums {
  T ms, mz, Ss, Sz, A;
};

template <typename T>
RowSums<T> row_sums(const ForwardRows<T>& a, int64_t v, T* sb, const Vec<T>& keep) {
  constexpr int64_t W = Vec<T>::size();
  const int64_t C = a.cols, total = a.rows * a.cols;
  const Vec<T> neg_inf(-std::numeric_limits<T>::infinity()), zero(T(0));
  const T* t = a.t + v * C;
  const T* z = a.z + v * C;
  const Vec<T> inv_tau(T(1) / a.tau[v]);
  RowSums<T> r{-std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity(), 0, 0, 0};
  for (int64_t c0 = 0; c0 < C; c0 += kForwardChunk) {
    const int64_t len = C - c0 < kForwardChunk ? C - c0 : kForwardChunk;
    const int64_t rest = len % W, full = len - rest;
    const bool whole = v * C + c0 + full + W <= total;
    Vec<T> vms = neg_inf, vmz = neg_inf;
    for (int64_t c = 0; c < full; c += W) {
      const Vec<T> s = Vec<T>::loadu(t + c0 + c) * inv_tau;
      s.store(sb + c);
      vms = vmax<T>(vms, s);
      vmz = vmax<T>(vmz, Vec<T>::loadu(z + c0 + c));
    }
    if (rest) {
      const Vec<T> s = keep_or<T>(load_part(t + c0 + full, rest, whole, keep, zero) * inv_tau, keep, neg_inf);
      s.store(sb + full);
      vms = vmax<T>(vms, s);
      vmz = vmax<T>(vmz, load_part(z + c0 + full, rest, whole, keep, neg_inf));
    }
    const T cms = hmax(vms), cmz = hmax(vmz);
    if (c0 == 0) {
      r.ms = cms;
      r.mz = cmz;
    } else {
      if (cmz > r.mz) { // re-centre A and Sz on the new student maximum
        r.A -= (cmz - r.mz) * r.Ss;
        r.Sz *= std::exp(r.mz - cmz);
        r.mz = cmz;
      }
      if (cms > r.ms) { // rescale the teacher sums to the new teacher maximum
        const T f = std::exp(r.ms - cms);
        r.Ss *= f;
        r.A *= f;
        r.ms = cms;
      }
    }
    const Vec<T> vs(r.ms), vz(r.mz);
    Vec<T> es = zero, ez = zero, ea = zero;
    for (int64_t c = 0; c < full; c += W) {
      const Vec<T> e = exp_nonpos<T>(Vec<T>::loadu(sb + c) - vs);
      const Vec<T> d = Vec<T>::loadu(z + c0 + c) - vz;
      es = es + e;
      ea = at::vec::fmadd(e, d, ea);
      ez = ez + exp_nonpos<T>(d);
    }
    if (rest) {
      const Vec<T> e = exp_nonpos<T>(Vec<T>::loadu(sb + full) - vs); // s = -inf past the row
      const Vec<T> d = keep_or<T>(load_part(z + c0 + full, rest, whole, keep, zero) - vz, keep, zero);
      es = es + keep_or<T>(e, keep, zero);
      ea = at::vec::fmadd(e, d, ea);
      ez = ez + keep_or<T>(exp_nonpos<T>(d), keep, zero);
    }
    r.Ss += hsum(es);
    r.Sz += hsum(ez);
    r.A += hsum(ea);
  }
  return r;
}

// Rows are taken in groups of kGroup: the row statistics go to small arrays, and the logarithms
// and the losses of the whole group are then formed a vector at a time.
constexpr int64_t kGroup = 64;

template <typename T, typename RowFn>
void forward_groups(const ForwardRows<T>& a, int64_t begin, int64_t end, const RowFn& row) {
  constexpr int64_t W = Vec<T>::size();
  T ms[kGroup], mz[kGroup], Ss[kGroup], Sz[kGroup], A[kGroup], w[kGroup];
  for (int64_t g0 = begin; g0 < end; g0 += kGroup) {
    const int64_t n = end - g0 < kGroup ? end - g0 : kGroup;
    for (int64_t i = 0; i < n; ++i) {
      const RowSums<T> r = row(g0 + i);
      ms[i] = r.ms;
      mz[i] = r.mz;
      Ss[i] = r.Ss;
      Sz[i] = r.Sz;
      A[i] = r.A;
      w[i] = a.w == nullptr ? T(1) : a.w[g0 + i];
    }
    for (int64_t i = 0; i < n; i += W) {
      const int64_t m = n - i < W ? n - i : W;
      const Vec<T> ss = Vec<T>::loadu(Ss + i, m), log_sz = Vec<T>::loadu(Sz + i, m).log();
      (Vec<T>::loadu(ms + i, m) + ss.log()).store(a.lse_s + g0 + i, m);
      (Vec<T>::loadu(mz + i, m) + log_sz).store(a.lse_z + g0 + i, m);
      (Vec<T>::loadu(w + i, m) * (log_sz - Vec<T>::loadu(A + i, m) / ss)).store(a.loss + g0 + i, m);
    }
  }
}

#include "cpu/rows_short.h"

// Calls f(std::integral_constant<int, NV>) for a row of `vectors` <= kMaxShortVectors SIMD vectors.
template <typename F>
void with_short_rows(int64_t vectors, const F& f) {
  switch (vectors) {
    case 1:
      return f(std::integral_constant<int, 1>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 3:
      return f(std::integral_constant<int, 3>{});
    default:
      return f(std::integral_constant<int, 4>{});
  }
}

template <typename T>
void forward_rows_impl(const ForwardRows<T>& a, int64_t begin, int64_t end, T* sb) {
  constexpr int64_t W = Vec<T>::size();
  const int64_t vectors = (a.cols + W - 1) / W;
  if (vectors <= kMaxShortVectors) {
    const Vec<T> keep = tail_mask<T>(a.cols - (vectors - 1) * W);
    with_short_rows(vectors, [&](auto nv) {
      forward_groups(a, begin, end, [&](int64_t v) { return row_sums_short<T, decltype(nv)::value>(a, v, keep); });
    });
    return;
  }
  const Vec<T> keep = tail_mask<T>(a.cols % W); // every chunk but a row's last is whole vectors
  forward_groups(a, begin, end, [&](int64_t v) { return row_sums(a, v, sb, keep); });
}

template <typename T>
void backward_row(const BackwardRows<T>& a, int64_t v, T* pb, const Vec<T>& keep, int64_t limit) {
  constexpr int64_t W = Vec<T>::size();
  const int64_t C = a.cols, total = a.rows * a.cols;
  const int64_t rest = C % W, full = C - rest;
  const Vec<T> zero(T(0));
  {
    const T* t = a.t + v * C;
    const T* z = a.z + v * C;
    T* dz = a.dz + v * C;
    const T tau_v = a.tau[v], inv_tau_v = T(1) / tau_v;
    const T coef_v = a.g[v * a.g_stride] * (a.w == nullptr ? T(1) : a.w[v]);
    const Vec<T> inv_tau(inv_tau_v), ls(a.lse_s[v]), lz(a.lse_z[v]), coef(coef_v);
    const bool whole_read = v * C + full + W <= total;
    const bool whole_write = v * C + full + W <= limit;
    Vec<T> apt = zero, apz = zero;
    for (int64_t c = 0; c < full; c += W) {
      const Vec<T> tv = Vec<T>::loadu(t + c), zv = Vec<T>::loadu(z + c);
      const Vec<T> p = exp_nonpos<T>(tv * inv_tau - ls);
      p.store(pb + c);
      (coef * (exp_nonpos<T>(zv - lz) - p)).store(dz + c);
      apt = at::vec::fmadd(p, tv, apt);
      apz = at::vec::fmadd(p, zv, apz);
    }
    if (rest) {
      const Vec<T> tv = load_part(t + full, rest, whole_read, keep, zero);
      const Vec<T> zv = load_part(z + full, rest, whole_read, keep, zero);
      const Vec<T> p = keep_or<T>(exp_nonpos<T>(tv * inv_tau - ls), keep, zero);
      p.store(pb + full);
      store_part(coef * (exp_nonpos<T>(zv - lz) - p), dz + full, rest, whole_write);
      apt = at::vec::fmadd(p, tv, apt);
      apz = at::vec::fmadd(p, zv, apz);
    }
    const Vec<T> pt(hsum(apt)), pz(hsum(apz));
    Vec<T> cov = zero;
    for (int64_t c = 0; c < full; c += W) {
      cov = at::vec::fmadd(Vec<T>::loadu(pb + c) * (Vec<T>::loadu(t + c) - pt), Vec<T>::loadu(z + c) - pz, cov);
    }
    if (rest) {
      const Vec<T> tv = load_part(t + full, rest, whole_read, keep, zero);
      const Vec<T> zv = load_part(z + full, rest, whole_read, keep, zero);
      cov = at::vec::fmadd(Vec<T>::loadu(pb + full) * (tv - pt), zv - pz, cov);
    }
    a.dtau[v] = coef_v * hsum(cov) * inv_tau_v * inv_tau_v;
    if (a.dt != nullptr) {
      T* dt = a.dt + v * C;
      const Vec<T> k(-coef_v * inv_tau_v);
      for (int64_t c = 0; c < full; c += W) {
        (k * Vec<T>::loadu(pb + c) * (Vec<T>::loadu(z + c) - pz)).store(dt + c);
      }
      if (rest) {
        const Vec<T> zv = load_part(z + full, rest, whole_read, keep, zero);
        store_part(k * Vec<T>::loadu(pb + full) * (zv - pz), dt + full, rest, whole_write);
      }
    }
  }
}

// `limit`: the end of this call's rows in elements; whole-vector stores may spill up to it.
template <typename T>
void backward_rows_impl(const BackwardRows<T>& a, int64_t begin, int64_t end, T* pb) {
  constexpr int64_t W = Vec<T>::size();
  const int64_t vectors = (a.cols + W - 1) / W, limit = end * a.cols;
  if (vectors <= kMaxShortVectors) {
    const Vec<T> keep = tail_mask<T>(a.cols - (vectors - 1) * W);
    with_short_rows(vectors, [&](auto nv) {
      for (int64_t v = begin; v < end; ++v) {
        backward_row_short<T, decltype(nv)::value>(a, v, keep, limit);
      }
    });
    return;
  }
  const Vec<T> keep = tail_mask<T>(a.cols % W);
  for (int64_t v = begin; v < end; ++v) {
    backward_row(a, v, pb, keep, limit);
  }
}

} // namespace

void forward_rows(const ForwardRows<float>& a, int64_t begin, int64_t end, float* scratch) {
  forward_rows_impl<float>(a, begin, end, scratch);
}
void forward_rows(const ForwardRows<double>& a, int64_t begin, int64_t end, double* scratch) {
  forward_rows_impl<double>(a, begin, end, scratch);
}
void backward_rows(const BackwardRows<float>& a, int64_t begin, int64_t end, float* scratch) {
  backward_rows_impl<float>(a, begin, end, scratch);
}
void backward_rows(const BackwardRows<double>& a, int64_t begin, int64_t end, double* scratch) {
  backward_rows_impl<double>(a, begin, end, scratch);
}
const char* name() {
  return DGL_LTD_ISA_NAME;
}

} // namespace DGL_LTD_ISA
} // namespace cpu
} // namespace ops
} // namespace dgl_ltd
