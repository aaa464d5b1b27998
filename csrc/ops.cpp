// Operator schemas, shared input checks, Meta (shape-only) kernels and the Python module.
//
// Importing ``dgl_ltd._C`` runs the static registrations below, after which the operators are
// reachable as ``torch.ops.dgl_ltd.tempered_kd_forward`` / ``tempered_kd_backward``.
// Autograd is wired once, in Python (``dgl_ltd.ops``), through a torch.autograd.Function.
#include "tempered_kd.h"

#include <torch/extension.h>
#include <torch/library.h>

namespace dgl_ltd {
namespace ops {

namespace {

void check_rows(const at::Tensor& x, const at::Tensor& ref, int64_t n, const char* name) {
  TORCH_CHECK(
      x.dim() == 1 && x.size(0) == n,
      "tempered_kd: ", name, " must have shape (N,) = (", n, ",), got ", x.sizes());
  TORCH_CHECK(
      x.scalar_type() == ref.scalar_type(),
      "tempered_kd: ", name, " must have dtype ", ref.scalar_type(), ", got ", x.scalar_type());
  TORCH_CHECK(
      x.device() == ref.device(),
      "tempered_kd: ", name, " must be on device ", ref.device(), ", got ", x.device());
}

} // namespace

void check_forward_inputs(
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const at::Tensor& weight) {
  TORCH_CHECK(
      student.dim() == 2,
      "tempered_kd: student logits must be 2-D (N, C), got shape ", student.sizes());
  TORCH_CHECK(
      student.size(1) >= 1, "tempered_kd: need at least one class (C >= 1), got shape ", student.sizes());
  TORCH_CHECK(
      teacher.sizes() == student.sizes(),
      "tempered_kd: teacher and student logits must have the same shape (N, C), got ",
      teacher.sizes(), " and ", student.sizes());
  TORCH_CHECK(
      student.scalar_type() == at::kFloat || student.scalar_type() == at::kDouble,
      "tempered_kd: only float32 and float64 are supported, got ", student.scalar_type());
  TORCH_CHECK(
      teacher.scalar_type() == student.scalar_type(),
      "tempered_kd: teacher dtype ", teacher.scalar_type(), " differs from student dtype ",
      student.scalar_type());
  TORCH_CHECK(
      teacher.device() == student.device(),
      "tempered_kd: teacher is on ", teacher.device(), " but student is on ", student.device());
  const int64_t n = student.size(0);
  check_rows(tau, student, n, "tau");
  // An empty weight means "all ones" (saves an allocation and a read per row).
  check_rows(weight, student, weight.numel() == 0 ? 0 : n, "weight");
}

void check_backward_inputs(
    const at::Tensor& grad_rows,
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const at::Tensor& weight,
    const at::Tensor& lse_s,
    const at::Tensor& lse_z) {
  check_forward_inputs(teacher, tau, student, weight);
  const int64_t n = student.size(0);
  check_rows(grad_rows, student, n, "grad_rows");
  check_rows(lse_s, student, n, "lse_s");
  check_rows(lse_z, student, n, "lse_z");
}

namespace {

// Shape-only kernels so that FakeTensor / torch.compile tracing can see through the ops. They
// use symbolic sizes (sym_size / empty_symint) so that dynamic-shape tracing works too.
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

TORCH_LIBRARY(dgl_ltd, m) {
  m.def(
      "tempered_kd_forward(Tensor teacher, Tensor tau, Tensor student, Tensor weight) "
      "-> (Tensor loss_rows, Tensor lse_s, Tensor lse_z)");
  m.def(
      "tempered_kd_backward(Tensor grad_rows, Tensor teacher, Tensor tau, Tensor student, "
      "Tensor weight, Tensor lse_s, Tensor lse_z, bool need_teacher) "
      "-> (Tensor grad_teacher, Tensor grad_tau, Tensor grad_student)");
}

TORCH_LIBRARY_IMPL(dgl_ltd, CPU, m) {
  m.impl("tempered_kd_forward", &tempered_kd_forward_cpu);
  m.impl("tempered_kd_backward", &tempered_kd_backward_cpu);
}

TORCH_LIBRARY_IMPL(dgl_ltd, Meta, m) {
  m.impl("tempered_kd_forward", &tempered_kd_forward_meta);
  m.impl("tempered_kd_backward", &tempered_kd_backward_meta);
}

#ifdef WITH_CUDA
TORCH_LIBRARY_IMPL(dgl_ltd, CUDA, m) {
  m.impl("tempered_kd_forward", &tempered_kd_forward_cuda);
  m.impl("tempered_kd_backward", &tempered_kd_backward_cuda);
}
#endif

bool built_with_cuda() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}

} // namespace ops
} // namespace dgl_ltd

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "dgl_ltd compiled kernels; the operators live in torch.ops.dgl_ltd";
  m.def(
      "built_with_cuda",
      &dgl_ltd::ops::built_with_cuda,
      "Whether the CUDA kernels were compiled into this module.");
}
