"""Label batches: every mini-batch step scores the label loss on labelled nodes of its own, not on the
few that its random seeds happen to hold."""
import pytest
import torch
import torch.nn.functional as F

from dgl_ltd.distill.label_batches import LabelBatches, with_label_batch
from dgl_ltd.errors import UserInputError


def test_label_batches_take_all_or_walk_a_permutation():
    pool = torch.arange(100, 110)
    assert torch.equal(LabelBatches(pool, 10).next(), pool) and torch.equal(LabelBatches(pool, 50).next(), pool)
    assert LabelBatches(pool, 0).next() is None
    torch.manual_seed(0)
    batches = LabelBatches(pool, 4)
    first, second, third = batches.next(), batches.next(), batches.next()
    assert [len(first), len(second), len(third)] == [4, 4, 4]
    assert set(first.tolist()) | set(second.tolist()) <= set(pool.tolist())
    assert not set(first.tolist()) & set(second.tolist())  # one permutation: no node twice before all came once
    assert len(set(third.tolist())) == 4  # the 2 left over are dropped, a fresh permutation is drawn


def test_with_label_batch_appends_the_labelled_nodes_not_among_the_seeds():
    rows, mask = with_label_batch(torch.tensor([5, 1, 7]), torch.tensor([1, 2, 3]))
    assert rows.tolist() == [5, 1, 7, 2, 3] and mask.tolist() == [False, True, False, True, True]
    rows, mask = with_label_batch(torch.tensor([5, 1]), None)
    assert rows.tolist() == [5, 1] and mask is None


dgl = pytest.importorskip("dgl")

from dgl_ltd import Distiller  # noqa: E402
from dgl_ltd.distill import core as core_module  # noqa: E402
from dgl_ltd.models import build_model  # noqa: E402
from dgl_ltd.ops import tempered_kd_loss  # noqa: E402
from dgl_ltd.training import set_seed  # noqa: E402


def recorded_steps(monkeypatch, cora, teacher, method="kd", **config):
    """Run a short mini-batch distillation and return its result and every step's (batch, step output)."""
    steps, step = [], core_module.StepCore.step

    def spy(self, batch, *args, **kwargs):
        out = step(self, batch, *args, **kwargs)
        steps.append((batch, out))
        return out

    monkeypatch.setattr(core_module.StepCore, "step", spy)
    set_seed(0)
    student = build_model("graphsage", cora.ndata["feat"].shape[1], 7)
    config = dict(dict(fanouts=(4, 4), batch_size=256, max_epochs=2, warmup=1, show_progress=False), **config)
    res = Distiller(student, method, **config).fit(cora, teacher, seed=0)
    return res, steps


@pytest.fixture(scope="module")
def teacher(cora_logits):
    return cora_logits("GraphSAGE")


def test_every_step_scores_all_labelled_nodes_and_kd_on_its_seeds(monkeypatch, cora, teacher):
    labelled = cora.ndata["distill_mask"].nonzero().squeeze(-1)  # V_L^D: 140 nodes, fewer than the batch size
    res, steps = recorded_steps(monkeypatch, cora, teacher, method="ltd")
    seeds_per_epoch = 0
    for batch, out in steps[:len(steps) // 2]:
        seeds = batch.seed_rows if batch.seed_rows is not None else batch.rows
        seeds_per_epoch += seeds
        assert int(batch.label_mask.sum()) == len(labelled)  # all of V_L^D, whichever seeds were drawn
        assert int(batch.kd_mask.sum()) == seeds and not bool(batch.kd_mask[seeds:].any())
        assert out.tau.shape == (batch.rows,)
    assert seeds_per_epoch == cora.num_nodes()  # each node is a KD seed once per epoch, as before
    assert res.history[0]["batches"] == len(steps) // 2


def test_a_steps_loss_is_kd_over_seeds_plus_label_loss_over_the_label_batch(monkeypatch, cora, teacher):
    _, steps = recorded_steps(monkeypatch, cora, teacher, max_epochs=1, lam=0.7, temperature=2.0)
    from dgl_ltd.distill import DistillConfig

    batch, _ = steps[0]
    student = build_model("graphsage", cora.ndata["feat"].shape[1], 7).eval()
    logits = student(*batch.inputs)
    seeds, labelled = batch.kd_mask, batch.label_mask
    assert 0 < int(labelled[:batch.seed_rows].sum()) < int(labelled.sum())  # seeds' own labelled rows count once
    kd = tempered_kd_loss(batch.teacher[seeds], torch.full((int(seeds.sum()),), 2.0), logits[seeds], reduction="mean")
    expected = kd + 0.7 * F.cross_entropy(logits[labelled], batch.labels[labelled])
    core = core_module.StepCore(student, DistillConfig(method="kd", lam=0.7, temperature=2.0), 2.0)
    assert float(core.distillation_loss(logits, batch, torch.full((batch.rows,), 2.0))) == pytest.approx(
        float(expected), rel=1e-6)


def test_label_batch_size_walks_the_labelled_nodes_or_keeps_the_seeds_own(monkeypatch, cora, teacher):
    _, steps = recorded_steps(monkeypatch, cora, teacher, max_epochs=1, label_batch_size=50)
    nodes = lambda batch: set(batch_nodes(batch)[batch.label_mask].tolist())  # noqa: E731
    first, second = nodes(steps[0][0]), nodes(steps[1][0])
    assert len(first) == len(second) == 50 and not first & second
    monkeypatch.undo()
    _, old = recorded_steps(monkeypatch, cora, teacher, max_epochs=1, label_batch_size=0)
    train = cora.ndata["distill_mask"]
    for batch, _ in old:  # the seeds' own labelled nodes, as before label batches
        assert batch.seed_rows is None and batch.kd_mask is None
        assert torch.equal(batch.label_mask, train[batch_nodes(batch)])
    assert sum(int(b.label_mask.sum()) for b, _ in old) == int(train.sum())


def batch_nodes(batch):
    """The graph's node ids of a neighbour-sampled batch's rows (its last block's destination nodes)."""
    return batch.inputs[0][-1].dstdata[dgl.NID]


@pytest.mark.parametrize("config,needle", [({"label_batch_size": -1, "fanouts": (5, 5)}, "label_batch_size must be >= 0"),
                                           ({"label_batch_size": 8}, "applies to mini-batch training")])
def test_bad_label_batch_size_is_one_line_error(config, needle):
    from dgl_ltd.distill import DistillConfig

    with pytest.raises(UserInputError, match=needle):
        DistillConfig(**config).validate()
