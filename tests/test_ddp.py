"""Data-parallel LTD (``procs``): two gloo processes on 127.0.0.1 against one process; faults and bad input.

The rank functions are top-level so that spawned processes can import them; they import no DGL.
"""
import os
import signal
import socket
import time

import pytest
import torch
from torch import nn

from dgl_ltd.distill import DistillConfig, StepCore
from dgl_ltd.distill.core import Batch, MetaBatch, make_optimizer
from dgl_ltd.distill.launch import RankFailed, run_ranks, usable_cores
from dgl_ltd.distill.parallel import ParallelStepCore
from dgl_ltd.errors import UserInputError
from dgl_ltd.temperature import TemperatureNet

ROWS, JUDGES, FEATS, CLASSES, STEPS = 13, 9, 6, 4, 3


def _case(cfg: DistillConfig, seed: int = 0) -> tuple:
    """A float64 row student, its temperature network, a batch of ROWS rows and JUDGES judging rows."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    student = nn.Sequential(nn.Linear(FEATS, 16), nn.Tanh(), nn.Linear(16, CLASSES)).double()
    temp_net = TemperatureNet(CLASSES, 2.0, 8, 0.0, 1.0, 0.01).double()
    temp_opt = make_optimizer(cfg.optimizer, temp_net.parameters(), cfg.beta, 0.0)
    x = torch.randn(ROWS, FEATS, generator=gen, dtype=torch.float64)
    teacher = 3 * torch.randn(ROWS, CLASSES, generator=gen, dtype=torch.float64)
    labels = torch.randint(CLASSES, (ROWS,), generator=gen)
    label_mask = torch.rand(ROWS, generator=gen) < 0.4
    entropy = torch.rand(ROWS, generator=gen, dtype=torch.float64)
    kd_mask = torch.rand(ROWS, generator=gen) < 0.7 if cfg.kd_holdout else None
    judges = torch.randn(JUDGES, FEATS, generator=gen, dtype=torch.float64)
    judge_labels = torch.randint(CLASSES, (JUDGES,), generator=gen)
    batch = Batch((x,), teacher, labels, label_mask, entropy, kd_mask)
    return student, temp_net, temp_opt, batch, MetaBatch((judges,), judge_labels)


def _share(batch: Batch, meta: MetaBatch, comm) -> tuple:
    """This rank's rows of the batch and of the judging nodes."""
    rows = comm.share(torch.arange(batch.rows))
    judges = comm.share(torch.arange(meta.labels.shape[0]))
    pick = lambda t: None if t is None else t[rows]  # noqa: E731
    return (Batch((batch.inputs[0][rows],), batch.teacher[rows], batch.labels[rows], batch.label_mask[rows],
                  pick(batch.entropy), pick(batch.kd_mask)),
            MetaBatch((meta.inputs[0][judges],), meta.labels[judges]))


def _steps(core, temp_net, batch, meta) -> list:
    """STEPS learning steps; after each, the temperature network's gradient and both modules' parameters."""
    out = []
    for _ in range(STEPS):
        core.step(batch, learn=True, meta=meta)
        out.append({"meta_grad": [p.grad.clone() for p in temp_net.parameters()],
                    "student": [p.detach().clone() for p in core.params],
                    "temp_net": [p.detach().clone() for p in temp_net.parameters()]})
    return out


SETTINGS = [dict(reduction="mean", optimizer="adam", alpha=0.1),
            dict(reduction="sum", optimizer="sgd", alpha=0.05, kd_holdout=True),
            dict(reduction="mean", optimizer="adam", alpha=0.1, kd_holdout=True, meta_center=True)]


def core_rank(comm, configs):
    out = []
    for cfg in configs:
        student, temp_net, temp_opt, batch, meta = _case(cfg)
        batch, meta = _share(batch, meta, comm)
        out.append(_steps(ParallelStepCore(student, cfg, 1.0, temp_net, temp_opt, comm), temp_net, batch, meta))
    return out


def test_two_ranks_give_the_meta_gradient_of_one_process_on_the_union():
    configs = [DistillConfig(method="ltd", **settings).validate() for settings in SETTINGS]
    ranks = run_ranks(core_rank, 2, configs)  # one pair of processes for every setting
    for case, cfg in enumerate(configs):
        student, temp_net, temp_opt, batch, meta = _case(cfg)
        single = _steps(StepCore(student, cfg, 1.0, temp_net, temp_opt), temp_net, batch, meta)
        first, second = ranks[0][case], ranks[1][case]
        for step, expected in enumerate(single):
            for key in ("student", "temp_net"):  # every rank holds the same bits after each step
                assert all(torch.equal(a, b) for a, b in zip(first[step][key], second[step][key])), (case, step, key)
            for key, values in expected.items():
                gap = max(float((a - b).abs().max()) for a, b in zip(values, first[step][key]))
                assert gap < 1e-10, (case, step, key, gap)
        # a meta-gradient far above the tolerance (Adam's first step, a sign step, barely depends on tau)
        assert max(float(g.abs().max()) for g in single[-1]["meta_grad"]) > 1e-3, case


def failing_rank(comm, how):
    comm.sum([1.0])  # both ranks met
    if comm.rank == 1:
        if how == "raise":
            raise RuntimeError("the student's forward broke\nsecond line")
        if how == "user":
            raise UserInputError("a bad option; drop it")
        if how == "stall":
            time.sleep(60)
        os.kill(os.getpid(), signal.SIGKILL)
    comm.sum([2.0])  # rank 0 waits here for a peer that never comes
    return comm.rank


@pytest.mark.parametrize("how,error,needle", [
    ("raise", RankFailed, r"^rank 1 of 2 failed: RuntimeError: the student's forward broke; the run was stopped; "
                          r"rerun with procs=1"),
    ("kill", RankFailed, r"^rank 1 of 2 was killed by SIGKILL"),
    ("user", UserInputError, r"^a bad option; drop it$"),
])
def test_a_failing_rank_ends_the_run_with_one_line_in_bounded_time(how, error, needle):
    start = time.perf_counter()
    with pytest.raises(error, match=needle) as info:
        run_ranks(failing_rank, 2, how)
    assert "\n" not in str(info.value)
    assert time.perf_counter() - start < 30  # the waiting rank is stopped, not left to the 60 s gloo timeout


def test_a_stalled_rank_is_left_behind_after_the_collective_timeout():
    start = time.perf_counter()
    with pytest.raises(RankFailed, match=r"^rank 0 of 2 failed: .*; rerun with procs=1") as info:
        run_ranks(failing_rank, 2, "stall", timeout_s=3)
    assert "\n" not in str(info.value) and time.perf_counter() - start < 30


def test_procs_beyond_the_machine_or_without_mini_batches_fail_before_work(monkeypatch):
    from dgl_ltd import Distiller

    student = nn.Linear(3, 2)
    student.takes_graph = False
    with pytest.raises(UserInputError, match=f"exceeds the {usable_cores()} CPU cores"):
        Distiller(student, "kd", sampler="node", procs=usable_cores() + 1)
    with pytest.raises(UserInputError, match="procs=2 splits mini-batches over processes; add fanouts"):
        Distiller(student, "kd", procs=2)
    with pytest.raises(UserInputError, match="not sampler='cluster'"):
        Distiller(student, "kd", sampler="cluster", procs=2)
    with pytest.raises(UserInputError, match="procs must be an integer"):
        Distiller(student, "kd", sampler="node", procs=1.5)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv("MASTER_PORT", str(busy.getsockname()[1]))
        with pytest.raises(UserInputError, match="is in use on 127.0.0.1; unset MASTER_PORT"):
            Distiller(student, "kd", sampler="node", procs=2)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(UserInputError, match="torchrun started 3 processes"):
        Distiller(student, "kd", sampler="node", procs=2)


def test_procs_2_distils_cora_end_to_end(data_dir):
    pytest.importorskip("dgl")
    from dgl_ltd import Distiller
    from dgl_ltd.data import load_dataset, load_logits
    from dgl_ltd.models import build_model
    from dgl_ltd.training import set_seed

    graph = load_dataset("cora")
    teacher = load_logits(data_dir / "ltd_teacher_logits" / "cora" / "GraphSAGE.txt", graph)
    set_seed(0)
    student = build_model("graphsage", graph.ndata["feat"].shape[1], 7)
    before = [p.detach().clone() for p in student.parameters()]
    res = Distiller(student, "ltd", fanouts=(5, 5), batch_size=512, max_epochs=3, warmup=2, procs=2,
                    show_progress=False).fit(graph, teacher, seed=0)
    assert res.student is student and not all(torch.equal(a, p) for a, p in zip(before, student.parameters()))
    assert [h["batches"] for h in res.history] == [-(-graph.num_nodes() // 512)] * 3  # global batches of 512
    assert any(h["meta_grad_norm"] for h in res.history)
    assert res.temperatures.shape == (graph.num_nodes(),) and float(res.temperatures.std()) > 0
    assert res.test_acc > 0.7  # the teacher scores 0.84
    student.eval()
    with torch.no_grad():  # the logits returned are those of the weights loaded into the user's student
        logits = student.inference(graph, graph.ndata["feat"], batch_size=4096)
    assert torch.allclose(logits, res.logits, atol=1e-5)
    set_seed(0)
    pooled = Distiller(build_model("graphsage", graph.ndata["feat"].shape[1], 7), "ltd", fanouts=(5, 5),
                       batch_size=512, max_epochs=3, warmup=2, procs=2, num_workers=1,
                       show_progress=False).fit(graph, teacher, seed=0)  # each rank samples in a worker of its own
    # the same run: every rank trains a private copy of the student (the ranks once stepped one shared copy, so
    # that each update was applied twice, in a race) and samples the same batches with or without workers
    assert torch.equal(pooled.logits, res.logits) and torch.equal(pooled.temperatures, res.temperatures)


def test_cli_procs_without_mini_batches_exits_2(capsys):
    pytest.importorskip("dgl")
    from dgl_ltd.cli import main

    assert main(["distill", "--procs", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "procs=2 splits mini-batches over processes" in err and len(err.strip().splitlines()) == 1
