"""The temperature meta-gradient equals a central finite difference of L_eval(theta'(phi)), in float64.

Every bundled model, GAT included (DGL 2.1's edge_softmax has a wrong double backward, which
the first-order formulation never touches), under SGD and Adam, with dropout active and the
same dropout masks on both sides.
"""
import copy

import pytest
import torch

dgl = pytest.importorskip("dgl")

from dgl_ltd.distill import Distiller
from dgl_ltd.dropout_tape import DropoutTape
from dgl_ltd.entropy import neighbourhood_entropy
from dgl_ltd.losses import distill_loss, eval_loss, kd_node_weight
from dgl_ltd.metagrad import capture_rng, restore_rng
from dgl_ltd.models import build_model
from dgl_ltd.temperature import TemperatureNet

SMALL = {
    "gcn": {"hidden": 6, "dropout": 0.3},
    "gat": {"hidden": 3, "heads": 2, "feat_drop": 0.3, "attn_drop": 0.3},
    "graphsage": {"hidden": 6, "dropout": 0.3},
    "appnp": {"hidden": 6, "dropout": 0.3, "k": 3},
    "sgc": {"k": 2},
    "gcnii": {"hidden": 6, "num_layers": 3, "dropout": 0.3},
}


@pytest.fixture(autouse=True)
def float64_default():
    # DGL's APPNPConv builds its edge weights with the default dtype
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _problem(seed=0, n=24, f=5, c=3):
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (60,), generator=gen)
    dst = torch.randint(0, n, (60,), generator=gen)
    g = dgl.to_bidirected(dgl.graph((src, dst), num_nodes=n))
    feat = torch.randn(n, f, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, c, (n,), generator=gen)
    teacher = 3 * torch.randn(n, c, generator=gen, dtype=torch.float64)
    perm = torch.randperm(n, generator=gen)
    distill_mask = torch.zeros(n, dtype=torch.bool)
    temp_mask = torch.zeros(n, dtype=torch.bool)
    distill_mask[perm[:8]] = True
    temp_mask[perm[8:16]] = True
    return g, feat, labels, teacher, distill_mask, temp_mask


def _step_inputs(kind, student, g, feat, distill_mask, temp_mask):
    """The distillation batch's rows and inputs, and the judging nodes' inputs: the whole graph, or
    neighbour-sampled blocks (fixed once sampled) as the mini-batch loop builds them."""
    if kind == "graph":
        rows = torch.arange(g.num_nodes())
        return rows, (g, feat), (g, feat), temp_mask
    from dgl_ltd.models import sampling_graph

    dgl.seed(0)
    looped = sampling_graph(student, g)
    sampler = dgl.dataloading.NeighborSampler([3, 3])
    rows = torch.randperm(g.num_nodes(), generator=torch.Generator().manual_seed(3))[:14]
    inputs, _, blocks = sampler.sample(looped, rows)
    judges = temp_mask.nonzero().squeeze(-1)
    meta_inputs, _, meta_blocks = sampler.sample(looped, judges)
    return rows, (blocks, feat[inputs]), (meta_blocks, feat[meta_inputs]), judges


CASES = [(model, "graph") for model in sorted(SMALL)] + [(model, "blocks") for model in ("gat", "gcn", "graphsage")]


@pytest.mark.parametrize("holdout", [False, True])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("model,kind", CASES)
def test_meta_gradient_matches_finite_difference(model, kind, optimizer, holdout):
    from dgl_ltd.distill import Batch, DistillConfig, MetaBatch, StepCore

    torch.manual_seed(0)
    g, feat, labels, teacher, distill_mask, temp_mask = _problem()
    c = teacher.shape[1]
    student = build_model(model, feat.shape[1], c, **SMALL[model]).double()
    temp_net = TemperatureNet(c, k=2.0, hidden=8, init_tau=None).double()
    with torch.no_grad():  # spread the temperatures so every node's tau matters
        temp_net.out.weight.mul_(5.0)
    entropy = neighbourhood_entropy(g, teacher).double()
    reduction, lam = "mean", 0.7
    cfg = DistillConfig(optimizer=optimizer, alpha=0.05, reduction=reduction, lam=lam, fd_eps=1e-6).validate()
    temp_opt = torch.optim.SGD(temp_net.parameters(), lr=0.0)
    core = StepCore(student, cfg, temp_net=temp_net, temp_opt=temp_opt)  # float64: small step, small truncation
    params, opt = core.params, core.optimizer
    for _ in range(3):  # give the optimiser a non-trivial state
        opt.zero_grad()
        eval_loss(student(g, feat), labels, distill_mask).backward()
        opt.step()
    theta0 = copy.deepcopy(student.state_dict())
    opt_state = copy.deepcopy(opt.state_dict())
    rows, inputs, meta_inputs, judges = _step_inputs(kind, student, g, feat, distill_mask, temp_mask)
    rng = capture_rng(feat.device)
    kd_mask = ~temp_mask[rows] if holdout else None  # kd_holdout: no KD term on the judging nodes
    batch = Batch(inputs, teacher[rows], labels[rows], distill_mask[rows], entropy[rows], kd_mask)
    meta = MetaBatch(meta_inputs, labels[judges] if kind == "blocks" else labels,
                     None if kind == "blocks" else temp_mask)

    def distill_step():
        student.load_state_dict(theta0)
        opt.load_state_dict(copy.deepcopy(opt_state))
        restore_rng(rng)
        student.train()
        with tape.recording():  # as the step core does: the finite differences reuse these masks
            logits = student(*inputs)
        tau = temp_net(logits, batch.entropy)
        loss = distill_loss(logits, batch.teacher, tau.detach(), batch.labels, batch.label_mask, lam, reduction,
                            kd_mask)
        opt.zero_grad()
        loss.backward()
        old = [p.detach().clone() for p in params]
        opt.step()
        return tau, old

    def objective():
        with torch.enable_grad():
            distill_step()
        student.eval()
        with torch.no_grad():
            after = student(*meta_inputs)
            return float(eval_loss(after, meta.labels, meta.mask if meta.mask is not None else
                                   torch.ones_like(meta.labels, dtype=torch.bool)))

    tape = DropoutTape()
    tau, old = distill_step()
    core._learn(batch, meta, tau, old, rng, tape)
    phi = [p for p in temp_net.parameters()]
    analytic = torch.cat([p.grad.flatten() for p in phi])
    assert analytic.abs().max() > 0

    direction = torch.randn(analytic.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    base = [p.detach().clone() for p in phi]
    h = 1e-5

    def shifted(sign):
        offset = 0
        with torch.no_grad():
            for p, b in zip(phi, base):
                size = p.numel()
                p.copy_(b + sign * h * direction[offset:offset + size].view_as(p))
                offset += size
        return objective()

    numeric = (shifted(1.0) - shifted(-1.0)) / (2 * h)
    predicted = float(analytic @ direction)
    assert numeric == pytest.approx(predicted, rel=2e-3, abs=1e-9), (numeric, predicted)


@pytest.mark.parametrize("center", [False, True])
def test_centred_meta_gradient_leaves_the_common_temperature_alone(center):
    """At init every node has the same tau, so the output bias moves all of them together: with
    meta_center its gradient must vanish, and without it (the plain meta-gradient) it must not."""
    torch.manual_seed(0)
    g, feat, labels, teacher, distill_mask, temp_mask = _problem()
    c = teacher.shape[1]
    student = build_model("gcn", feat.shape[1], c, **SMALL["gcn"]).double()
    temp_net = TemperatureNet(c, k=2.0, hidden=8, init_tau=0.7).double()
    entropy = neighbourhood_entropy(g, teacher).double()
    from dgl_ltd.distill import Batch, DistillConfig, MetaBatch, StepCore

    temp_opt = torch.optim.SGD(temp_net.parameters(), lr=0.0)
    core = StepCore(student, DistillConfig(alpha=0.05, meta_center=center), temp_net=temp_net, temp_opt=temp_opt)
    params, opt = core.params, core.optimizer
    rng = capture_rng(feat.device)
    logits = student(g, feat)
    tau = temp_net(logits, entropy)
    assert torch.allclose(tau, torch.full_like(tau, 0.7))
    opt.zero_grad()
    distill_loss(logits, teacher, tau.detach(), labels, distill_mask, 0.7).backward()
    old = [p.detach().clone() for p in params]
    opt.step()
    core._learn(Batch((g, feat), teacher, labels, distill_mask, entropy), MetaBatch((g, feat), labels, temp_mask),
                tau, old, rng)
    bias_grad = float(temp_net.out.bias.grad)
    scale = float(temp_net.out.weight.grad.norm())  # node-specific directions still learn
    assert scale > 0
    if center:
        assert abs(bias_grad) < 1e-9 * scale
    else:
        assert abs(bias_grad) > 1e-3 * scale


def test_step_jacobian_of_sgd_with_momentum_matches_the_step():
    from dgl_ltd.errors import UserInputError
    from dgl_ltd.metagrad import step_jacobian

    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    for grad in (torch.tensor([0.5, 1.0]), torch.tensor([-0.3, 0.2])):
        state = {k: v.clone() for k, v in opt.state[p].items()} if opt.state[p] else None
        old = p.detach().clone()
        p.grad = grad.clone()
        opt.step()
        jac = step_jacobian(opt, [p], [old])[0]
        # the same step from the same state with the gradient nudged: -dDelta/dg numerically
        probe = torch.nn.Parameter(old.clone())
        twin = torch.optim.SGD([probe], lr=0.1, momentum=0.9)
        if state:
            twin.state[probe] = {k: v.clone() for k, v in state.items()}
        probe.grad = grad + 1e-3
        twin.step()
        assert torch.allclose(-(probe.detach() - p.detach()) / 1e-3, jac, rtol=1e-4)
    damped = torch.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    p.grad = torch.ones(2)
    damped.step()
    with pytest.raises(UserInputError, match="dampening"):
        step_jacobian(damped, [p], [p.detach().clone()])


def test_finite_difference_leaves_the_random_stream_where_it_was():
    # the replay rewinds to the epoch's dropout masks; afterwards the stream must continue from where it was,
    # not hand the next draws numbers that were already used
    from dgl_ltd.metagrad import directional_logits

    g, feat, *_ = _problem()
    student = build_model("gcn", 5, 3, **SMALL["gcn"])
    names = [n for n, _ in student.named_parameters()]
    params = [p.detach().clone() for p in student.parameters()]
    rng = capture_rng(feat.device)
    student(g, feat)  # the distillation forward draws its masks
    torch.rand(7)  # any later draw, e.g. the temperature network's dropout
    expected = torch.get_rng_state()
    directional_logits(student, names, params, [torch.ones_like(p) for p in params], rng, g, feat)
    assert torch.equal(torch.get_rng_state(), expected)


def test_finite_difference_leaves_batchnorm_statistics_alone():
    # only the distillation step's forward updates BatchNorm's running statistics, once per epoch
    class BNStudent(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.bn = torch.nn.Linear(5, 3), torch.nn.BatchNorm1d(3)

        def forward(self, graph, feat):
            return self.bn(self.lin(feat))

    g, feat, labels, teacher, distill_mask, temp_mask = _problem()
    g.ndata.update({"feat": feat, "label": labels, "distill_mask": distill_mask, "temp_mask": temp_mask,
                    "val_mask": ~(distill_mask | temp_mask)})
    res = Distiller(BNStudent(), "ltd", max_epochs=4, patience=10, warmup=1, show_progress=False).fit(g, teacher)
    learned = [h for h in res.history if h["meta_grad_norm"] is not None]
    assert len(learned) == 3
    assert int(res.student.bn.num_batches_tracked) == res.best_epoch + 1


def test_temperature_meta_gradient_centre():
    from dgl_ltd.metagrad import temperature_meta_gradient

    gen = torch.Generator().manual_seed(0)
    jvp, sens = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    plain = temperature_meta_gradient(jvp, sens)
    centred = temperature_meta_gradient(jvp, sens, center=True)
    assert torch.allclose(centred, plain - plain.mean())
    assert abs(float(centred.sum())) < 1e-12
