import pytest
import torch
from torch import nn

dgl = pytest.importorskip("dgl")

from dgl_ltd.data import accuracy
from dgl_ltd.distill import Distiller
from dgl_ltd.settings import paper_config, tuned_config
from dgl_ltd.errors import UserInputError
from dgl_ltd.models import build_model


@pytest.fixture(scope="module")
def gcn_teacher(cora_logits):
    return cora_logits("GCN")


def fit(cora, teacher, method, seed=0, model="gcn", **config):
    torch.manual_seed(seed)
    student = build_model(model, cora.ndata["feat"].shape[1], 7)
    config.setdefault("show_progress", False)
    return Distiller(student, method, **config).fit(cora, teacher, seed=seed)


def test_ltd_on_cora_beats_its_teacher(cora, gcn_teacher):
    teacher_acc = accuracy(gcn_teacher, cora.ndata["label"], cora.ndata["test_mask"])
    assert round(teacher_acc, 4) == 0.8534
    res = fit(cora, gcn_teacher, "ltd", **tuned_config("gcn", "cora", "ltd", cora))
    assert res.test_acc > teacher_acc
    assert res.temperatures.shape == (cora.num_nodes(),) and torch.isfinite(res.temperatures).all()
    learned = [h for h in res.history if h["meta_grad_norm"] is not None]
    assert learned and learned[0]["epoch"] == res.config["warmup"]
    assert res.temperatures.std() > 0  # node-specific, not one global value


def test_same_seed_same_result(cora, gcn_teacher):
    a = fit(cora, gcn_teacher, "ltd", max_epochs=30, warmup=5)
    b = fit(cora, gcn_teacher, "ltd", max_epochs=30, warmup=5)
    assert a.test_acc == b.test_acc and torch.equal(a.temperatures, b.temperatures)
    assert torch.equal(a.logits, b.logits)


def test_kd_and_ft_temperatures(cora, gcn_teacher):
    kd = fit(cora, gcn_teacher, "kd", max_epochs=5)
    ft = fit(cora, gcn_teacher, "ft", max_epochs=5, temperature=0.25)
    assert torch.all(kd.temperatures == 1.0) and torch.all(ft.temperatures == 0.25)
    # the temperature reaches the loss: same seed and student, different training
    assert kd.history[0]["loss"] != ft.history[0]["loss"] and not torch.equal(kd.logits, ft.logits)
    assert all(h["meta_grad_norm"] is None for h in kd.history + ft.history)


@pytest.mark.parametrize("push", [1.0, -1.0])
def test_learning_step_descends_the_meta_gradient(cora, gcn_teacher, monkeypatch, push):
    # a meta-gradient dL/dtau_v = push on every node: the temperature optimiser of fit must lower every
    # temperature for push > 0 (and raise them for push < 0), whatever the student does meanwhile
    import dgl_ltd.distill.core as distillers

    monkeypatch.setattr(distillers, "temperature_meta_gradient",
                        lambda jvp, sens, center=False: torch.full((sens.shape[0],), push, dtype=sens.dtype))
    res = fit(cora, gcn_teacher, "ltd", max_epochs=6, patience=100, warmup=1, beta=0.01)
    tau = [h["tau_mean"] for h in res.history]
    steps = [b - a for a, b in zip(tau[1:], tau[2:])]  # epochs 1.. learn; each step shows at the next epoch
    assert all(step * push < 0 for step in steps), steps


def test_ltd_s_learns_every_k_epochs(cora, gcn_teacher):
    res = fit(cora, gcn_teacher, "ltd-s", max_epochs=30, patience=100, warmup=4, meta_every=5)
    learned = [h["epoch"] for h in res.history if h["meta_grad_norm"] is not None]
    assert learned == [4, 9, 14, 19, 24, 29]
    # each update is used from the next epoch on, and the temperatures then stay fixed until the next one
    tau = [h["tau_mean"] for h in res.history]
    for e in learned[:-1]:
        assert tau[e + 1] != tau[e]
        assert tau[e + 1: e + 5] == [tau[e + 1]] * 4
    # the calibrated start temperature and the relative range k = 2 * T0 are recorded
    assert res.config["init_tau"] == "calibrated" and 0.01 <= res.config["resolved_init_tau"] <= 10
    assert res.config["resolved_k"] == pytest.approx(2 * res.config["resolved_init_tau"])


def test_validation_judged_ltd_needs_no_temp_mask(cora, gcn_teacher):
    g = cora.clone()
    g.ndata.pop("temp_mask")
    res = fit(g, gcn_teacher, "ltd", max_epochs=4, warmup=1, meta_on="val", calibrate_on="val")
    assert any(h["meta_grad_norm"] for h in res.history)
    auto = fit(g, gcn_teacher, "ltd", max_epochs=4, warmup=1)  # without V_L^E the validation nodes judge
    assert auto.config["meta_on"] == auto.config["calibrate_on"] == "val"
    assert torch.equal(auto.temperatures, res.temperatures)
    with pytest.raises(UserInputError, match="meta_on='temp' needs V_L\\^E: graph.ndata has no 'temp_mask'"):
        fit(g, gcn_teacher, "ltd", max_epochs=4, warmup=1, meta_on="temp")


def test_calibrate_on_picks_the_nodes_of_the_start_temperature(cora, gcn_teacher):
    from dgl_ltd.distill import calibrated_temperature

    nd = cora.ndata
    for where, mask in (("temp", nd["temp_mask"]), ("val", nd["val_mask"])):
        res = fit(cora, gcn_teacher, "ltd", max_epochs=2, calibrate_on=where)
        assert res.config["resolved_init_tau"] == calibrated_temperature(gcn_teacher, nd["label"], mask)
    # the teacher was trained on V_L^E and is over-confident there: its calibrated temperature is lower
    assert calibrated_temperature(gcn_teacher, nd["label"], nd["temp_mask"]) < calibrated_temperature(
        gcn_teacher, nd["label"], nd["val_mask"])


@pytest.mark.parametrize("holdout", [True, False])
def test_kd_holdout_hides_the_teacher_on_temp_nodes(cora, gcn_teacher, holdout):
    # teachers that differ only on V_L^E: with kd_holdout the student cannot tell them apart
    # (warm-up over the whole run, so the temperature network keeps its input-independent start)
    other = gcn_teacher.clone()
    other[cora.ndata["temp_mask"]] = other[cora.ndata["temp_mask"]].flip(-1)
    runs = [fit(cora, t, "ltd", max_epochs=8, warmup=100, init_tau=0.5, kd_holdout=holdout).logits
            for t in (gcn_teacher, other)]
    assert torch.equal(runs[0], runs[1]) == holdout


@pytest.mark.parametrize("meta_on", ["temp", "val"])
def test_kd_holdout_meta_gradient_ignores_the_judging_nodes(cora, gcn_teacher, monkeypatch, meta_on):
    import dgl_ltd.distill.core as distillers

    steps, original = [], distillers.temperature_meta_gradient
    monkeypatch.setattr(distillers, "temperature_meta_gradient",
                        lambda *a, **kw: steps.append(original(*a, **kw)) or steps[-1])
    judge = cora.ndata["temp_mask" if meta_on == "temp" else "val_mask"]
    for holdout in (True, False):
        steps.clear()
        fit(cora, gcn_teacher, "ltd", max_epochs=6, warmup=1, calibrate_on="val", kd_holdout=holdout,
            meta_on=meta_on)
        assert len(steps) == 5 and all(m[~judge].abs().max() > 0 for m in steps)
        # a judging node's temperature only acts through its KD term, which kd_holdout removes
        assert all(bool((m[judge] == 0).all()) == holdout for m in steps)


@pytest.mark.parametrize("meta_on", ["temp", "val"])
def test_meta_on_picks_the_labels_that_judge_the_temperatures(cora, gcn_teacher, meta_on):
    # with the start temperature fitted on the validation nodes, the V_L^E labels enter only
    # through the learning step: they matter with meta_on='temp' and not at all with 'val'
    nd = cora.ndata
    shuffled = nd["label"].clone()
    shuffled[nd["temp_mask"]] = (shuffled[nd["temp_mask"]] + 1) % 7
    runs = []
    for labels in (nd["label"], shuffled):
        torch.manual_seed(0)
        student = build_model("gcn", nd["feat"].shape[1], 7)
        runs.append(Distiller(student, "ltd", max_epochs=8, warmup=2, calibrate_on="val", meta_on=meta_on,
                              show_progress=False).fit(cora, gcn_teacher, labels=labels).temperatures)
    assert torch.equal(runs[0], runs[1]) == (meta_on == "val")


class UserGNN(nn.Module):
    """A student that is not one of the bundled models."""

    def __init__(self, in_feats, n_classes):
        super().__init__()
        self.conv = dgl.nn.GraphConv(in_feats, 16, allow_zero_in_degree=True)
        self.head = nn.Linear(16, n_classes)
        self.drop = nn.Dropout(0.5)

    def forward(self, graph, feat):
        return self.head(torch.relu(self.conv(graph, self.drop(feat))))


def test_any_module_student(cora, gcn_teacher):
    torch.manual_seed(0)
    student = UserGNN(cora.ndata["feat"].shape[1], 7)
    res = Distiller(student, "ltd", max_epochs=40, warmup=5, show_progress=False).fit(cora, gcn_teacher)
    assert res.student is student and res.test_acc > 0.5
    # the temperatures did learn for this user module
    assert any(h["meta_grad_norm"] for h in res.history) and float(res.temperatures.std()) > 0


def test_readme_api_example_runs():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("<!-- api-example -->", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    runs = []
    for _ in range(2):  # the example seeds everything it draws: twice the same figures
        namespace = {}
        exec(compile(block, "README-api-example", "exec"), namespace)
        runs.append(namespace["result"])
    assert 0 < runs[0].test_acc <= 1
    assert runs[0].test_acc == runs[1].test_acc and torch.equal(runs[0].temperatures, runs[1].temperatures)
    assert any(h["meta_grad_norm"] for h in runs[0].history) and float(runs[0].temperatures.std()) > 0


@pytest.mark.parametrize("kwargs,needle", [
    ({"method": "magic"}, "unknown method 'magic'"),
    ({"method": "ltd", "alpha": -1.0}, "alpha must be > 0, got -1.0"),
    ({"method": "ltd", "colour": 3}, "unknown option(s) ['colour']"),
    ({"method": "ft", "temperature": 0.0}, "temperature must be > 0"),
    ({"method": "ft", "temperature": -2.0}, "temperature must be > 0 (a negative one reverses"),
    ({"method": "ft", "temperature": "hot"}, "temperature must be a positive number or 'auto', got 'hot'"),
    ({"method": "ft", "ft_grid": (1.0, -1.0)}, "ft_grid must hold positive temperatures"),
    ({"method": "kd", "fanouts": (10, 0)}, "fanouts must be positive integers"),
    ({"method": "kd", "sampler": "magic"}, "unknown sampler 'magic'"),
    ({"method": "kd", "sampler": "neighbor"}, "the neighbour sampler needs fanouts"),
    ({"method": "kd", "batch_size": 0, "fanouts": (5,)}, "batch_size must be >= 1, got 0"),
    ({"method": "kd", "batches_per_epoch": 3}, "batches_per_epoch applies to mini-batch training"),
    ({"method": "ltd", "reduction": "max"}, "reduction must be one of"),
    ({"method": "ltd", "calibrate_on": "test"}, "calibrate_on must be one of ('auto', 'temp', 'val'), got 'test'"),
    ({"method": "kd", "kd_holdout": True}, "kd_holdout=True only applies to 'ltd' and 'ltd-s'"),
    ({"method": "ltd", "meta_on": "test"}, "meta_on must be one of ('auto', 'temp', 'val'), got 'test'"),
    ({"method": "ltd", "lam": float("nan")}, "lam must be a finite number, got nan"),
    ({"method": "ltd", "beta": float("inf")}, "beta must be a finite number, got inf"),
    ({"method": "ltd", "alpha": "0.1"}, "alpha must be a finite number, got '0.1'"),
    ({"method": "ltd", "k": float("nan")}, "k must be a finite number"),
    ({"method": "ltd", "max_epochs": 2.5}, "max_epochs must be an integer, got 2.5"),
    ({"method": "ltd", "weight_decay": -1.0}, "weight_decay must be >= 0, got -1.0"),
    ({"method": "ltd", "temp_dropout": 2.0}, "temp_dropout must be in [0, 1), got 2.0"),
    ({"method": "ltd", "temp_hidden": 0}, "temp_hidden must be >= 1, got 0"),
    ({"method": "ltd", "min_abs_tau": 0.0}, "min_abs_tau must be > 0, got 0.0"),
    ({"method": "ltd", "k": 1.0, "init_tau": 5.0}, "init_tau must lie in (-0.2k, 0.8k) = (-0.2, 0.8), got 5.0"),
])
def test_config_errors(kwargs, needle):
    method = kwargs.pop("method")
    with pytest.raises(UserInputError) as info:
        Distiller(nn.Linear(2, 2), method, **kwargs)
    assert needle in str(info.value)


def test_fit_errors(cora, gcn_teacher):
    student = build_model("gcn", cora.ndata["feat"].shape[1], 7)
    with pytest.raises(UserInputError, match="teacher logits have shape"):
        Distiller(student, "kd").fit(cora, gcn_teacher[:10])
    bad = gcn_teacher.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(UserInputError, match="NaN/Inf"):
        Distiller(student, "kd").fit(cora, bad)
    with pytest.raises(UserInputError, match="temp_mask selects no node"):
        Distiller(student, "ltd").fit(cora, gcn_teacher, temp_mask=torch.zeros(cora.num_nodes(), dtype=torch.bool))
    with pytest.raises(UserInputError, match="student must be a torch.nn.Module"):
        Distiller("gcn", "ltd")
    with pytest.raises(UserInputError, match=r"labels range over \[0, 6\] on the masked nodes but the teacher logits have 3"):
        Distiller(student, "ltd").fit(cora, gcn_teacher[:, :3])
    n = cora.num_nodes()
    with pytest.raises(UserInputError, match="val_mask has shape"):
        Distiller(student, "kd").fit(cora, gcn_teacher, val_mask=torch.ones(n - 1, dtype=torch.bool))
    with pytest.raises(UserInputError, match="node features have shape"):
        Distiller(student, "kd").fit(cora, gcn_teacher, feat=cora.ndata["feat"][:-1])
    with pytest.raises(UserInputError, match="labels have shape"):
        Distiller(student, "kd").fit(cora, gcn_teacher, labels=cora.ndata["label"][:-1])
    with pytest.raises(UserInputError, match="seed must be an integer"):
        Distiller(student, "kd").fit(cora, gcn_teacher, seed=2**40)
    with pytest.raises(UserInputError, match="test_mask must be a boolean tensor, got dtype torch.int64"):
        Distiller(student, "kd").fit(cora, gcn_teacher, test_mask=cora.ndata["test_mask"].long())
    # array-likes are accepted as teacher logits
    res = Distiller(student, "kd", max_epochs=1, show_progress=False).fit(cora, gcn_teacher.numpy())
    assert 0 <= res.test_acc <= 1


def test_numpy_inputs_give_the_tensor_result(cora, gcn_teacher):
    # features (float64 arrays too), labels, masks and teacher logits may all be NumPy arrays
    nd = cora.ndata
    runs = []
    for convert in (lambda x: x, lambda x: x.numpy()):
        torch.manual_seed(0)
        student = build_model("gcn", nd["feat"].shape[1], 7)
        runs.append(Distiller(student, "ltd", max_epochs=3, warmup=1, show_progress=False).fit(
            cora, convert(gcn_teacher), feat=convert(nd["feat"]), labels=convert(nd["label"]),
            distill_mask=convert(nd["distill_mask"]), temp_mask=convert(nd["temp_mask"]),
            val_mask=convert(nd["val_mask"]), test_mask=convert(nd["test_mask"]), seed=0))
    assert runs[0].test_acc == runs[1].test_acc
    assert torch.equal(runs[0].temperatures, runs[1].temperatures)
    # float arrays arrive in the student's dtype (float32 by default, float64 for a double student)
    for student in (build_model("gcn", nd["feat"].shape[1], 7), build_model("gcn", nd["feat"].shape[1], 7).double()):
        res = Distiller(student, "kd", max_epochs=2, show_progress=False).fit(
            cora, gcn_teacher, feat=nd["feat"].double().numpy(), labels=nd["label"].int(), seed=0)
        assert 0 <= res.test_acc <= 1


def test_api_default_temperature_rate_is_the_tuned_one():
    # the README says LTD learns its temperatures at TUNED_BETA; a bare Distiller must too
    from dgl_ltd.settings import TUNED_BETA

    assert Distiller(nn.Linear(2, 2), "ltd").config.beta == TUNED_BETA == 0.0003


def test_tuned_config_scales_the_papers_lambda(cora):
    cfg = tuned_config("gcn", "cora", "ft", cora)  # paper: T = 0.1, lambda = 50 on summed losses
    assert cfg["temperature"] == 0.1 and cfg["lam"] == pytest.approx(50 * 140 / 2485)
    assert tuned_config("gcn", "cora", "ltd", cora)["init_tau"] == "calibrated"


def test_paper_config_cells():
    cfg = paper_config("gat", "cora", "ltd")
    assert cfg["alpha"] == pytest.approx(1.68e-3) and cfg["k"] == 2 and cfg["reduction"] == "sum"
    student = {"optimizer": "sgd", "reduction": "sum", "weight_decay": 0.0, "alpha": pytest.approx(3.85e-6)}
    # the baselines train like LTD: the paper's student protocol of the cell, their own temperature
    assert paper_config("gcn", "amazon-computers", "ft") == dict(student, temperature=12.0, lam=50.0)
    assert paper_config("gcn", "amazon-computers", "kd") == dict(student, lam=100.0)
    with pytest.raises(UserInputError, match="publishes no LTD settings"):
        paper_config("gcnii", "cora", "ltd")
