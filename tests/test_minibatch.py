"""Mini-batch distillation: neighbour-sampled blocks, ClusterGCN subgraphs, node batches; bad input."""
import time

import pytest
import torch
from torch import nn

dgl = pytest.importorskip("dgl")

from dgl_ltd import Distiller
from dgl_ltd.data import load_dataset
from dgl_ltd.errors import UserInputError
from dgl_ltd.models import build_model
from dgl_ltd.training import set_seed


@pytest.fixture(scope="module")
def teacher(cora_logits):
    return cora_logits("GraphSAGE")


def run(cora, teacher, model, method, seed=0, **config):
    set_seed(seed)
    student = build_model(model, cora.ndata["feat"].shape[1], 7)
    config = dict(dict(batch_size=512, max_epochs=4, warmup=2, show_progress=False), **config)
    return Distiller(student, method, **config).fit(cora, teacher, seed=seed)


def test_neighbour_sampled_ltd_learns_and_scores(cora, teacher):
    res = run(cora, teacher, "graphsage", "ltd", fanouts=(5, 5), max_epochs=6)
    batches = res.history[0]["batches"]
    assert batches == -(-cora.num_nodes() // 512)  # every node is a KD seed once per epoch
    learned = [h["meta_grad_norm"] for h in res.history]
    assert learned[0] is not None  # warm-up counts batches: learning starts within the first epoch
    assert res.temperatures.shape == (cora.num_nodes(),) and float(res.temperatures.std()) > 0
    assert res.test_acc > 0.7  # a few mini-batch epochs already distil the teacher (0.84)
    again = run(cora, teacher, "graphsage", "ltd", fanouts=(5, 5), max_epochs=6)
    assert torch.equal(res.logits, again.logits) and torch.equal(res.temperatures, again.temperatures)


def test_ltd_s_learns_every_k_batches_and_bounded_epochs(cora, teacher):
    res = run(cora, teacher, "gcn", "ltd-s", fanouts=(5, 5), batch_size=128, batches_per_epoch=3, max_epochs=4,
              warmup=1, meta_every=4)
    assert [h["batches"] for h in res.history] == [3, 3, 3, 3]
    # steps 1, 5, 9 learn (warm-up 1, every 4), of steps 0-2, 3-5, 6-8, 9-11 in the four epochs
    assert [h["meta_grad_norm"] is not None for h in res.history] == [True, True, False, True]


@pytest.mark.parametrize("model,config", [("sgc", {"sampler": "node"}), ("appnp", {"sampler": "cluster",
                                                                                    "cluster_parts": 4})])
def test_models_without_blocks_train_on_rows_or_subgraphs(cora, teacher, model, config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # ClusterGCN's partition cache must not land in the working folder
    res = run(cora, teacher, model, "ltd", max_epochs=3, **config)
    assert any(h["meta_grad_norm"] for h in res.history) and res.test_acc > 0.5
    assert list(tmp_path.iterdir()) == []


def test_mlp_like_student_reads_rows(cora, teacher):
    class RowMLP(nn.Module):
        takes_graph = False

        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(cora.ndata["feat"].shape[1], 32), nn.ReLU(), nn.Dropout(0.5),
                                     nn.Linear(32, 7))

        def forward(self, x):
            return self.net(x)

    torch.manual_seed(0)
    res = Distiller(RowMLP(), "ltd", sampler="node", batch_size=256, max_epochs=3, warmup=1,
                    show_progress=False).fit(cora, teacher)
    assert any(h["meta_grad_norm"] for h in res.history) and 0 < res.test_acc <= 1


def test_planted_graph_of_50k_nodes_in_seconds():
    graph = load_dataset("planted", num_nodes=50_000, avg_degree=10, num_classes=5, num_feats=16, seed=0)
    nd = graph.ndata
    teacher = 4.0 * torch.nn.functional.one_hot(nd["label"], 5).float() + torch.randn(graph.num_nodes(), 5)
    set_seed(0)
    student = build_model("graphsage", 16, 5, hidden=32)
    start = time.perf_counter()
    res = Distiller(student, "ltd-s", fanouts=(5, 5), batch_size=1024, batches_per_epoch=5, max_epochs=3, warmup=2,
                    meta_every=4, show_progress=False).fit(graph, teacher)
    assert time.perf_counter() - start < 60
    assert res.temperatures.shape == (50_000,) and res.test_acc > 0.5


def test_bad_minibatch_input_fails_before_training(cora, teacher):
    student = build_model("graphsage", cora.ndata["feat"].shape[1], 7)
    with pytest.raises(UserInputError, match=r"has 2 layers but fanouts has 3 entries; give one fanout per layer"):
        Distiller(student, "kd", fanouts=(5, 5, 5), show_progress=False).fit(cora, teacher)
    for model, needle in (("appnp", "cannot take DGL blocks; train it on subgraphs with sampler='cluster'"),
                          ("sgc", "train it with sampler='node'")):
        with pytest.raises(UserInputError, match=needle):
            Distiller(build_model(model, cora.ndata["feat"].shape[1], 7), "kd", fanouts=(5, 5)).fit(cora, teacher)
    with pytest.raises(UserInputError, match="sampler='node' is for students that read one feature row"):
        Distiller(student, "kd", sampler="node").fit(cora, teacher)



def test_worker_processes_sample_the_same_batches_as_the_training_process(cora, teacher):
    # each batch is sampled from a seed of its own, so which process samples it does not matter
    from dgl_ltd.sampling import neighbor_sampler, sample_in_order

    sampler = neighbor_sampler([4, 4])
    jobs = [(nodes, 100 + i) for i, nodes in enumerate(torch.randperm(cora.num_nodes()).split(700))]
    here = list(sample_in_order(sampler, cora, jobs))
    workers = list(sample_in_order(sampler, cora, jobs, num_workers=2))
    assert len(here) == len(workers) == len(jobs)
    for (nodes_a, blocks_a), (nodes_b, blocks_b) in zip(here, workers):
        assert torch.equal(nodes_a, nodes_b)
        for a, b in zip(blocks_a, blocks_b):
            assert all(torch.equal(x, y) for x, y in zip(a.edges(), b.edges()))
            assert torch.equal(a.srcdata[dgl.NID], b.srcdata[dgl.NID])
    other = list(sample_in_order(sampler, cora, [(nodes, seed + 1) for nodes, seed in jobs]))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(here, other))  # the seed does decide the sample


def test_num_workers_gives_the_same_run(cora, teacher):
    alone = run(cora, teacher, "graphsage", "ltd", fanouts=(5, 5), batch_size=256, batches_per_epoch=4, max_epochs=3)
    pooled = run(cora, teacher, "graphsage", "ltd", fanouts=(5, 5), batch_size=256, batches_per_epoch=4, max_epochs=3,
                 num_workers=2)
    assert any(h["meta_grad_norm"] for h in alone.history)
    assert torch.equal(alone.logits, pooled.logits) and torch.equal(alone.temperatures, pooled.temperatures)
    with pytest.raises(UserInputError, match=r"num_workers=2 samples neighbour blocks in worker processes; add fanouts"):
        run(cora, teacher, "graphsage", "kd", num_workers=2)
    with pytest.raises(UserInputError, match="num_workers must be >= 0"):
        run(cora, teacher, "graphsage", "kd", fanouts=(5, 5), num_workers=-1)
