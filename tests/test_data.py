import csv
import os
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("dgl")

from dgl_ltd.data import (
    accuracy, canonical_name, load_dataset, load_logits, per_class_split, read_npz_csr, standardize,
)
from dgl_ltd.errors import UserInputError

PAPER = Path(__file__).resolve().parents[1] / "dgl_ltd" / "_data" / "results.csv"
FILES = {"cora": "cora", "citeseer": "citeseer", "amazon_electronics_computers": "amazon-computers",
         "amazon_electronics_photo": "amazon-photo"}
TEACHER_CELLS = [(r["dataset"], r["model"], float(r["teacher"])) for r in csv.DictReader(open(PAPER))
                 if r["dataset"] in FILES]


@pytest.fixture(scope="module")
def graphs(data_dir):
    return {paper: load_dataset(name, data_dir) for paper, name in FILES.items()}


def test_there_are_twenty_teacher_cells():
    assert len(TEACHER_CELLS) == 20


@pytest.mark.parametrize("dataset,model,expected", TEACHER_CELLS)
def test_paper_teacher_logits_score_the_published_accuracy(graphs, data_dir, dataset, model, expected):
    g = graphs[dataset]
    logits = load_logits(data_dir / "ltd_teacher_logits" / dataset / f"{model}.txt", g)
    assert round(accuracy(logits, g.ndata["label"], g.ndata["test_mask"]), 4) == expected


def test_ltd_protocol_counts_on_builtin_cora():
    g = load_dataset("cora")
    nd = g.ndata
    assert g.num_nodes() == 2485 and g.num_edges() == 10138  # largest component, symmetric, no self-loops
    assert not g.has_edges_between(torch.arange(g.num_nodes()), torch.arange(g.num_nodes())).any()
    assert int(nd["distill_mask"].sum()) == 140 and int(nd["temp_mask"].sum()) == 140
    assert int(nd["val_mask"].sum()) == 70 and int(nd["test_mask"].sum()) == 2485 - 350
    for c in range(7):  # 20 / 20 / 10 per class
        assert int((nd["distill_mask"] & (nd["label"] == c)).sum()) == 20
        assert int((nd["val_mask"] & (nd["label"] == c)).sum()) == 10
    masks = torch.stack([nd[k] for k in ("distill_mask", "temp_mask", "val_mask", "test_mask")]).int()
    assert (masks.sum(0) == 1).all()  # a partition
    assert torch.equal(nd["train_mask"], nd["distill_mask"] | nd["temp_mask"])
    assert set(torch.unique(nd["feat"]).tolist()) == {0.0, 1.0}


def test_builtin_cora_equals_shared_copy(data_dir):
    a, b = load_dataset("cora"), load_dataset("cora", data_dir)
    assert torch.equal(a.ndata["feat"], b.ndata["feat"]) and torch.equal(a.ndata["test_mask"], b.ndata["test_mask"])


def test_split_draws_like_the_papers_code():
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    rounds = per_class_split(labels, 0, counts=(2, 1))
    rs = np.random.RandomState(0)
    first0 = rs.choice(np.array([0, 2, 4, 6, 8]), 2, replace=False)
    first1 = rs.choice(np.array([1, 3, 5, 7, 9]), 2, replace=False)
    assert rounds[0].tolist() == first0.tolist() + first1.tolist()
    assert not set(rounds[1]) & set(rounds[0])


def test_random_protocol_depends_on_seed():
    a = load_dataset("cora", protocol="random", seed=1)
    b = load_dataset("cora", protocol="random", seed=2)
    assert int(a.ndata["distill_mask"].sum()) == 140
    assert not torch.equal(a.ndata["distill_mask"], b.ndata["distill_mask"])
    assert torch.equal(a.ndata["distill_mask"], load_dataset("cora", protocol="random", seed=1).ndata["distill_mask"])


def test_standardize_symmetrises_and_keeps_largest_component():
    import scipy.sparse as sp

    adj = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    attr = sp.csr_matrix(np.array([[2, 0], [0, 3], [1, 1], [5, 5]], dtype=np.float32))
    a, x, y = standardize(adj, attr, np.array([0, 1, 0, 1]))
    assert a.shape == (3, 3) and (a != a.T).nnz == 0 and a.diagonal().sum() == 0
    assert x.toarray().tolist() == [[1, 0], [0, 1], [1, 1]] and y.tolist() == [0, 1, 0]


def test_dgl_source_loads_without_writing_into_data_dir(data_dir):
    before = sorted(p.name for p in (data_dir / "cora_v2_d697a464").iterdir())
    g = load_dataset("cora", data_dir, protocol="random", source="dgl")
    assert g.num_nodes() == 2708 and int(g.ndata["val_mask"].sum()) == 70
    assert sorted(p.name for p in (data_dir / "cora_v2_d697a464").iterdir()) == before


@pytest.mark.parametrize("name", ["cora", "citeseer"])
def test_dgl_source_keeps_dgls_public_split_when_asked(data_dir, name, tmp_path, monkeypatch):
    import dgl

    from dgl_ltd.data import DATASETS

    g = load_dataset(name, data_dir, source="dgl", split="public")
    masks = {key for key in g.ndata if key.endswith("_mask")}
    assert masks == {"train_mask", "val_mask", "test_mask"}  # no V_L^D / V_L^E: the public split has none
    # the very masks (and graph) of DGL's own class, read from the scratch folder the loader filled
    _, cls_name, _ = DATASETS[name]
    raw = os.path.join(os.environ["DGL_LTD_CACHE"], "dgl_raw")
    reference = getattr(dgl.data, cls_name)(raw_dir=raw, verbose=False)[0]
    assert g.num_nodes() == reference.num_nodes() and g.num_edges() == reference.num_edges()
    for key in masks:
        assert torch.equal(g.ndata[key], reference.ndata[key].bool()), key
    # the default stays the protocol's split
    drawn = load_dataset(name, data_dir, protocol="random", source="dgl")
    assert "distill_mask" in drawn.ndata and not torch.equal(drawn.ndata["test_mask"], g.ndata["test_mask"])


@pytest.mark.parametrize("kwargs,needle", [
    (dict(name="amazon-photo", source="dgl", split="public"), "draw a split with --protocol random"),
    (dict(name="coauthor-cs", source="dgl", split="public"), "draw a split with --protocol random"),
    (dict(name="cora", split="public"), "pass source='dgl'"),
    (dict(name="cora", source="dgl", split="public", protocol="random"), "drop one of them"),
    (dict(name="cora", split="official"), "unknown split 'official'"),
])
def test_public_split_errors_are_one_line(data_dir, kwargs, needle):
    with pytest.raises(UserInputError) as info:
        load_dataset(data_dir=data_dir, **kwargs)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_split_masks_match_the_attached_split():
    from dgl_ltd.data import split_masks

    g = load_dataset("cora", protocol="random", seed=5)
    masks = split_masks(g.ndata["label"].numpy(), 5)
    assert all(torch.equal(masks[key], g.ndata[key]) for key in masks)


def test_aliases():
    assert canonical_name("amazon_electronics_computers") == "amazon-computers"
    assert canonical_name("Cora") == "cora"


@pytest.mark.parametrize("call,needle", [
    (lambda d: load_dataset("nope", d), "unknown dataset 'nope'"),
    (lambda d: load_dataset("pubmed", d), "expected file 'pubmed.npz'"),
    (lambda d: load_dataset("citeseer", None), "needs a data folder"),
    (lambda d: load_dataset("cora", d / "missing"), "does not exist"),
    (lambda d: load_dataset("cora", d, protocol="weird"), "unknown protocol"),
    (lambda d: load_dataset("cora", d, source="dgl"), "defined on the paper's npz files"),
])
def test_load_errors_are_one_line(data_dir, monkeypatch, call, needle):
    monkeypatch.delenv("DGL_LTD_DATA", raising=False)  # "needs a data folder" must not find one through it
    with pytest.raises(UserInputError) as info:
        call(data_dir)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_logits_errors(tmp_path):
    g = load_dataset("cora")
    bad = tmp_path / "bad.txt"
    np.savetxt(bad, np.zeros((5, 7)))
    with pytest.raises(UserInputError, match=r"shape \(5, 7\) but the graph needs \(2485, 7\)"):
        load_logits(bad, g)
    nan = tmp_path / "nan.npy"
    arr = np.zeros((2485, 7), dtype=np.float32)
    arr[3, 2] = np.nan
    np.save(nan, arr)
    with pytest.raises(UserInputError, match="NaN/Inf"):
        load_logits(nan, g)
    with pytest.raises(UserInputError, match="does not exist"):
        load_logits(tmp_path / "none.txt", g)


def test_nan_features_are_rejected(tmp_path, data_dir):
    src = np.load(data_dir / "npz" / "cora.npz")
    arrays = {k: src[k] for k in src.files}
    arrays["attr_data"] = arrays["attr_data"].copy()
    arrays["attr_data"][0] = np.nan
    (tmp_path / "npz").mkdir()
    np.savez(tmp_path / "npz" / "cora.npz", **arrays)
    with pytest.raises(UserInputError, match="NaN/Inf"):
        load_dataset("cora", tmp_path)


def test_empty_mask_is_an_error():
    with pytest.raises(UserInputError, match="mask is empty"):
        accuracy(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.bool))
