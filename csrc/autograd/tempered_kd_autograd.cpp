// Autograd for the public operator dgl_ltd::tempered_kd_loss, registered at the Autograd key, so
// that the operator itself is differentiable (w.r.t. teacher, tau and student; never the weight).
//
// The forward runs the fused forward kernel and saves only the inputs and two log-sum-exps per row;
// the backward runs the fused backward kernel. The backward is differentiable once: the internal
// operators carry torch's "not implemented" autograd kernel, so asking for a second derivative
// raises instead of returning a wrong one (dgl_ltd.ops routes double_backward=True to the eager
// expression).
#include "tempered_kd.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <tuple>

namespace dgl_ltd {
namespace ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Triple = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

Triple call_forward(const at::Tensor& t, const at::Tensor& tau, const at::Tensor& z, const at::Tensor& w) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("dgl_ltd::tempered_kd_forward", "")
                       .typed<Triple(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  return op.call(t, tau, z, w);
}

Triple call_backward(
    const at::Tensor& g,
    const at::Tensor& t,
    const at::Tensor& tau,
    const at::Tensor& z,
    const at::Tensor& w,
    const at::Tensor& lse_s,
    const at::Tensor& lse_z,
    bool need_teacher) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("dgl_ltd::tempered_kd_backward", "")
                       .typed<Triple(
                           const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                           const at::Tensor&, const at::Tensor&, const at::Tensor&, bool)>();
  return op.call(g, t, tau, z, w, lse_s, lse_z, need_teacher);
}

class TemperedKDFunction : public torch::autograd::Function<TemperedKDFunction> {
 public:
  static at::Tensor forward(
      AutogradContext* ctx,
      const at::Tensor& teacher,
      const at::Tensor& tau,
      const at::Tensor& student,
      const c10::optional<at::Tensor>& weight) {
    // An empty weight tells the kernels "all ones"; the weight gets no gradient.
    const at::Tensor w = weight.has_value() ? weight->detach() : at::empty({0}, student.options());
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto [rows, lse_s, lse_z] = call_forward(teacher, tau, student, w);
    ctx->save_for_backward({teacher, tau, student, w, lse_s, lse_z});
    return rows;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const bool need_teacher = ctx->needs_input_grad(0);
    auto [d_teacher, d_tau, d_student] =
        call_backward(grad_outputs[0], saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], need_teacher);
    return {
        need_teacher ? d_teacher : at::Tensor(),
        ctx->needs_input_grad(1) ? d_tau : at::Tensor(),
        ctx->needs_input_grad(2) ? d_student : at::Tensor(),
        at::Tensor()};
  }
};

at::Tensor tempered_kd_loss_autograd(
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const c10::optional<at::Tensor>& weight) {
  return TemperedKDFunction::apply(teacher, tau, student, weight);
}

} // namespace

TORCH_LIBRARY_IMPL(dgl_ltd, Autograd, m) {
  m.impl("tempered_kd_loss", &tempered_kd_loss_autograd);
  m.impl("tempered_kd_forward", torch::autograd::autogradNotImplementedFallback());
  m.impl("tempered_kd_backward", torch::autograd::autogradNotImplementedFallback());
}

} // namespace ops
} // namespace dgl_ltd
