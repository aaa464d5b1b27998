"""The seeded planted-partition generator (``dgl_ltd.planted``) and ``load_dataset('planted')``."""
import numpy as np
import pytest
import torch

dgl = pytest.importorskip("dgl")

from dgl_ltd.data import SPLIT_COUNTS, load_dataset
from dgl_ltd.errors import UserInputError
from dgl_ltd.planted import edge_homophily, planted_partition_graph

SMALL = {"num_nodes": 3000, "avg_degree": 12, "num_classes": 5, "num_feats": 8}


@pytest.fixture(scope="module")
def graph():
    return planted_partition_graph(num_nodes=20_000, seed=3)  # products-like defaults otherwise


def test_requested_sizes(graph):
    assert graph.num_nodes() == 20_000
    assert int(graph.ndata["label"].max()) + 1 == 47 and graph.ndata["label"].dtype == torch.int64
    assert graph.ndata["feat"].shape == (20_000, 100) and graph.ndata["feat"].dtype == torch.float32
    assert abs(graph.num_edges() / graph.num_nodes() - 50) <= 5
    sizes = torch.bincount(graph.ndata["label"])
    assert sizes.max() - sizes.min() <= 1  # classes as equal as possible


def test_undirected_simple_graph(graph):
    src, dst = (e.numpy() for e in graph.edges())
    n = graph.num_nodes()
    assert not (src == dst).any()
    forward = np.sort(src * n + dst)
    assert len(np.unique(forward)) == len(forward)  # no duplicate edge
    assert np.array_equal(forward, np.sort(dst * n + src))  # every edge in both directions


def test_edges_follow_the_classes(graph):
    assert edge_homophily(graph) == pytest.approx(0.8, abs=0.02)
    mixed = planted_partition_graph(seed=3, homophily=0.3, **SMALL)
    assert edge_homophily(mixed) == pytest.approx(0.3, abs=0.03)


def test_split_masks(graph):
    labels, data = graph.ndata["label"], graph.ndata
    for name, count in zip(("distill_mask", "temp_mask", "val_mask"), SPLIT_COUNTS):
        assert torch.bincount(labels[data[name]], minlength=47).eq(count).all()
    picked = data["distill_mask"].int() + data["temp_mask"].int() + data["val_mask"].int()
    assert picked.max() == 1 and torch.equal(data["test_mask"], picked == 0)
    assert torch.equal(data["train_mask"], data["distill_mask"] | data["temp_mask"])


def centroid_accuracy(x, labels, train, test):
    """Accuracy on ``test`` of the nearest class mean of the ``train`` rows (a linear classifier)."""
    classes = int(labels.max()) + 1
    means = torch.zeros(classes, x.shape[1]).index_add_(0, labels[train], x[train])
    means /= torch.bincount(labels[train], minlength=classes).unsqueeze(1)
    return float((torch.cdist(x[test], means).argmin(1) == labels[test]).float().mean())


def test_accuracy_means_something(graph):
    x, labels, data = graph.ndata["feat"], graph.ndata["label"], graph.ndata
    alone = centroid_accuracy(x, labels, data["train_mask"], data["test_mask"])
    assert alone > 5 / 47  # features alone: clearly above chance ...
    with graph.local_scope():
        graph.update_all(dgl.function.copy_u("feat", "m"), dgl.function.mean("m", "mean"))
        with_neighbours = torch.cat([x, graph.ndata["mean"]], 1)
    # ... and far from perfect, so the neighbourhood (mostly of the same class) adds to it
    assert centroid_accuracy(with_neighbours, labels, data["train_mask"], data["test_mask"]) > alone + 0.2


def test_same_options_and_seed_same_graph():
    a, b = planted_partition_graph(seed=7, **SMALL), planted_partition_graph(seed=7, **SMALL)
    assert all(torch.equal(x, y) for x, y in zip(a.edges(), b.edges()))
    assert a.ndata.keys() == b.ndata.keys() and all(torch.equal(a.ndata[k], b.ndata[k]) for k in a.ndata)
    other = planted_partition_graph(seed=8, **SMALL)
    assert not torch.equal(a.ndata["label"], other.ndata["label"]) and not torch.equal(a.ndata["feat"], other.ndata["feat"])
    assert a.num_edges() == other.num_edges() == SMALL["num_nodes"] * SMALL["avg_degree"]


def test_load_dataset_builds_it():
    a = load_dataset("planted", seed=7, **SMALL)
    b = planted_partition_graph(seed=7, **SMALL)
    assert all(torch.equal(x, y) for x, y in zip(a.edges(), b.edges())) and torch.equal(a.ndata["feat"], b.ndata["feat"])


@pytest.mark.parametrize("call,needle", [
    (lambda: planted_partition_graph(num_nodes=100, num_classes=47), "num_nodes >= 2820"),
    (lambda: planted_partition_graph(homophily=1.5, **SMALL), "homophily must be in [0, 1], got 1.5"),
    (lambda: planted_partition_graph(num_nodes=3000, num_classes=5, avg_degree=500), "too dense"),
    (lambda: planted_partition_graph(seed=-1, **SMALL), "seed must be an integer"),
    (lambda: planted_partition_graph(num_feats=0, **{k: v for k, v in SMALL.items() if k != "num_feats"}),
     "num_feats must be a positive integer, got 0"),
    (lambda: load_dataset("planted", num_node=10), "unknown option(s) num_node"),
    (lambda: load_dataset("cora", num_nodes=10), "num_nodes: options of the 'planted' dataset only"),
])
def test_bad_options_are_one_line_errors(call, needle):
    with pytest.raises(UserInputError) as info:
        call()
    assert needle in str(info.value) and "\n" not in str(info.value)
