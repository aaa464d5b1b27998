import math

import pytest
import torch

dgl = pytest.importorskip("dgl")

from dgl_ltd.entropy import neighbourhood_entropy
from dgl_ltd.errors import UserInputError
from dgl_ltd.temperature import TemperatureNet


def dense_reference(src, dst, n, logits):
    adj = torch.zeros(n, n)
    for s, d in zip(src, dst):
        if s != d:
            adj[d, s] = 1.0  # row d averages its in-neighbours s (multi-edges count once here and in DGL below)
    probs = torch.softmax(logits, -1)
    deg = adj.sum(1, keepdim=True)
    mean = adj @ probs / deg.clamp_min(1)
    ent = -(torch.where(mean > 0, mean * mean.log(), torch.zeros_like(mean))).sum(-1)
    return torch.where(deg.squeeze(1) > 0, ent, torch.full_like(ent, math.log(logits.shape[1])))


def test_entropy_matches_dense_reference_with_self_loops_and_isolated_nodes():
    gen = torch.Generator().manual_seed(0)
    n, c = 40, 5
    pairs = {(int(s), int(d)) for s, d in zip(torch.randint(0, n - 3, (120,), generator=gen),
                                               torch.randint(0, n - 3, (120,), generator=gen))}
    pairs |= {(4, 4), (7, 7)}  # self-loops must be ignored; nodes n-3.. are isolated
    src, dst = zip(*sorted(pairs))
    g = dgl.graph((torch.tensor(src), torch.tensor(dst)), num_nodes=n)
    logits = 4 * torch.randn(n, c, generator=gen)
    logits[0] = torch.tensor([200.0, -200.0, 0.0, 0.0, 0.0])  # a saturated teacher row: 0 * log 0 terms
    got = neighbourhood_entropy(g, logits)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, dense_reference(src, dst, n, logits), rtol=1e-5, atol=1e-6)
    assert torch.allclose(got[-3:], torch.full((3,), math.log(c)))
    assert (got >= 0).all() and (got <= math.log(c) + 1e-6).all()


def test_entropy_is_zero_when_all_neighbours_agree_with_certainty():
    g = dgl.graph(([0, 1, 2], [1, 2, 0]))
    logits = torch.tensor([[100.0, 0.0], [100.0, 0.0], [100.0, 0.0]])
    assert torch.allclose(neighbourhood_entropy(g, logits), torch.zeros(3), atol=1e-6)


def test_entropy_shape_error():
    g = dgl.graph(([0], [1]))
    with pytest.raises(UserInputError, match="graph has 2 nodes"):
        neighbourhood_entropy(g, torch.zeros(3, 2))


@pytest.mark.parametrize("k", [1.0, 2.0, 3.0])
def test_temperatures_stay_in_range_and_away_from_zero(k):
    torch.manual_seed(0)
    net = TemperatureNet(4, k=k, init_tau=None)
    with torch.no_grad():
        net.out.weight.mul_(200.0)  # saturate the sigmoid both ways
    tau = net(10 * torch.randn(500, 4), torch.rand(500))
    assert (tau > -0.2 * k - 1e-6).all() and (tau < 0.8 * k + 1e-6).all()
    assert (tau.abs() >= net.min_abs - 1e-7).all()
    assert (tau < 0).any() and (tau > 0).any()  # negative temperatures are allowed


def test_guard_keeps_sign_and_passes_gradient():
    net = TemperatureNet(2, k=1.0, init_tau=0.001 * 1.0 + 0.0, min_abs=0.05)
    logits = torch.randn(3, 2)
    tau = net(logits, torch.rand(3))
    assert torch.allclose(tau, torch.full((3,), 0.05))
    tau.sum().backward()
    assert net.out.bias.grad.abs().item() > 0
    neg = TemperatureNet(2, k=1.0, init_tau=-0.001, min_abs=0.05)
    assert torch.allclose(neg(logits, torch.rand(3)), torch.full((3,), -0.05))


def test_init_tau_and_validation():
    net = TemperatureNet(3, k=2.0, init_tau=1.3)
    assert torch.allclose(net(torch.randn(5, 3), torch.rand(5)), torch.full((5,), 1.3))
    with pytest.raises(UserInputError, match=r"init_tau must lie in \(-0.2k, 0.8k\) = \(-0.4, 1.6\), got 2.0"):
        TemperatureNet(3, k=2.0, init_tau=2.0)
    with pytest.raises(UserInputError, match="k must be > 0, got -1"):
        TemperatureNet(3, k=-1)


def test_temperature_input_is_detached_from_student():
    net = TemperatureNet(3, init_tau=None)
    z = torch.randn(4, 3, requires_grad=True)
    net(z, torch.rand(4)).sum().backward()
    assert z.grad is None


def test_temperature_network_reads_logits_their_norm_and_the_entropy():
    net = TemperatureNet(3, init_tau=None)
    z, h = torch.randn(4, 3), torch.rand(4)
    assert torch.equal(net.features(z, h), torch.cat([z, z.norm(dim=-1, keepdim=True), h[:, None]], -1))
    # a trained (here: randomly initialised) network gives other temperatures for another entropy
    assert not torch.allclose(net(z, h), net(z, h + 1.0))


def test_entropy_never_copies_the_graph(monkeypatch):
    # dgl.remove_self_loop copies the whole graph (13.5 GiB peak at ogbn-products size); self-loops are weighed 0
    monkeypatch.setattr(dgl, "remove_self_loop", lambda *a, **k: (_ for _ in ()).throw(AssertionError("copied")))
    g = dgl.graph(([0, 1, 2, 2], [1, 0, 2, 0]), num_nodes=4)  # node 2 has only its self-loop; node 3 nothing
    logits = torch.tensor([[5.0, 0.0], [0.0, 5.0], [3.0, 0.0], [0.0, 0.0]])
    got = neighbourhood_entropy(g, logits)
    assert torch.allclose(got[2:], torch.full((2,), math.log(2)))
    torch.testing.assert_close(got, dense_reference((0, 1, 2, 2), (1, 0, 2, 0), 4, logits), rtol=1e-5, atol=1e-6)
