"""The PyTorch Geometric twin in benchmarks/pyg computes what dgl_ltd computes.

Skipped without torch_geometric (an optional extra: ``pip install .[bench]``). With the DGL
model's weights copied into the PyG model, every forward pass (eval mode, and train mode under
the same RNG state) agrees to float rounding on Cora, and so do the neighbourhood entropy and a
few epochs of teacher training and of KD/FT/LTD/LTD-S distillation (``PyGDistiller`` runs
``dgl_ltd.distill``'s own step core and loop with PyG inputs). Bad PyG input is a one-line error.
"""
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("torch_geometric")
pytest.importorskip("dgl")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dgl  # noqa: E402
from torch_geometric.data import Data  # noqa: E402

from benchmarks.pyg.distiller import PyGDistiller  # noqa: E402
from benchmarks.pyg import training as pyg_training  # noqa: E402
from benchmarks.pyg.entropy import neighbourhood_entropy as pyg_entropy  # noqa: E402
from benchmarks.pyg.models import build_model as build_pyg  # noqa: E402
from benchmarks.pyg.transfer import copy_dgl_weights, dgl_to_pyg_state  # noqa: E402
from dgl_ltd import training as dgl_training  # noqa: E402
from dgl_ltd.data import load_dataset  # noqa: E402
from dgl_ltd.distill import Distiller  # noqa: E402
from dgl_ltd.errors import UserInputError  # noqa: E402
from dgl_ltd.entropy import neighbourhood_entropy as dgl_entropy  # noqa: E402
from dgl_ltd.models import build_model as build_dgl  # noqa: E402

MODELS = ["gcn", "gat", "graphsage", "appnp", "sgc", "gcnii"]
MASKS = ("distill_mask", "temp_mask", "val_mask", "train_mask", "test_mask")


@pytest.fixture(scope="module")
def cora():
    return load_dataset("cora")  # the built-in copy: no data folder needed


@pytest.fixture(scope="module")
def cora_pyg(cora):
    nd = cora.ndata
    src, dst = cora.edges()
    return Data(x=nd["feat"], edge_index=torch.stack([src, dst]), y=nd["label"], **{m: nd[m] for m in MASKS})


@pytest.fixture(scope="module")
def teacher_logits(cora):
    torch.manual_seed(0)
    teacher = build_dgl("gcn", cora.ndata["feat"].shape[1], 7)
    return 3.0 * dgl_training.train_teacher(teacher, cora, max_epochs=10, show_progress=False).logits


def twins(name, cora, seed=0):
    torch.manual_seed(seed)
    dgl_model = build_dgl(name, cora.ndata["feat"].shape[1], 7)
    pyg_model = build_pyg(name, cora.ndata["feat"].shape[1], 7)
    return dgl_model, copy_dgl_weights(name, dgl_model.state_dict(), pyg_model)


def close(a, b, rel=1e-5):
    return float((a - b).abs().max()) <= rel * max(1.0, float(a.abs().max()))


@pytest.mark.parametrize("name", MODELS)
def test_forward_matches_dgl_with_the_same_weights(name, cora, cora_pyg):
    dgl_model, pyg_model = twins(name, cora)
    dgl_model.eval(), pyg_model.eval()
    with torch.no_grad():
        a, b = dgl_model(cora, cora.ndata["feat"]), pyg_model(cora_pyg.x, cora_pyg.edge_index)
    assert a.shape == b.shape == (cora.num_nodes(), 7)
    assert float(a.std()) > 0 and close(a, b)
    # train mode: same RNG state, same dropout masks (GAT's attention masks too), same output
    dgl_model.train(), pyg_model.train()
    torch.manual_seed(123)
    a = dgl_model(cora, cora.ndata["feat"])
    torch.manual_seed(123)
    b = pyg_model(cora_pyg.x, cora_pyg.edge_index)
    assert close(a, b, rel=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_pyg_model_has_no_parameter_left_out_of_the_transfer(name, cora):
    dgl_model, pyg_model = twins(name, cora)
    mapped = dgl_to_pyg_state(name, dgl_model.state_dict())
    assert set(mapped) == set(pyg_model.state_dict())
    assert sum(p.numel() for p in dgl_model.parameters()) == sum(p.numel() for p in pyg_model.parameters())


def test_transfer_rejects_an_unknown_parameter():
    with pytest.raises(KeyError):
        dgl_to_pyg_state("gcn", {"layers.0.weight": torch.zeros(2, 3), "layers.0.res_fc.weight": torch.zeros(3, 3)})


def test_entropy_matches_dgl(cora, cora_pyg):
    logits = torch.randn(cora.num_nodes(), 7, generator=torch.Generator().manual_seed(0)) * 3
    a = dgl_entropy(cora, logits)
    b = pyg_entropy(cora_pyg.edge_index, logits)
    assert torch.allclose(a, b, atol=1e-6)
    # self-loops ignored, isolated node gets log C, a node whose only edge is a self-loop too
    src, dst = torch.tensor([0, 1, 2, 3]), torch.tensor([1, 0, 2, 2])
    small = torch.tensor([[9.0, 0.0], [0.0, 9.0], [1.0, 1.0], [5.0, -5.0], [0.0, 0.0]])
    g = dgl.graph((src, dst), num_nodes=5)
    b = pyg_entropy(torch.stack([src, dst]), small)
    assert torch.allclose(dgl_entropy(g, small), b, atol=1e-6)
    assert b[4] == pytest.approx(math.log(2)) and b[3] == pytest.approx(math.log(2))
    assert b[2] == pytest.approx(0.0, abs=1e-3)  # only neighbour (3) is confident; its own self-loop is ignored


def test_teacher_training_matches(cora, cora_pyg):
    dgl_model, pyg_model = twins("gcn", cora, seed=3)
    a = dgl_training.train_teacher(dgl_model, cora, max_epochs=6, patience=100, seed=3, show_progress=False)
    b = pyg_training.train_teacher(pyg_model, cora_pyg, max_epochs=6, patience=100, seed=3)
    for x, y in zip(a.history, b.history):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-4) and x["val_acc"] == y["val_acc"]
    assert close(a.logits, b.logits, rel=1e-4)


@pytest.mark.parametrize("method,extra", [
    ("kd", {}),
    ("ft", {"ft_grid": (0.5, 2.0)}),  # FT's grid search: two runs, the better on validation wins
    ("ltd", {"warmup": 2}),
    ("ltd", {"warmup": 1, "kd_holdout": True, "meta_on": "val"}),
    ("ltd-s", {"warmup": 1, "meta_every": 3}),  # learns at epochs 1 and 4 only
])
def test_distillation_trajectory_matches(method, extra, cora, cora_pyg, teacher_logits):
    """The same seed, weights and settings give the DGL and the PyG student the same run, epoch by epoch."""
    config = dict(max_epochs=5, patience=100, alpha=0.01, beta=0.01, show_progress=False, **extra)  # k: the default
    dgl_model, pyg_model = twins("gcn", cora, seed=1)
    a = Distiller(dgl_model, method, **config).fit(cora, teacher_logits, seed=5)
    b = PyGDistiller(pyg_model, method, **config).fit(cora_pyg, teacher_logits, seed=5)
    assert len(a.history) == len(b.history) == a.epochs == b.epochs == 5
    for x, y in zip(a.history, b.history):
        assert x["val_acc"] == y["val_acc"]
        for key in ("loss", "val_loss"):
            assert x[key] == pytest.approx(y[key], rel=1e-5)
        assert x["tau_mean"] == pytest.approx(y["tau_mean"], rel=1e-4)
        assert x["tau_std"] == pytest.approx(y["tau_std"], rel=1e-3, abs=1e-6)
        assert (x["meta_grad_norm"] is None) == (y["meta_grad_norm"] is None)
        if x["meta_grad_norm"] is not None:
            assert x["meta_grad_norm"] == pytest.approx(y["meta_grad_norm"], rel=2e-3)
    if method in ("ltd", "ltd-s"):
        assert any(h["meta_grad_norm"] for h in a.history)  # the temperatures did learn
        assert float(a.temperatures.std()) > 0
    assert (a.best_epoch, a.val_acc, a.test_acc) == (b.best_epoch, b.val_acc, b.test_acc)
    resolved = ("temperature", "resolved_temperature", "resolved_init_tau", "resolved_k", "meta_on", "calibrate_on")
    assert {k: a.config.get(k) for k in resolved} == {k: b.config.get(k) for k in resolved}
    if method == "ft":
        assert [t["val_acc"] for t in a.config["ft_trials"]] == [t["val_acc"] for t in b.config["ft_trials"]]
    assert torch.allclose(a.temperatures, b.temperatures, rtol=1e-3, atol=1e-5)
    assert close(a.logits, b.logits, rel=1e-4)


@pytest.mark.parametrize("change,expected", [
    ({"edge_index": torch.zeros(3, 4, dtype=torch.long)}, "(2, E)"),
    ({"edge_index": torch.tensor([[0, 1], [1, 5000]])}, "pass ids in [0, 2485)"),
    ({"edge_index": torch.zeros(2, 4)}, "int64"),
    ({"val_mask": None}, "data.val_mask"),
    ({"distill_mask": None, "train_mask": None}, "train_mask"),
    ({"y": torch.zeros(5, dtype=torch.long)}, "labels have shape (5,)"),
])
def test_bad_pyg_input_is_one_line_before_training(change, expected, cora_pyg, teacher_logits):
    data = cora_pyg.clone()
    for key, value in change.items():
        data[key] = value
    student = build_pyg("gcn", cora_pyg.x.shape[1], 7)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    with pytest.raises(UserInputError) as err:
        PyGDistiller(student, "ltd", max_epochs=2, show_progress=False).fit(data, teacher_logits)
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())


def test_pyg_twin_refuses_minibatch_settings():
    with pytest.raises(UserInputError, match="full-graph only"):
        PyGDistiller(torch.nn.Linear(2, 2), "kd", fanouts=(10, 10))


def test_pyg_modules_do_not_import_dgl():
    code = ("import sys; import benchmarks.pyg.distiller, benchmarks.pyg.models, benchmarks.pyg.worker; "
            "assert 'dgl' not in sys.modules, 'dgl was imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
