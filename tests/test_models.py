import pytest
import torch

dgl = pytest.importorskip("dgl")

from dgl_ltd.data import accuracy, load_dataset
from dgl_ltd.errors import UserInputError
from dgl_ltd.models import MODELS, TEACHER_OVERRIDES, build_model, build_teacher, canonical_model_name
from dgl_ltd.training import train_teacher

SMALL = {"gcnii": {"num_layers": 4}}


def tiny_graph():
    # a raw graph: one self-loop, one isolated node (zero in-degree), directed edges
    g = dgl.graph(([0, 1, 2, 3, 3], [1, 2, 0, 3, 0]), num_nodes=5)
    return g, torch.randn(5, 6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_backward_on_tiny_raw_graph(name):
    torch.manual_seed(0)
    g, x = tiny_graph()
    model = build_model(name, 6, 3, **SMALL.get(name, {}))
    out = model(g, x)
    assert out.shape == (5, 3) and torch.isfinite(out).all()
    out.square().sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert any(gr.abs().sum() > 0 for gr in grads)


@pytest.fixture(scope="module")
def cora():
    return load_dataset("cora")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_backward_on_cora(cora, name):
    torch.manual_seed(0)
    x = cora.ndata["feat"]
    model = build_model(name, x.shape[1], 7, **SMALL.get(name, {}))
    out = model(cora, x)
    assert out.shape == (cora.num_nodes(), 7)
    torch.nn.functional.cross_entropy(out[cora.ndata["train_mask"]], cora.ndata["label"][cora.ndata["train_mask"]]).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_eval_mode_is_deterministic(cora):
    model = build_model("gat", cora.ndata["feat"].shape[1], 7).eval()
    with torch.no_grad():
        assert torch.equal(model(cora, cora.ndata["feat"]), model(cora, cora.ndata["feat"]))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_existing_self_loops_change_nothing(name):
    # every model adds exactly one self-loop per node: a graph that already has some gives the same output
    torch.manual_seed(0)
    g, x = tiny_graph()
    model = build_model(name, 6, 3, **SMALL.get(name, {})).eval()
    assert torch.allclose(model(g, x), model(dgl.remove_self_loop(g), x), atol=1e-6)


def test_self_loop_cache_follows_the_graph():
    model = build_model("gcn", 6, 3)
    g1, x = tiny_graph()
    g2 = dgl.graph(([0, 1], [1, 0]), num_nodes=5)
    model.eval()
    a = model(g1, x)
    b = model(g2, x)
    assert not torch.allclose(a, b)
    assert torch.equal(a, model(g1, x))


@pytest.mark.parametrize("name", ["gcn", "sgc"])
def test_cache_never_serves_a_freed_graph(name):
    # graphs of equal size built one after another: Python may give a new graph a freed one's id
    torch.manual_seed(0)
    model = build_model(name, 6, 3).eval()
    x = torch.randn(30, 6)
    for seed in range(4):
        gen = torch.Generator().manual_seed(seed)
        g = dgl.graph((torch.randint(0, 30, (60,), generator=gen), torch.randint(0, 30, (60,), generator=gen)),
                      num_nodes=30)
        fresh = build_model(name, 6, 3)
        fresh.load_state_dict(model.state_dict())
        assert torch.allclose(model(g, x), fresh.eval()(g, x))
        del g


def test_sgc_cache_invalidated_when_features_change():
    torch.manual_seed(0)
    g, x = tiny_graph()
    model = build_model("sgc", 6, 3)
    a = model(g, x)
    x2 = x.clone()
    x2[0] += 1
    assert not torch.allclose(a, model(g, x2))
    x.add_(1.0)  # in place: the cache key includes the tensor version
    assert torch.allclose(model(g, x), model(g, x.clone()))


@pytest.mark.parametrize("call,needle", [
    (lambda: build_model("transformer", 4, 2), "unknown model 'transformer'"),
    (lambda: build_model("gcn", 4, 2, dropout=1.5), "dropout must be in [0, 1), got 1.5"),
    (lambda: build_model("gat", 4, 0), "n_classes must be a positive int, got 0"),
    (lambda: build_model("gcn", 4.0, 2), "in_feats must be a positive int, got 4.0"),
    (lambda: build_model("gcn", True, 2), "in_feats must be a positive int, got True"),
    (lambda: build_model("graphsage", 4, 2, aggregator="max"), "aggregator must be one of"),
    (lambda: build_model("appnp", 4, 2, alpha=0.0), "alpha must be in (0, 1], got 0.0"),
])
def test_bad_options_echo_the_value(call, needle):
    with pytest.raises(UserInputError) as info:
        call()
    assert needle in str(info.value)


def test_build_model_takes_numpy_and_tensor_integers():
    import numpy as np

    model = build_model("gcn", np.int64(6), torch.tensor(3))
    assert model.layers[0].weight.shape == (6, 64) and model.layers[-1].weight.shape == (64, 3)


def test_aliases():
    assert canonical_model_name("GraphSAGE") == "graphsage" and canonical_model_name("sage") == "graphsage"


def test_teacher_training_learns_and_restores_best(cora):
    torch.manual_seed(0)
    model = build_model("gcn", cora.ndata["feat"].shape[1], 7)
    res = train_teacher(model, cora, max_epochs=60, patience=20, seed=0, show_progress=False)
    assert res.test_acc > 0.75
    assert res.val_acc == max(h["val_acc"] for h in res.history)
    # the returned model and logits are those of the best epoch, not the last
    assert accuracy(res.logits, cora.ndata["label"], cora.ndata["val_mask"]) == res.val_acc
    assert res.best_epoch < res.epochs


def test_teacher_empty_mask_is_an_error(cora):
    model = build_model("gcn", cora.ndata["feat"].shape[1], 7)
    with pytest.raises(UserInputError, match="train_mask selects no node"):
        train_teacher(model, cora, train_mask=torch.zeros(cora.num_nodes(), dtype=torch.bool), show_progress=False)


def test_build_teacher_follows_the_papers_teacher_architectures():
    # GraphSAGE teachers have 3 SAGEConv layers (the paper's teacher code), students keep 2
    assert len(build_teacher("GraphSAGE", 6, 3).layers) == 3
    assert len(build_model("graphsage", 6, 3).layers) == 2
    assert len(build_teacher("sage", 6, 3, num_layers=4).layers) == 4  # keyword arguments win
    for name in MODELS:
        if name not in TEACHER_OVERRIDES:
            kw = SMALL.get(name, {})
            torch.manual_seed(0)
            a = build_teacher(name, 6, 3, **kw).state_dict()
            torch.manual_seed(0)
            b = build_model(name, 6, 3, **kw).state_dict()
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
