"""The step core with GPU tensors: the same steps as on the CPU, and the dropout tape on the device.

These tests need a CUDA device and import no DGL (the lent GPU machines have torch with CUDA but no
DGL): the step core, the meta-gradient and the dropout tape are plain torch. Without a GPU they skip,
like the CUDA kernel tests of ``test_ops_cuda.py``.
"""
import pytest
import torch
from torch import nn

from dgl_ltd.distill import DistillConfig, StepCore
from dgl_ltd.distill.core import Batch, MetaBatch, make_optimizer
from dgl_ltd.dropout_tape import DropoutTape
from dgl_ltd.metagrad import capture_rng, directional_logits
from dgl_ltd.temperature import TemperatureNet

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
ROWS, JUDGES, FEATS, CLASSES, STEPS = 40, 12, 6, 4, 4


def _case(device: str, dropout: float = 0.0, seed: int = 0):
    """A float64 row student and temperature network on ``device``, a batch and judging rows (drawn on the CPU)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    student = nn.Sequential(nn.Linear(FEATS, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, CLASSES))
    temp_net = TemperatureNet(CLASSES, 2.0, 8, 0.0, 1.0, 0.01)
    student, temp_net = student.double().to(device), temp_net.double().to(device)
    rows = [torch.randn(ROWS, FEATS, generator=gen, dtype=torch.float64),
            3 * torch.randn(ROWS, CLASSES, generator=gen, dtype=torch.float64),
            torch.randint(CLASSES, (ROWS,), generator=gen), torch.rand(ROWS, generator=gen) < 0.4,
            torch.rand(ROWS, generator=gen, dtype=torch.float64)]
    judges = torch.randn(JUDGES, FEATS, generator=gen, dtype=torch.float64)
    judge_labels = torch.randint(CLASSES, (JUDGES,), generator=gen)
    x, teacher, labels, label_mask, entropy = (t.to(device) for t in rows)
    batch = Batch((x,), teacher, labels, label_mask, entropy)
    return student, temp_net, batch, MetaBatch((judges.to(device),), judge_labels.to(device))


def _run(device: str, method_steps: list) -> dict:
    cfg = DistillConfig(method="ltd", alpha=0.05, beta=0.01)
    student, temp_net, batch, meta = _case(device)
    core = StepCore(student, cfg, 1.0, temp_net, make_optimizer(cfg.optimizer, temp_net.parameters(), cfg.beta, 0.0))
    taus, norms = [], []
    for learn in method_steps:  # the steps between learning steps hold the last learned temperatures
        out = core.step(batch, learn=learn, refresh=False, meta=meta if learn else None)
        taus.append(out.tau.cpu())
        norms.append(out.meta_grad_norm)
    return {"tau": taus, "norms": norms, "student": [p.detach().cpu() for p in student.parameters()],
            "temp_net": [p.detach().cpu() for p in temp_net.parameters()]}


def test_ltd_steps_on_the_gpu_give_the_cpu_steps():
    schedule = [False, True, True, False, True]  # distillation steps and learning steps
    cpu, gpu = _run("cpu", schedule), _run("cuda", schedule)
    assert all(n is not None and n > 0 for n, learn in zip(gpu["norms"], schedule) if learn)
    for a, b in zip(cpu["norms"], gpu["norms"]):
        assert (a is None and b is None) or abs(a - b) <= 1e-8 * max(1.0, a)
    for name in ("tau", "student", "temp_net"):
        for a, b in zip(cpu[name], gpu[name]):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-11), name


def test_dropout_tape_on_the_gpu_replays_the_masks_the_random_state_would_draw_again():
    student, _, batch, _ = _case("cuda", dropout=0.3)
    student.train()
    names = [n for n, _ in student.named_parameters()]
    old = [p.detach().clone() for p in student.parameters()]
    direction = [torch.randn_like(p) for p in old]
    rng = capture_rng(batch.teacher.device)
    tape = DropoutTape()
    with tape.recording():
        recorded = student(*batch.inputs)
    assert len(tape.masks) == 1 and tape.masks[0].device.type == "cuda"
    after = capture_rng(batch.teacher.device)
    with_tape = directional_logits(student, names, old, direction, rng, *batch.inputs, tape=tape)
    drawn_again = directional_logits(student, names, old, direction, rng, *batch.inputs)
    assert torch.allclose(with_tape, drawn_again, rtol=1e-9, atol=1e-12)  # the same masks both ways
    assert torch.equal(capture_rng(batch.teacher.device)[1], after[1])  # the replays leave the CUDA state as it was
    with tape.replaying():
        assert torch.equal(student(*batch.inputs), recorded)
