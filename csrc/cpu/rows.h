// Row-kernel interface between the CPU operator (tempered_kd_cpu.cpp, compiled for the baseline
// ISA) and the row loops (isa/rows_*.cpp, each compiled once per instruction set). Plain pointers
// only, so that the ISA-specific files need no tensor code.
#pragma once

#include <cstdint>

namespace dgl_ltd {
namespace ops {
namespace cpu {

template <typename T>
struct ForwardRows {
  const T* t;
  const T* tau;
  const T* z;
  const T* w; // nullptr: all ones
  T* loss;
  T* lse_s;
  T* lse_z;
  int64_t rows;
  int64_t cols;
};

template <typename T>
struct BackwardRows {
  const T* g;
  int64_t g_stride; // 0 when the incoming gradient is one value expanded over the rows
  const T* t;
  const T* tau;
  const T* z;
  const T* w; // nullptr: all ones
  const T* lse_s;
  const T* lse_z;
  T* dt; // nullptr unless the teacher needs a gradient
  T* dtau;
  T* dz;
  int64_t rows;
  int64_t cols;
};

// Columns of a row handled per online-softmax step in the forward (a chunk stays in L1).
constexpr int64_t kForwardChunk = 512;

// Elements of scratch the row loops need per thread (64 covers the widest SIMD vector of doubles
// or floats, with room to round up): the forward keeps t / tau of one chunk, the backward the
// softmax p of one whole row.
inline int64_t forward_scratch(int64_t cols) {
  return (cols < kForwardChunk ? cols : kForwardChunk) + 64;
}
inline int64_t backward_scratch(int64_t cols) {
  return cols + 64;
}

// Rows [begin, end) of one call; the caller hands each thread its own scratch.
#define DGL_LTD_DECLARE_ROW_KERNELS(ISA)                                                          \
  namespace ISA {                                                                                 \
  void forward_rows(const ForwardRows<float>& a, int64_t begin, int64_t end, float* scratch);     \
  void forward_rows(const ForwardRows<double>& a, int64_t begin, int64_t end, double* scratch);   \
  void backward_rows(const BackwardRows<float>& a, int64_t begin, int64_t end, float* scratch);   \
  void backward_rows(const BackwardRows<double>& a, int64_t begin, int64_t end, double* scratch); \
  const char* name();                                                                             \
  }

DGL_LTD_DECLARE_ROW_KERNELS(DEFAULT)
DGL_LTD_DECLARE_ROW_KERNELS(AVX2)
DGL_LTD_DECLARE_ROW_KERNELS(AVX512)

} // namespace cpu
} // namespace ops
} // namespace dgl_ltd
