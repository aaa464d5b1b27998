"""DistDGL: partitions with the inputs of distillation, standalone and server + trainers runs, bad input, faults.

The runs start real DistDGL roles as subprocesses of the ``dgl-ltd`` command on 127.0.0.1 (no ssh),
with the environment variables DGL's launch tool sets; every subprocess has a timeout.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

dgl = pytest.importorskip("dgl")

from dgl_ltd.cli import main  # noqa: E402
from dgl_ltd.errors import UserInputError  # noqa: E402
from dgl_ltd.partition import (ENTROPY_KEY, META_NAME, ORIG_ID_KEY, TEACHER_KEY,  # noqa: E402
                               partition_for_distillation)

ROOT = Path(__file__).resolve().parents[1]
TEACHERS = {"gcn": "GCN", "graphsage": "GraphSAGE"}
RUN = ["--fanouts", "5,5", "--batch-size", "512", "--warmup", "1", "--quiet", "--json"]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DGL_ROLE", "DGL_DIST_MODE", "MASTER_", "RANK"))}
    return dict(env, PYTHONPATH=str(ROOT), OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1", **extra)


def _dgl_ltd(args: list, timeout: float, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dgl_ltd.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=_env(**env))


def _partition(data_dir, out: Path, parts: int, model: str) -> Path:
    from dgl_ltd.data import load_dataset, load_logits
    from dgl_ltd.models import MODELS

    graph = load_dataset("cora", data_dir)
    name = TEACHERS[model]
    teacher = load_logits(Path(data_dir) / "ltd_teacher_logits" / "cora" / f"{name}.txt", graph)
    info = {"dataset": "cora", "protocol": "ltd", "split": "protocol", "model": model, "teacher": name,
            "teacher_test_acc": 0.85}
    return partition_for_distillation(graph, teacher, out, parts, MODELS[model].self_loop, info, graph_name="cora")


@pytest.fixture(scope="module")
def parts(data_dir, tmp_path_factory):
    """Partition configs of cora: ``parts(count, model)``, made once each."""
    made = {}

    def get(count: int, model: str = "graphsage") -> Path:
        if (count, model) not in made:
            made[count, model] = _partition(data_dir, tmp_path_factory.mktemp("parts") / "cora", count, model)
        return made[count, model]

    return get


def test_partitions_hold_the_teacher_entropy_masks_and_self_loops_by_original_id(data_dir, parts):
    from dgl_ltd.data import load_dataset, load_logits
    from dgl_ltd.entropy import neighbourhood_entropy
    from dgl_ltd.models import IN_DEGREE_KEY, OUT_DEGREE_KEY, add_self_loops

    config = parts(2, "gcn")
    graph = load_dataset("cora", data_dir)
    teacher = load_logits(Path(data_dir) / "ltd_teacher_logits" / "cora" / "GCN.txt", graph)
    entropy, looped = neighbourhood_entropy(graph, teacher), add_self_loops(graph)
    meta = json.loads((config.parent / META_NAME).read_text())
    assert meta["num_nodes"] == graph.num_nodes() and meta["self_loop"] and meta["parts"] == 2
    assert meta["distill_count"] == int(graph.ndata["distill_mask"].sum())
    seen, edges = [], 0
    for part in range(2):
        local, stored, *_ = dgl.distributed.load_partition(str(config), part)
        nodes = {key.split("/", 1)[1]: value for key, value in stored.items()}  # '_N/feat' -> 'feat'
        orig = nodes[ORIG_ID_KEY]
        seen.append(orig)
        edges += int(local.edata["inner_edge"].sum())
        assert torch.allclose(nodes[TEACHER_KEY], teacher[orig]) and torch.allclose(nodes[ENTROPY_KEY], entropy[orig])
        for key in ("distill_mask", "temp_mask", "val_mask", "test_mask"):
            assert torch.equal(nodes[key].bool(), graph.ndata[key][orig]), key
        for key in (IN_DEGREE_KEY, OUT_DEGREE_KEY):
            assert torch.equal(nodes[key], looped.ndata[key][orig]), key
    assert torch.equal(torch.cat(seen).sort().values, torch.arange(graph.num_nodes()))  # every node once
    assert edges == looped.num_edges()  # one self-loop per node was added before partitioning
    assert TEACHER_KEY not in graph.ndata  # the caller's graph is left as it was


def test_partition_cli_writes_the_folder_whole_or_not_at_all(data_dir, tmp_path, capsys, monkeypatch):
    argv = ["partition", "--data-dir", str(data_dir), "--parts", "1", "--model", "graphsage", "--json"]
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "a").write_text("x")
    assert main(argv + ["--out", str(taken)]) == 2
    err = capsys.readouterr().err
    assert "is not empty; give a new folder" in err and len(err.strip().splitlines()) == 1

    def broken(*args, **kwargs):
        Path(args[3], "cora.json").write_text("{}")  # half written, then the partitioner fails
        raise KeyboardInterrupt

    assert main(argv + ["--out", str(tmp_path / "made")]) == 0
    made = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert made["part_config"] == str(tmp_path / "made" / "cora.json") and made["teacher_test_acc"] > 0.8
    assert sorted(p.name for p in (tmp_path / "made").iterdir()) == ["cora.json", META_NAME, "part0"]
    monkeypatch.setattr(dgl.distributed, "partition_graph", broken)
    assert main(argv + ["--out", str(tmp_path / "new")]) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["made", "taken"]  # neither the folder nor its staging copy


def test_standalone_mode_distils_cora_from_one_partition(data_dir, parts, tmp_path):
    from dgl_ltd.models import build_model

    start = time.perf_counter()
    out = _dgl_ltd(["distill", "--part-config", parts(1), "--data-dir", data_dir, "--model", "graphsage",
                    "--max-epochs", "3", "--save-student", tmp_path / "student.pt", *RUN], timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["trainers"] == 1 and result["parts"] == 1 and result["start_temperature"] > 0
    assert result["test_acc"] > 0.7  # the teacher scores 0.84; three epochs of LTD
    build_model("graphsage", 1433, 7).load_state_dict(torch.load(tmp_path / "student.pt"))
    assert time.perf_counter() - start < 60


@pytest.mark.parametrize("count,model", [(1, "graphsage"), (2, "gcn")])
def test_servers_and_two_trainers_distil_cora_on_loopback(data_dir, parts, tmp_path, count, model):
    """One server (one partition), or two servers of two partitions (METIS) with GCN's self-loops."""
    from dgl_ltd.data import load_dataset, load_logits
    from dgl_ltd.distill.start import calibrated_temperature

    start = time.perf_counter()
    out = _dgl_ltd(["distill", "--part-config", parts(count, model), "--data-dir", data_dir, "--model", model,
                    "--max-epochs", "3", "--local-trainers", "2", "--save-student", tmp_path / "s.pt", *RUN],
                   timeout=150)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["trainers"] == 2 and result["parts"] == count and result["test_acc"] > 0.7
    graph = load_dataset("cora", data_dir)  # the trainers' test nodes are disjoint and cover the test set
    assert result["test_nodes"] == int(graph.ndata["test_mask"].sum())
    teacher = load_logits(Path(data_dir) / "ltd_teacher_logits" / "cora" / f"{TEACHERS[model]}.txt", graph)
    # the start temperature is calibrated on every trainer's V_L^E together, as in one process
    assert result["start_temperature"] == round(calibrated_temperature(teacher, graph.ndata["label"],
                                                                       graph.ndata["temp_mask"]), 6)
    assert (tmp_path / "s.pt").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["s.pt"]
    assert time.perf_counter() - start < 90


@pytest.mark.parametrize("extra,needle", [
    (["--dataset", "citeseer"], "holds dataset 'cora' but --dataset is 'citeseer'; pass --dataset cora"),
    (["--model", "gcn"], "made without self-loops but --model gcn wants the opposite; partition again"),
    (["--local-trainers", "999"], "--local-trainers 999 exceeds the"),
    (["--procs", "2"], "--procs does not apply with --part-config"),
])
def test_a_partition_that_does_not_fit_the_run_is_one_line_and_exit_2(parts, data_dir, capsys, extra, needle):
    argv = ["distill", "--part-config", str(parts(1)), "--data-dir", str(data_dir), "--model", "graphsage", *RUN]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_missing_configs_and_standalone_with_two_parts_are_one_line(parts, data_dir, capsys, monkeypatch, tmp_path):
    base = ["distill", "--data-dir", str(data_dir), "--model", "graphsage", *RUN]
    cases = [(["--part-config", str(tmp_path / "none.json")], "does not exist; make it with 'dgl-ltd partition"),
             (["--part-config", str(parts(2))], "standalone mode reads one partition but the graph has 2")]
    for extra, needle in cases:
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("DGL_DIST_MODE", "distributed")
    assert main(base + ["--part-config", str(parts(1)), "--ip-config", str(tmp_path / "ip.txt")]) == 2
    err = capsys.readouterr().err
    assert "ip.txt' does not exist; write one line 'IP [PORT]' per machine" in err and len(err.splitlines()) == 1
    (tmp_path / "ip.txt").write_text("127.0.0.1 30050\n127.0.0.1 30051\n")
    assert main(base + ["--part-config", str(parts(1)), "--ip-config", str(tmp_path / "ip.txt")]) == 2
    err = capsys.readouterr().err
    assert "lists 2 machine(s) but the graph has 1 partition(s)" in err and len(err.splitlines()) == 1


def test_a_port_in_use_is_one_line_before_any_process_starts(parts, data_dir, capsys, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ip_config = tmp_path / "ip.txt"
        ip_config.write_text(f"127.0.0.1 {port}\n")
        start = time.perf_counter()
        assert main(["distill", "--part-config", str(parts(1)), "--data-dir", str(data_dir), "--model", "graphsage",
                     "--local-trainers", "2", "--ip-config", str(ip_config), *RUN]) == 2
    err = capsys.readouterr().err
    assert f"port {port} of 127.0.0.1 (--ip-config) is in use; pick a free port" in err
    assert len(err.strip().splitlines()) == 1 and time.perf_counter() - start < 5


def _wait_for_an_epoch(log: Path, process, timeout: float = 90) -> None:
    """Until trainer 0's progress bar (stderr in ``log``) shows a finished epoch: the run is mid-training."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if log.is_file() and "| 1/500 " in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"no epoch finished: {log.read_text()[-2000:] if log.is_file() else 'no log'}")


def _trainers_of(launcher: int) -> list:
    """The trainer processes (DGL_ROLE=client) started by process ``launcher``."""
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(launcher)], capture_output=True, text=True).stdout
    out = []
    for pid in map(int, children.split()):
        try:
            if b"DGL_ROLE=client" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                out.append(pid)
        except OSError:
            pass
    return out


def test_a_trainer_killed_mid_run_ends_the_run_in_bounded_time(parts, data_dir, tmp_path):
    outputs, scratch = tmp_path / "out", tmp_path / "tmp"
    outputs.mkdir()
    scratch.mkdir()
    argv = ["distill", "--part-config", parts(1), "--data-dir", data_dir, "--model", "graphsage", "--max-epochs",
            "500", "--patience", "500", "--local-trainers", "2", "--save-student", outputs / "s.pt",
            *[a for a in RUN if a != "--quiet"]]
    launcher = subprocess.Popen([sys.executable, "-m", "dgl_ltd.cli", *map(str, argv)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_env(TMPDIR=str(scratch)))
    try:
        deadline = time.monotonic() + 60
        while not list(scratch.glob("dgl_ltd_dist_*/trainer-0.err")) and time.monotonic() < deadline:
            time.sleep(0.2)
        _wait_for_an_epoch(next(scratch.glob("dgl_ltd_dist_*/trainer-0.err")), launcher)
        trainers = _trainers_of(launcher.pid)
        assert len(trainers) == 2
        os.kill(trainers[1], signal.SIGKILL)
        killed = time.perf_counter()
        _, err = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 2 and time.perf_counter() - killed < 15
    assert "was killed by SIGKILL" in err and len(err.strip().splitlines()) == 1, err
    assert list(outputs.iterdir()) == [] and list(scratch.iterdir()) == []  # no output; the launcher's folder gone
    assert _trainers_of(launcher.pid) == [] and all(not Path(f"/proc/{pid}").exists() for pid in trainers)


def test_read_partition_meta_refuses_a_folder_dgl_ltd_did_not_make(tmp_path):
    from dgl_ltd.partition import read_partition_meta

    (tmp_path / "g.json").write_text(json.dumps({"num_parts": 1}))
    with pytest.raises(UserInputError, match="was not made by 'dgl-ltd partition'"):
        read_partition_meta(tmp_path / "g.json")


def test_under_a_launcher_a_trainer_whose_peer_dies_exits_2_at_once(parts, data_dir, tmp_path):
    """No --local-trainers: roles started as DGL's launch tool starts them; the survivor must not wait."""
    from dgl_ltd.distill.dist_launch import local_ip_config, role_env, trainer_command

    ip_config = local_ip_config(str(tmp_path), None, 1)
    env = dict(role_env(ip_config, str(parts(1)), 2), **{k: v for k, v in _env().items() if k.startswith(("PYTHON", "OMP"))})
    command = trainer_command(["distill", "--part-config", str(parts(1)), "--data-dir", str(data_dir), "--model",
                               "graphsage", "--max-epochs", "500", "--patience", "500",
                               *[a for a in RUN if a != "--quiet"]])
    master = dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
                  WORLD_SIZE="2")
    roles = [subprocess.Popen(command, env=dict(env, DGL_ROLE="server", DGL_SERVER_ID="0"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    logs = [tmp_path / f"trainer-{r}.err" for r in range(2)]
    roles += [subprocess.Popen(command, env=dict(env, DGL_ROLE="client", RANK=str(r), **master),
                               stdout=subprocess.DEVNULL, stderr=logs[r].open("w")) for r in range(2)]
    try:
        _wait_for_an_epoch(logs[0], roles[1])
        roles[2].kill()
        killed = time.perf_counter()
        roles[1].wait(timeout=70)
        assert roles[1].returncode == 2 and time.perf_counter() - killed < 15
        errors = [line for line in logs[0].read_text().splitlines() if line.startswith("dgl-ltd: error: ")]
        assert len(errors) == 1 and errors[0].startswith("dgl-ltd: error: trainer 0 of 2: "), errors
    finally:
        for process in roles:
            process.kill()
            process.wait()


def test_a_trainer_whose_peer_never_starts_gives_up_in_one_line(parts, data_dir, tmp_path):
    from dgl_ltd.distill.dist_launch import local_ip_config, role_env, trainer_command

    ip_config = local_ip_config(str(tmp_path), None, 1)
    env = dict(role_env(ip_config, str(parts(1)), 2), **{k: v for k, v in _env().items() if k.startswith(("PYTHON", "OMP"))})
    command = trainer_command(["distill", "--part-config", str(parts(1)), "--data-dir", str(data_dir), "--model",
                               "graphsage", *RUN])
    server = subprocess.Popen(command, env=dict(env, DGL_ROLE="server", DGL_SERVER_ID="0"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:  # trainer 1 of 2 never comes
        start = time.perf_counter()
        alone = subprocess.run(command, env=dict(env, DGL_ROLE="client", RANK="0", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                                                 MASTER_PORT=str(_free_port()), DGL_LTD_START_TIMEOUT_S="4"),
                               capture_output=True, text=True, timeout=60)
    finally:
        server.kill()
        server.wait()
    errors = [line for line in alone.stderr.splitlines() if line.startswith("dgl-ltd: error: ")]
    assert alone.returncode == 2 and errors == [errors[0]] and "could not join the cluster within 4 s" in errors[0]
    assert time.perf_counter() - start < 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
