"""The second-order reference of benchmarks/second_order.py gives this package's first-order meta-gradient."""
import copy
import sys
from pathlib import Path

import pytest
import torch

dgl = pytest.importorskip("dgl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from second_order import SecondOrderCore  # noqa: E402

from dgl_ltd.distill import Batch, DistillConfig, MetaBatch, StepCore  # noqa: E402
from dgl_ltd.entropy import neighbourhood_entropy  # noqa: E402
from dgl_ltd.models import build_model  # noqa: E402
from dgl_ltd.temperature import TemperatureNet  # noqa: E402


@pytest.mark.parametrize("model", ["gcn", "graphsage", "sgc"])
def test_second_order_reference_matches_the_first_order_meta_gradient(model):
    torch.set_default_dtype(torch.float64)
    try:
        gen = torch.Generator().manual_seed(0)
        n, c = 30, 3
        g = dgl.to_bidirected(dgl.graph((torch.randint(0, n, (80,), generator=gen),
                                         torch.randint(0, n, (80,), generator=gen)), num_nodes=n))
        feat, labels = torch.randn(n, 6, generator=gen), torch.randint(0, c, (n,), generator=gen)
        teacher = 3 * torch.randn(n, c, generator=gen)
        label_mask, judges = torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
        label_mask[:8], judges[8:16] = True, True
        entropy = neighbourhood_entropy(g, teacher)
        cfg = DistillConfig(optimizer="sgd", weight_decay=0.0, alpha=0.3, lam=0.5, fd_eps=1e-7).validate()
        torch.manual_seed(0)
        # GCN's default dropout 0.8 with zero-initialised biases leaves pre-activations of exactly 0, where
        # ReLU has no derivative: autograd takes 0 and the central difference 1/2 there, so both are right
        student = build_model(model, 6, c, **({"dropout": 0.3} if model == "gcn" else {}))
        net = TemperatureNet(c, k=2.0, hidden=8, init_tau=None)
        grads = []
        for kind in (StepCore, SecondOrderCore):
            s, t = copy.deepcopy(student), copy.deepcopy(net)
            core = kind(s, cfg, temp_net=t, temp_opt=torch.optim.SGD(t.parameters(), lr=0.0))
            torch.manual_seed(1)  # the same dropout masks for the distillation forward
            out = core.step(Batch((g, feat), teacher, labels, label_mask, entropy), learn=True,
                            meta=MetaBatch((g, feat), labels, judges))
            grads.append(torch.cat([p.grad.flatten() for p in t.parameters()]))
            assert out.meta_grad_norm is not None
        first, second = grads
        assert second.abs().max() > 0
        torch.testing.assert_close(first, second, rtol=1e-4, atol=1e-9)
    finally:
        torch.set_default_dtype(torch.float32)
