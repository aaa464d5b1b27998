r"""The temperature meta-gradient, without second-order differentiation.

One distillation step moves the student from theta to ``theta' = theta + Delta(g)``, where ``g`` is the
gradient of the distillation loss (which depends on the temperatures tau) and ``Delta`` is the
optimiser's update. The temperatures are learned to lower ``L_eval(theta')``:

.. math::
    \frac{\partial L_{eval}(\theta')}{\partial \tau_v}
      = \Big\langle g',\; D \odot \frac{\partial g}{\partial \tau_v} \Big\rangle
      = \Big\langle J_v (D \odot g'),\; \frac{\partial}{\partial \tau_v}
        \frac{\partial l_v}{\partial z_v} \Big\rangle

with ``g' = grad L_eval(theta')``, ``J_v`` the Jacobian of node v's student logits at theta (with the
distillation step's dropout masks) and ``D = dDelta/dg`` the optimiser's step Jacobian, which is
diagonal for SGD (``-lr``) and Adam (closed form below). ``J_v u`` is a central difference of two
forward passes at ``theta +- eps*u`` under the same dropout masks, so nothing is differentiated twice:
the result is right for every student, including GAT, whose DGL 2.1 ``edge_softmax`` has a wrong
double backward. The per-node values are then back-propagated through the temperature network.
"""
from __future__ import annotations

import math

import torch
from torch.func import functional_call

from .dropout_tape import DropoutTape, TapeMismatch
from .errors import UserInputError


def capture_rng(device: torch.device) -> tuple:
    """The RNG state that decides the next dropout masks (CPU, plus the current CUDA device)."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda, device


def same_rng(a: tuple, b: tuple) -> bool:
    """Whether two :func:`capture_rng` states are equal (nothing was drawn between them)."""
    return torch.equal(a[0], b[0]) and (a[1] is None) == (b[1] is None) and (a[1] is None or torch.equal(a[1], b[1]))


def restore_rng(state: tuple) -> None:
    cpu, cuda, device = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)


def step_jacobian(optimizer: torch.optim.Optimizer, params: list, old_params: list) -> list:
    r"""Diagonal ``-dDelta/dg`` of the step ``optimizer`` has just taken, one tensor per parameter.

    Call right after ``optimizer.step()``, with ``p.grad`` still holding the gradient of the step
    and ``old_params`` the parameter values before it. Supported: ``SGD`` (any momentum without
    dampening, no Nesterov) and ``Adam`` (no AMSGrad), whose update per element is
    ``-lr/bc1 * m/(sqrt(v)/sqrt(bc2) + eps)`` with ``m = b1*m0 + (1-b1)*g`` and
    ``v = b2*v0 + (1-b2)*g^2``, so that
    ``-dDelta/dg = lr/bc1 * ((1-b1)/den - m*(1-b2)*g / (den^2 * sqrt(bc2) * sqrt(v)))``.
    """
    index = {id(p): i for i, p in enumerate(params)}
    out = [None] * len(params)
    for group in optimizer.param_groups:
        lr = group["lr"]
        for p in group["params"]:
            if id(p) not in index or p.grad is None:
                continue
            i = index[id(p)]
            if isinstance(optimizer, torch.optim.Adam):
                if group.get("amsgrad") or group.get("maximize"):
                    raise UserInputError("the meta-gradient supports Adam without amsgrad/maximize; turn them off")
                b1, b2 = group["betas"]
                eps = group["eps"]
                state = optimizer.state[p]
                step = float(state["step"])
                bc1, bc2 = 1 - b1**step, 1 - b2**step
                m, v = state["exp_avg"], state["exp_avg_sq"]
                g = p.grad + group["weight_decay"] * old_params[i] if group["weight_decay"] else p.grad
                sqrt_v = v.sqrt()
                den = sqrt_v / math.sqrt(bc2) + eps
                second = torch.where(sqrt_v > 0, m * (1 - b2) * g / (den.square() * math.sqrt(bc2) * sqrt_v.clamp_min(1e-30)),
                                     torch.zeros_like(m))
                out[i] = (lr / bc1) * ((1 - b1) / den - second)
            elif isinstance(optimizer, torch.optim.SGD):
                if group.get("nesterov") or group.get("maximize") or (group.get("momentum") and group.get("dampening")):
                    # with dampening, the first step's slope (lr) differs from the later ones' (lr * (1 - dampening))
                    raise UserInputError("the meta-gradient supports SGD without nesterov/maximize/dampening; "
                                         "turn them off")
                out[i] = torch.full_like(p, lr)
            else:
                raise UserInputError(
                    f"the meta-gradient supports torch.optim.SGD and Adam, got {type(optimizer).__name__}; use one of them"
                )
    return [torch.zeros_like(p) if d is None else d for p, d in zip(params, out)]


def directional_logits(student, names: list, old_params: list, direction: list, rng: tuple, *inputs,
                       rel_eps: float = 1e-3, tape: DropoutTape | None = None) -> torch.Tensor:
    """``J u``: derivative of ``student(*inputs)`` at ``old_params`` along ``direction`` (central difference).

    Both forwards use the dropout masks of the distillation forward: the masks recorded on ``tape``
    when one is given (nothing is drawn), else those drawn again from the random state ``rng``. A
    replay that would draw random numbers of its own (a random op other than
    ``torch.nn.functional.dropout``) or meets other dropout calls than the recorded ones falls back
    to drawing from ``rng``. Each forward runs on copies of the module's buffers, so that train-mode
    layers such as BatchNorm neither see nor keep the other forward's running statistics. The global
    random state is left as it was on entry, so the replay does not hand later draws random numbers
    that were already used. The step is ``rel_eps * ||theta|| / ||u||``.
    """
    u_norm = torch.sqrt(sum((d.double() ** 2).sum() for d in direction))
    if float(u_norm) == 0.0:
        return None
    theta_norm = torch.sqrt(sum((p.double() ** 2).sum() for p in old_params))
    eps = float(rel_eps * max(float(theta_norm), 1.0) / float(u_norm))
    entry = capture_rng(rng[2])

    def forward(sign: float) -> torch.Tensor:
        restore_rng(rng)
        shifted = {n: p + sign * eps * d for n, p, d in zip(names, old_params, direction)}
        shifted.update((n, b.clone()) for n, b in student.named_buffers())
        return functional_call(student, shifted, inputs)

    with torch.no_grad():
        outs = _replayed(forward, tape, rng) if tape is not None else None
        if outs is None:
            outs = [forward(sign) for sign in (1.0, -1.0)]
    restore_rng(entry)
    return (outs[0] - outs[1]) / (2.0 * eps)


def _replayed(forward, tape: DropoutTape, rng: tuple) -> list | None:
    """Both forwards under ``tape``'s masks, or None when the replay drew random numbers or did not match."""
    outs = []
    for sign in (1.0, -1.0):
        try:
            with tape.replaying():
                outs.append(forward(sign))
        except TapeMismatch:
            return None
        if not same_rng(capture_rng(rng[2]), rng):
            return None
    return outs


def temperature_meta_gradient(jvp_logits: torch.Tensor | None, sensitivity: torch.Tensor,
                              center: bool = False) -> torch.Tensor:
    """Per-node ``dL_eval(theta')/dtau_v = -<J_v(D g'), d(dl_v/dz_v)/dtau_v>`` (shape N).

    ``center=True`` subtracts the mean over nodes: the component that would move every temperature
    the same way is dropped and only the node-specific part is kept.
    """
    if jvp_logits is None:
        return torch.zeros(sensitivity.shape[0], dtype=sensitivity.dtype, device=sensitivity.device)
    meta = -(jvp_logits.to(sensitivity.dtype) * sensitivity).sum(-1)
    return meta - meta.mean() if center else meta
