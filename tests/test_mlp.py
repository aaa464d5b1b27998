"""The MLP student (GLNN setting): full-graph and row batches, LTD learns its temperatures, bad input."""
import json

import numpy as np
import pytest
import torch

dgl = pytest.importorskip("dgl")

from dgl_ltd import Distiller
from dgl_ltd.cli import main
from dgl_ltd.data import load_dataset, load_logits
from dgl_ltd.errors import UserInputError
from dgl_ltd.inductive import inductive_split
from dgl_ltd.models import MLP, build_model, build_teacher, glnn_mlp
from dgl_ltd.training import set_seed


@pytest.fixture(scope="module")
def cora():
    return load_dataset("cora")


@pytest.fixture(scope="module")
def teacher(cora, data_dir):
    return load_logits(data_dir / "ltd_teacher_logits" / "cora" / "GraphSAGE.txt", cora)


def test_mlp_builds_and_reads_only_features():
    set_seed(0)
    mlp = build_model("mlp", 6, 3, hidden=16, num_layers=3, norm="layer").eval()
    assert [layer.out_features for layer in mlp.layers] == [16, 16, 3]
    x = torch.randn(10, 6)
    graph = dgl.rand_graph(10, 30)
    assert torch.equal(mlp(graph, x), mlp(x))  # the graph is not read
    assert torch.allclose(mlp.inference(graph, x, batch_size=3), mlp(x), atol=1e-6)  # batched, same rows
    assert torch.allclose(mlp(x[4:7]), mlp(x)[4:7], atol=1e-6)  # a row's logits depend on that row only
    assert build_teacher("mlp", 6, 3).num_layers == 2
    preset = glnn_mlp(6, 3, "cora")
    assert preset.dropout.p == 0.6 and preset.layers[0].out_features == 128


@pytest.mark.parametrize("kwargs", [{"num_layers": 1}, {"num_layers": 3, "norm": "batch"}, {"norm": "layer"}])
def test_mlp_inference_gives_the_eval_logits_and_leaves_the_module_as_it_was(kwargs):
    set_seed(0)
    mlp = MLP(6, 3, hidden=16, dropout=0.5, **kwargs)
    mlp.train()(torch.randn(32, 6) + 2.0)  # batch norm: running statistics away from their start
    state = {k: v.clone() for k, v in mlp.state_dict().items()}
    x = torch.randn(11, 6)
    logits = mlp.inference(None, x, batch_size=4)
    assert mlp.training and all(torch.equal(v, mlp.state_dict()[k]) for k, v in state.items())
    assert torch.allclose(logits, mlp.eval()(x), atol=1e-6) and logits.shape == (11, 3)
    assert mlp.inference(None, x[:0]).shape == (0, 3)
    with pytest.raises(UserInputError, match="build it with in_feats=5"):
        mlp.inference(None, torch.randn(4, 5))


def test_mlp_inference_under_autocast_gives_the_forwards_dtype_and_logits():
    set_seed(0)
    mlp = MLP(6, 3, hidden=16, num_layers=3).eval()
    x = torch.randn(11, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, expected = mlp.inference(None, x, batch_size=4), mlp(x)
        empty = mlp.inference(None, x[:0])
    assert logits.dtype == expected.dtype == empty.dtype == torch.bfloat16
    assert torch.equal(logits, expected)


def test_mlp_trains_with_batch_norm_on_rows():
    set_seed(0)
    mlp = MLP(4, 2, hidden=8, norm="batch")
    before = mlp.norms[0].running_mean.clone()
    mlp(torch.randn(16, 4) + 3.0)
    assert not torch.equal(before, mlp.norms[0].running_mean)


@pytest.mark.parametrize("kwargs,needle", [({"norm": "group"}, "norm must be one of"),
                                           ({"dropout": 1.0}, "dropout must be in [0, 1)"),
                                           ({"num_layers": 0}, "num_layers must be a positive int")])
def test_bad_mlp_settings(kwargs, needle):
    with pytest.raises(UserInputError, match=needle.replace("[", r"\[").replace(")", r"\)")):
        MLP(4, 2, **kwargs)


def test_bad_mlp_inputs():
    mlp = MLP(4, 2)
    with pytest.raises(UserInputError, match=r"expects \(N, 4\) features, got \(3, 5\)"):
        mlp(torch.randn(3, 5))
    with pytest.raises(UserInputError, match="GLNN publishes no MLP preset"):
        glnn_mlp(4, 2, "pubmed-x")


@pytest.mark.parametrize("config", [{}, {"sampler": "node", "batch_size": 512}])
def test_ltd_with_mlp_student_learns_temperatures(cora, teacher, config):
    set_seed(0)
    student = build_model("mlp", cora.ndata["feat"].shape[1], 7)
    res = Distiller(student, "ltd", max_epochs=8, warmup=2, beta=0.01, show_progress=False, **config).fit(
        cora, teacher, seed=0)
    assert any(h["meta_grad_norm"] for h in res.history)
    start = res.config["resolved_init_tau"]
    assert res.temperatures.shape == (cora.num_nodes(),)
    assert float((res.temperatures - start).abs().max()) > 1e-3 * start  # the temperatures moved from T0
    assert float(res.temperatures.std()) > 0  # ... and differ from node to node
    assert res.test_acc > 0.5  # an MLP alone reaches about 0.6 on cora; a few distilled epochs already beat 0.5


def test_mlp_refuses_sampled_blocks():
    with pytest.raises(UserInputError, match=r"sampler='node' \(--sampler node\)"):
        Distiller(MLP(4, 2), "kd", fanouts=(5, 5))


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_mlp_student_on_node_batches(capsys, data_dir):
    logits = str(data_dir / "ltd_teacher_logits" / "cora" / "GCN.txt")
    code, out, err = run_cli(capsys, "distill", "--model", "mlp", "--method", "ltd", "--teacher-logits", logits,
                             "--sampler", "node", "--max-epochs", "3", "--warmup", "1", "--json", "--quiet")
    assert code == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["model"] == "mlp" and 0.3 < res["test_acc"] <= 1


@pytest.mark.parametrize("extra,needle", [
    (["--fanouts", "10,10"], "--sampler node"),
    ([], "--teacher-logits FILE or --teacher-model M"),
])
def test_cli_mlp_bad_input_exits_2(capsys, data_dir, extra, needle):
    logits = ["--teacher-logits", str(data_dir / "ltd_teacher_logits" / "cora" / "GCN.txt")] if extra else []
    code, out, err = run_cli(capsys, "distill", "--model", "mlp", *logits, *extra, "--quiet")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_teacher_with_other_class_count_exits_2(capsys, data_dir, tmp_path):
    wrong = tmp_path / "eight_classes.npy"
    np.save(wrong, np.zeros((2485, 8), dtype=np.float32))  # cora has 7 classes
    code, _, err = run_cli(capsys, "distill", "--model", "mlp", "--teacher-logits", str(wrong), "--quiet")
    assert code == 2 and "(2485, 8) but the graph needs (2485, 7)" in err and len(err.strip().splitlines()) == 1


def test_inductive_split_holds_out_a_seeded_share(cora):
    observed, held_out = inductive_split(cora, 0.2, seed=3)
    test = cora.ndata["test_mask"]
    assert bool(test[held_out].all()) and len(held_out) == round(0.2 * int(test.sum()))
    assert len(np.intersect1d(observed.numpy(), held_out.numpy())) == 0
    assert len(observed) + len(held_out) == cora.num_nodes()
    assert torch.equal(held_out, inductive_split(cora, 0.2, seed=3)[1])
    assert not torch.equal(held_out, inductive_split(cora, 0.2, seed=4)[1])


@pytest.mark.parametrize("share", [0, 1, 1.5, -0.1, True])
def test_inductive_share_outside_0_1_is_refused(cora, share):
    with pytest.raises(UserInputError, match=r"must lie in \(0, 1\)"):
        inductive_split(cora, share)
