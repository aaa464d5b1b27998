// Meta (shape-only) kernels, so that FakeTensor, torch.compile and AOT tracing can see through the
// fused operators. Symbolic sizes (sym_size / empty_symint) keep dynamic-shape tracing working.
#include "tempered_kd.h"

#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <tuple>

namespace dgl_ltd {
namespace ops {
namespace {

void check_meta(const at::Tensor& teacher, const at::Tensor& tau, const at::Tensor& student) {
  TORCH_CHECK(student.dim() == 2 && teacher.dim() == 2, "tempered_kd: logits must be 2-D (N, C)");
  TORCH_CHECK(tau.dim() == 1, "tempered_kd: tau must have shape (N,)");
  TORCH_CHECK(
      teacher.scalar_type() == student.scalar_type() && tau.scalar_type() == student.scalar_type(),
      "tempered_kd: teacher, tau and student must share a dtype");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> tempered_kd_forward_meta(
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const at::Tensor& weight) {
  check_meta(teacher, tau, student);
  const c10::SymInt n = student.sym_size(0);
  return {
      at::empty_symint({n}, student.options()),
      at::empty_symint({n}, student.options()),
      at::empty_symint({n}, student.options())};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> tempered_kd_backward_meta(
    const at::Tensor& grad_rows,
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const at::Tensor& weight,
    const at::Tensor& lse_s,
    const at::Tensor& lse_z,
    bool need_teacher) {
  check_meta(teacher, tau, student);
  at::Tensor grad_teacher = need_teacher ? at::empty_symint(student.sym_sizes(), student.options())
                                         : at::empty({0}, student.options());
  return {
      grad_teacher,
      at::empty_symint({student.sym_size(0)}, student.options()),
      at::empty_symint(student.sym_sizes(), student.options())};
}

} // namespace

TORCH_LIBRARY_IMPL(dgl_ltd, Meta, m) {
  m.impl("tempered_kd_forward", &tempered_kd_forward_meta);
  m.impl("tempered_kd_backward", &tempered_kd_backward_meta);
}

} // namespace ops
} // namespace dgl_ltd
