// Per-node tempered-softmax knowledge-distillation loss (fused forward / backward).
//
// For row v with teacher logits t_v (C), temperature tau_v, student logits z_v (C), weight w_v:
//   p_v = softmax(t_v / tau_v),  l_v = w_v * (logsumexp(z_v) - <p_v, z_v>).
// The forward returns the per-row losses and two O(N) statistics,
//   lse_s_v = logsumexp(t_v / tau_v),  lse_z_v = logsumexp(z_v),
// from which the backward recomputes p_v and softmax(z_v) row by row (no N x C buffer is saved).
//
// Layout (as in torchvision / pyg-lib): ops.cpp defines the schemas and the shared checks below;
// cpu/, cuda/ and meta/ each register their own dispatch key for the two internal operators;
// autograd/ registers the public operator's Autograd kernel.
#pragma once

#include <ATen/core/Tensor.h>

namespace dgl_ltd {
namespace ops {

// Conventions: all tensors share dtype (float32 or float64) and device; tau, weight, grad_rows,
// lse_s and lse_z have shape (N,). An empty weight (shape (0,)) means all ones; grad_rows may be
// a stride-0 expansion of one value.
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

} // namespace ops
} // namespace dgl_ltd
