"""Models on sampled DGL blocks, layer-wise inference, SGC's precomputed features, self-loops added once."""
import pytest
import torch

dgl = pytest.importorskip("dgl")

from dgl_ltd.data import load_dataset
from dgl_ltd.errors import UserInputError
from dgl_ltd.models import (
    MODELS, SGC, add_self_loops, build_model, build_teacher, graph_conv_on_block, is_self_looped, sampling_graph,
    takes_blocks,
)

BLOCK_MODELS = ["gcn", "gat", "graphsage"]
SEEDS = torch.arange(0, 2485, 9)  # about 280 of cora's nodes


@pytest.fixture(scope="module")
def cora():
    return load_dataset("cora")


def full_blocks(model, graph, layers):
    """Blocks with every in-neighbour of every node, sampled from the graph prepared for ``model``."""
    sampler = dgl.dataloading.MultiLayerFullNeighborSampler(layers)
    return sampler.sample(sampling_graph(model, graph), SEEDS)


@pytest.mark.parametrize("name", BLOCK_MODELS)
def test_full_neighbour_blocks_give_the_whole_graph_logits(cora, name):
    torch.manual_seed(0)
    x = cora.ndata["feat"]
    model = build_model(name, x.shape[1], 7).eval()
    input_nodes, output_nodes, blocks = full_blocks(model, cora, 2)
    with torch.no_grad():
        whole = model(cora, x)[output_nodes]
        sampled = model(blocks, x[input_nodes])
    assert torch.equal(output_nodes, SEEDS)
    # equal up to float rounding: the matmuls run on other row sets and the sums in another order
    assert torch.allclose(sampled, whole, rtol=0, atol=1e-5)
    assert whole.abs().max() > 0.1  # the logits are not all near zero


def test_dgl_graphconv_on_blocks_would_not_match(cora):
    # why GCN normalises blocks itself: GraphConv uses the out-degree of a source node in the block
    torch.manual_seed(0)
    x = cora.ndata["feat"]
    model = build_model("gcn", x.shape[1], 7).eval()
    input_nodes, _, blocks = full_blocks(model, cora, 2)
    block = blocks[0]
    with torch.no_grad():
        ours = graph_conv_on_block(model.layers[0], block, x[input_nodes])
        dgls = model.layers[0](block, x[input_nodes])
        whole = model.layers[0](add_self_loops(cora), x)[block.dstdata[dgl.NID]]
    assert torch.allclose(ours, whole, atol=1e-5) and not torch.allclose(dgls, whole, atol=1e-2)


def test_sampled_gcn_layer_is_unbiased():
    # with fewer sampled in-edges than the degree, the rescaled sum estimates the whole-graph layer
    gen = torch.Generator().manual_seed(0)
    src = torch.randint(0, 40, (300,), generator=gen)
    raw = dgl.graph((src, torch.randint(0, 4, (300,), generator=gen)), num_nodes=40)
    graph = add_self_loops(raw)
    x = torch.randn(40, 5, generator=gen)
    torch.manual_seed(0)
    conv = build_model("gcn", 5, 3).layers[0]
    nodes = torch.arange(4)  # in-degrees near 75, far above the fanout
    copies = 300  # independent draws: one sample over 300 disjoint copies of the graph
    many = add_self_loops(dgl.batch([raw] * copies))
    seeds = (torch.arange(copies).unsqueeze(1) * 40 + nodes).flatten()
    input_nodes, _, (block,) = dgl.dataloading.NeighborSampler([3]).sample(many, seeds)
    with torch.no_grad():
        whole = conv(graph, x)[nodes]
        draws = graph_conv_on_block(conv, block, x[input_nodes % 40]).view(copies, len(nodes), -1)
    assert (draws.std(0) > 1e-2).all()  # the draws do differ
    assert torch.allclose(draws.mean(0), whole, atol=4 * float(draws.std(0).max()) / copies ** 0.5)


@pytest.mark.parametrize("name", BLOCK_MODELS)
def test_neighbour_sampled_blocks_train(cora, name):
    torch.manual_seed(0)
    x, labels = cora.ndata["feat"], cora.ndata["label"]
    model = build_model(name, x.shape[1], 7).train()
    sampler = dgl.dataloading.NeighborSampler([10, 10])
    input_nodes, output_nodes, blocks = sampler.sample(sampling_graph(model, cora), SEEDS)
    assert blocks[0].num_src_nodes() < cora.num_nodes()
    logits = model(blocks, x[input_nodes])
    assert logits.shape == (len(SEEDS), 7)
    torch.nn.functional.cross_entropy(logits, labels[output_nodes]).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads) and all(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", BLOCK_MODELS)
def test_layerwise_inference_equals_the_whole_graph_forward(cora, name):
    torch.manual_seed(0)
    x = cora.ndata["feat"]
    model = build_teacher(name, x.shape[1], 7).train()  # GraphSAGE: 3 layers
    logits = model.inference(cora, x, batch_size=1000)
    assert model.training  # the mode is restored
    with torch.no_grad():
        whole = model.eval()(cora, x)
    assert logits.shape == whole.shape and torch.allclose(logits, whole, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["appnp", "sgc"])
def test_propagation_models_infer_the_eval_forward(cora, name):
    torch.manual_seed(0)
    x = cora.ndata["feat"]
    model = build_model(name, x.shape[1], 7)
    logits = model.inference(cora, x, batch_size=500)
    with torch.no_grad():
        assert torch.allclose(logits, model.eval()(cora, x), rtol=0, atol=1e-6)


def test_sgc_precomputed_rows_give_the_forward(cora):
    torch.manual_seed(0)
    x = cora.ndata["feat"]
    model = SGC(x.shape[1], 7)
    table = model.precompute(cora, x)
    assert torch.equal(model.classify(table), model(cora, x))
    rows = model.classify(table[SEEDS])
    assert torch.allclose(rows, model(cora, x)[SEEDS], rtol=0, atol=1e-6)
    rows.sum().backward()  # a linear model on the rows
    assert model.conv.fc.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name,needle", [("appnp", "--sampler cluster"), ("gcnii", "--sampler cluster"),
                                         ("sgc", "precompute")])
def test_models_without_blocks_refuse_them(cora, name, needle):
    model = build_model(name, cora.ndata["feat"].shape[1], 7, **({"num_layers": 2} if name == "gcnii" else {}))
    input_nodes, _, blocks = dgl.dataloading.MultiLayerFullNeighborSampler(2).sample(cora, SEEDS)
    with pytest.raises(UserInputError, match=needle) as info:
        model(blocks, cora.ndata["feat"][input_nodes])
    assert "\n" not in str(info.value)
    assert not takes_blocks(model)


def test_takes_blocks():
    assert {name: takes_blocks(build_model(name, 4, 2)) for name in MODELS} == {
        "gcn": True, "gat": True, "graphsage": True, "appnp": False, "sgc": False, "gcnii": False, "mlp": False}
    assert takes_blocks(torch.nn.Linear(4, 2))  # a user's own module is assumed to take blocks


@pytest.mark.parametrize("count", [1, 3])
def test_wrong_block_count_names_fanouts(cora, count):
    model = build_model("graphsage", cora.ndata["feat"].shape[1], 7)
    input_nodes, _, blocks = dgl.dataloading.MultiLayerFullNeighborSampler(count).sample(cora, SEEDS)
    with pytest.raises(UserInputError, match=r"2 layers but got %d block.*--fanouts 10,10" % count):
        model(blocks if count > 1 else blocks[0], cora.ndata["feat"][input_nodes])


def test_blocks_from_a_graph_without_self_loops_are_refused(cora):
    model = build_model("gcn", cora.ndata["feat"].shape[1], 7)
    input_nodes, _, blocks = dgl.dataloading.MultiLayerFullNeighborSampler(2).sample(cora, SEEDS)
    with pytest.raises(UserInputError, match="sampling_graph"):
        model(blocks, cora.ndata["feat"][input_nodes])
    with pytest.raises(UserInputError, match="features have 5 rows but the first block has"):
        model(full_blocks(model, cora, 2)[2], cora.ndata["feat"][:5])


def test_add_self_loops_once():
    g = dgl.graph(([0, 1, 2, 3, 3], [1, 2, 0, 3, 0]), num_nodes=5)  # one self-loop, one isolated node
    looped = add_self_loops(g)
    reference = dgl.add_self_loop(dgl.remove_self_loop(g))
    assert all(torch.equal(a, b) for a, b in zip(looped.edges(), reference.edges()))
    assert looped.ndata["_ltd_in_degree"].tolist() == [3, 2, 2, 1, 1]
    assert is_self_looped(looped) and not is_self_looped(g)
    assert add_self_loops(looped) is looped  # prepared once, then used as it is
    plain = dgl.graph(([0, 1], [1, 0]), num_nodes=3)  # no self-loop to remove: the same edges, in the same order
    assert all(torch.equal(a, b) for a, b in zip(add_self_loops(plain).edges(),
                                                  dgl.add_self_loop(dgl.remove_self_loop(plain)).edges()))
    looped.add_edges([0], [4])  # a changed graph is prepared again
    assert not is_self_looped(looped) and add_self_loops(looped).ndata["_ltd_in_degree"][4] == 2
    assert sampling_graph(build_model("graphsage", 4, 2), g) is g  # GraphSAGE counts the node itself already
