// Operator schemas, the input checks every backend shares, and the module's Python entry point.
//
// Loading ``dgl_ltd._C`` runs the static registrations of every file in csrc/, after which
//   torch.ops.dgl_ltd.tempered_kd_loss(teacher, tau, student, weight=None) -> loss_rows   (public)
//   torch.ops.dgl_ltd.tempered_kd_forward / tempered_kd_backward   (the fused kernels it runs)
//   torch.ops.dgl_ltd.built_with_cuda() -> bool, torch.ops.dgl_ltd.cpu_kernel_isa() -> str
// are reachable. The kernels of each backend are registered in their own file (cpu/, cuda/,
// meta/); the public operator's gradient is registered at the Autograd key (autograd/).
#include "tempered_kd.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <Python.h>

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

// The public operator below autograd (inference mode, or tracing that runs under the Autograd
// key): the per-row losses of the fused forward, on whichever backend holds the tensors.
at::Tensor tempered_kd_loss_rows(
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const c10::optional<at::Tensor>& weight) {
  static auto forward = c10::Dispatcher::singleton()
                            .findSchemaOrThrow("dgl_ltd::tempered_kd_forward", "")
                            .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                                const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  const at::Tensor w = weight.has_value() ? *weight : at::empty({0}, student.options());
  return std::get<0>(forward.call(teacher, tau, student, w));
}

// True when the CUDA backend file was compiled in: it then registered the forward at the CUDA key.
bool built_with_cuda() {
  return c10::Dispatcher::singleton()
      .findSchemaOrThrow("dgl_ltd::tempered_kd_forward", "")
      .hasKernelForDispatchKey(c10::DispatchKey::CUDA);
}

} // namespace

TORCH_LIBRARY(dgl_ltd, m) {
  m.def(
      "tempered_kd_loss(Tensor teacher, Tensor tau, Tensor student, Tensor? weight=None) "
      "-> Tensor loss_rows");
  m.def(
      "tempered_kd_forward(Tensor teacher, Tensor tau, Tensor student, Tensor weight) "
      "-> (Tensor loss_rows, Tensor lse_s, Tensor lse_z)");
  m.def(
      "tempered_kd_backward(Tensor grad_rows, Tensor teacher, Tensor tau, Tensor student, "
      "Tensor weight, Tensor lse_s, Tensor lse_z, bool need_teacher) "
      "-> (Tensor grad_teacher, Tensor grad_tau, Tensor grad_student)");
  m.def("built_with_cuda() -> bool", &built_with_cuda);
  // Which compiled row loops the CPU kernels run ("avx512", "avx2" or "default"); cpu/ implements it.
  m.def("cpu_kernel_isa() -> str");
}

TORCH_LIBRARY_IMPL(dgl_ltd, CompositeExplicitAutograd, m) {
  m.impl("tempered_kd_loss", &tempered_kd_loss_rows);
}

} // namespace ops
} // namespace dgl_ltd

// An importable, empty Python module: `import dgl_ltd._C` loads the library and so runs the
// registrations above; everything is then reached through torch.ops.dgl_ltd.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", "dgl_ltd compiled kernels; the operators live in torch.ops.dgl_ltd", -1, nullptr};
  return PyModule_Create(&module_def);
}
