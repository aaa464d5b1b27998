"""The mini-batch benchmarks' own helpers: the NeighborLoader-shaped subgraph, the parity and swing tables, the probe."""
import sys
from pathlib import Path

import pytest
import torch

dgl = pytest.importorskip("dgl")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from minibatch_probe import ProbedDistiller, synthetic_teacher  # noqa: E402


def test_loader_subgraph_has_the_seeds_first_and_each_sampled_node_once():
    pytest.importorskip("torch_geometric")
    from minibatch_pyg import loader_subgraph

    torch.manual_seed(0)
    src, dst = torch.randint(0, 300, (2, 3000))
    graph = dgl.graph((src, dst), num_nodes=300)
    seeds = torch.tensor([5, 17, 42])
    input_nodes, _, blocks = dgl.dataloading.NeighborSampler([4, 3]).sample(graph, seeds)
    nodes, edge_index = loader_subgraph(blocks, input_nodes, len(seeds))
    assert torch.equal(nodes[:3], seeds) and nodes.unique().numel() == nodes.numel()
    targets = set(nodes[edge_index[1]].tolist())
    assert targets >= set(seeds.tolist())  # hop 1: the seeds' neighbours
    hop1 = set(input_nodes[blocks[-1].edges()[0]].tolist()) - set(seeds.tolist())
    assert targets - set(seeds.tolist()) == hop1  # hop 2: only the nodes first reached at hop 1
    got = {(int(nodes[u]), int(nodes[v])) for u, v in edge_index.t()}
    assert got <= set(zip(src.tolist(), dst.tolist()))  # every edge is one of the graph's


def test_neighbor_loader_batches_follow_the_seed_order_dgl_samples():
    pytest.importorskip("torch_geometric")
    import argparse

    from minibatch_pyg import neighbor_loader, neighbor_loader_status, pyg_batch

    torch.manual_seed(0)
    src, dst = torch.randint(0, 300, (2, 3000))
    graph = dgl.graph((src, dst), num_nodes=300)
    graph.ndata["feat"] = torch.randn(300, 4)
    status = neighbor_loader_status(graph, (4, 3), 32)
    if status != "works":
        pytest.skip(f"PyG cannot sample here: {status}")
    seeds = torch.randperm(300)
    loader = neighbor_loader(graph, seeds, argparse.Namespace(fanouts=(4, 3), batch_size=32))
    for nodes in seeds.split(32)[:3]:
        rows = (torch.zeros(len(nodes), 3), torch.zeros(len(nodes), dtype=torch.long), torch.ones(len(nodes), dtype=torch.bool))
        batch, num_nodes, seconds = pyg_batch(loader, None, None, nodes, graph.ndata["feat"], rows)
        x, edge_index, batch_size = batch.inputs
        assert batch_size == len(nodes) and seconds > 0 and num_nodes == x.shape[0]
        assert torch.equal(x[:batch_size], graph.ndata["feat"][nodes])
        assert int(edge_index.max()) < num_nodes


def test_probe_times_every_batch_and_phase():
    from dgl_ltd.data import load_dataset
    from dgl_ltd.models import build_model

    graph = load_dataset("planted", num_nodes=3000, avg_degree=5, num_classes=3, num_feats=8, seed=0)
    teacher = synthetic_teacher(graph, seed=0)
    torch.manual_seed(0)
    distiller = ProbedDistiller(build_model("graphsage", 8, 3), "ltd-s", fanouts=(3, 3), batch_size=256,
                                batches_per_epoch=5, max_epochs=2, warmup=0, meta_every=4, show_progress=False)
    distiller.fit(graph, teacher, seed=0)
    probe = distiller.probe.summary()
    assert [e["steps"] for e in probe["epochs"]] == [5, 5]
    assert [s["learn"] for s in probe["steps"]] == [i % 4 == 0 for i in range(10)]
    assert all(0 < e["validation"] < e["seconds"] for e in probe["epochs"])
    assert set(probe["phases"]) == {"setup", "train", "final"}
    assert all(p["peak"] >= p["rss_start"] > 0 for p in probe["phases"].values())


def test_parity_table_has_a_row_per_setting_and_a_section_for_further_seeds(tmp_path, monkeypatch):
    import minibatch_parity
    import runstore
    from dgl_ltd.settings import TUNED_BETA

    monkeypatch.setattr(runstore, "git_commit", lambda: "abc1234")
    for name, value in {"DATASETS": "amazon-computers", "MODELS": "gat", "SEEDS": "0,1"}.items():
        monkeypatch.setattr(minibatch_parity, name, value)
    full = runstore.RunStore(tmp_path / minibatch_parity.FULL.name)  # reproduce.py's store, beside the parity one
    for seed in range(6):
        full.add({"dataset": "amazon-computers", "model": "gat", "method": "ltd", "seed": seed}, {"beta": TUNED_BETA},
                 {"test_acc": 0.82})
    full.add({"dataset": "amazon-computers", "model": "gat", "method": "ltd", "seed": 0}, {"beta": 0.001},
             {"test_acc": 0.5})  # an older temperature rate: not compared
    store = runstore.RunStore(tmp_path / "parity.jsonl")
    runs = [(3e-4, None, 0.80, 0.02), (3e-4, None, 0.62, -0.07), (6e-6, None, 0.81, 0.3), (6e-6, 256, 0.83, 0.4)]
    for seed, (beta, labels, acc, tau) in enumerate(runs):  # records from before label batches lack the field
        config = {"alpha": 0.001, "beta": beta, "batch_size": 256, "max_epochs": 200}
        store.add({"dataset": "amazon-computers", "model": "gat", "method": "ltd", "seed": seed % 2, "loop": "minibatch"},
                  config if labels is None else dict(config, label_batch_size=labels),
                  {"test_acc": acc, "epochs": 100, "seconds": 10.0, "tau_mean": tau})
    store.add({"dataset": "amazon-computers", "model": "gat", "method": "ltd", "seed": 5, "loop": "minibatch"},
              {"alpha": 0.001, "beta": 6e-6, "batch_size": 256, "max_epochs": 200, "label_batch_size": 256},
              {"test_acc": 0.85, "epochs": 100, "seconds": 10.0, "tau_mean": 0.5})  # a seed beyond the table's
    store.add({"dataset": "amazon-computers", "model": "gat", "method": "ltd", "seed": 0, "loop": "minibatch"},
              {"alpha": 0.001, "beta": 6e-6, "batch_size": 512, "max_epochs": 200, "label_batch_size": 256},
              {"test_acc": 0.5, "epochs": 100, "seconds": 10.0, "tau_mean": 0.5})  # another batch size: not reported
    store.add({"dataset": "amazon-computers", "model": "gat", "method": "ltd", "seed": 0, "loop": "minibatch"},
              {"alpha": 0.001, "beta": 3e-4, "batch_size": 256, "max_epochs": 600, "batches_per_epoch": 1},
              {"test_acc": 0.823, "epochs": 70, "seconds": 4.0, "tau_mean": 0.1})  # validation after every batch
    text = minibatch_parity.report(store)
    assert text.count("(6 records)") == 2  # the provenance of the runs each table uses
    rows = [line for line in text.splitlines() if line.startswith("| amazon")]
    per_epoch = "every epoch, <= 200"
    assert rows == ["| amazon-computers | gat | 0.001 | 0.0003 | 0 | every batch, <= 600 | 82.00 +- 0.00 | 82.30 +- 0.00 "
                    "| +0.30 | yes | 1 | +0.10 | 70 | 4 |",
                    f"| amazon-computers | gat | 0.001 | 0.0003 | 0 | {per_epoch} | 82.00 +- 0.00 | 71.00 +- 12.73 "
                    "| -11.00 | no | 2 | +0.02 -0.07 | 100 | 10 |",
                    f"| amazon-computers | gat | 0.001 | 6e-06 | 256 | {per_epoch} | 82.00 +- 0.00 | 83.00 +- 0.00 "
                    "| +1.00 | no | 1 | +0.40 | 100 | 10 |",
                    f"| amazon-computers | gat | 0.001 | 6e-06 | 0 | {per_epoch} | 82.00 +- 0.00 | 81.00 +- 0.00 "
                    "| -1.00 | no | 1 | +0.30 | 100 | 10 |",
                    # the further-seeds section: the one setting run beyond seeds 0-1, over its seeds 1 and 5
                    f"| amazon-computers | gat | 0.001 | 6e-06 | 256 | {per_epoch} | 82.00 +- 0.00 | 84.00 +- 1.41 "
                    "| +2.00 | no | 2 | +0.40 +0.50 | 100 | 10 |"]


def test_epoch_swing_runs_take_the_parity_settings_without_early_stopping():
    import argparse

    from dgl_ltd.data import load_dataset
    from minibatch_epoch_swing import parity_args
    from minibatch_parity import run_config

    args = argparse.Namespace(epochs=60, alpha=0.001, beta=6e-6)
    config = run_config(parity_args(args, 256), "graphsage", "cora", load_dataset("cora"))
    assert config["fanouts"] == [10, 10] and config["batch_size"] == 256 and config["label_batch_size"] == 256
    assert config["max_epochs"] == config["patience"] == 60 and "batches_per_epoch" not in config
    assert (config["alpha"], config["beta"]) == (0.001, 6e-6)


def test_epoch_swing_keeps_the_epoch_early_stopping_keeps_and_reports_the_spread():
    from minibatch_epoch_swing import kept_epoch, row

    vals = [0.5, 0.7, 0.7, 0.6, 0.9, 0.6, 0.6, 0.95]
    losses = [1.0, 0.9, 0.8, 1.0, 0.7, 1.0, 1.0, 0.5]
    history = [{"val_acc": v, "val_loss": l, "test_acc": 0.7 + 0.01 * (i % 3)} for i, (v, l) in enumerate(zip(vals, losses))]
    assert kept_epoch(history, patience=5) == 7  # a tie at 0.7 with a lower loss moves on; 0.95 comes in time
    assert kept_epoch(history, patience=2) == 4  # two epochs without a better one after epoch 4 stop it
    assert kept_epoch(history[:3], patience=5) == 2
    history = history * 4  # 32 epochs: the spread is taken from epoch 20 on
    record = {"key": {"seed": 3}, "config": {"label_batch_size": 256}, "figures": {"history": history}}
    cells = [c.strip() for c in row(record, patience=50).strip("|").split("|")]
    assert cells[:3] == ["3", "256", "32"] and cells[4] != "0.00" and cells[5] == "70.00 - 72.00"
    assert cells[7:] == ["7", "71.00"]  # its repeats (same accuracy, same loss) do not replace epoch 7
