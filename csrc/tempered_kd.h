// Per-node tempered-softmax knowledge-distillation loss (fused forward / backward).
//
// For row v with teacher logits t_v (C), temperature tau_v, student logits z_v (C), weight w_v:
//   p_v = softmax(t_v / tau_v),  l_v = w_v * (logsumexp(z_v) - <p_v, z_v>).
// The forward returns the per-row losses and two O(N) statistics,
//   lse_s_v = logsumexp(t_v / tau_v),  lse_z_v = logsumexp(z_v),
// from which the backward recomputes p_v and softmax(z_v) row by row (no N x C buffer is saved).
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace dgl_ltd {
namespace ops {

// Conventions: all tensors share dtype (float32 or float64) and device; tau, weight, grad_rows,
// lse_s and lse_z have shape (N,). An empty weight (shape (0,)) means all ones; grad_rows may be
// a stride-0 expansion of one value.
//
// Shape / dtype / device checks shared by every backend (defined in ops.cpp).
void check_forward_inputs(
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const at::Tensor& weight);

void check_backward_inputs(
    const at::Tensor& grad_rows,
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const at::Tensor& weight,
    const at::Tensor& lse_s,
    const at::Tensor& lse_z);

// Returns (loss_rows, lse_s, lse_z), each of shape (N,).
std::tuple<at::Tensor, at::Tensor, at::Tensor> tempered_kd_forward_cpu(
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const at::Tensor& weight);

// Returns (grad_teacher, grad_tau, grad_student); grad_teacher has shape (0,) unless need_teacher.
std::tuple<at::Tensor, at::Tensor, at::Tensor> tempered_kd_backward_cpu(
    const at::Tensor& grad_rows,
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const at::Tensor& weight,
    const at::Tensor& lse_s,
    const at::Tensor& lse_z,
    bool need_teacher);

#ifdef WITH_CUDA
std::tuple<at::Tensor, at::Tensor, at::Tensor> tempered_kd_forward_cuda(
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const at::Tensor& weight);

std::tuple<at::Tensor, at::Tensor, at::Tensor> tempered_kd_backward_cuda(
    const at::Tensor& grad_rows,
    const at::Tensor& teacher,
    const at::Tensor& tau,
    const at::Tensor& student,
    const at::Tensor& weight,
    const at::Tensor& lse_s,
    const at::Tensor& lse_z,
    bool need_teacher);
#endif

} // namespace ops
} // namespace dgl_ltd
