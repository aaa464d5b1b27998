"""Start DistDGL roles: this process as a server or a trainer, or one machine's servers and trainers.

On a cluster, DGL's launch tool starts every role with environment variables (``DGL_ROLE``,
``DGL_DIST_MODE``, ``DGL_IP_CONFIG``, ``DGL_CONF_PATH``, ``DGL_NUM_SERVER``, ``DGL_NUM_CLIENT``,
``DGL_SERVER_ID``; the trainers through ``torch.distributed.run``: ``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``). :func:`start_role` reads them: a server serves its partition and
never returns; a trainer joins the gloo group of the trainers. Without ``DGL_DIST_MODE`` the run
is standalone: one process, one partition, no servers.

:func:`launch_local` plays the launch tool on one machine: one server per partition and N
trainers as subprocesses on 127.0.0.1. A trainer that fails or dies ends the others and the
servers at once; a trainer left waiting in a collective gives up after
:data:`~.launch.COLLECTIVE_TIMEOUT_S`. Servers of a second and later partition on the same machine
get a private ``/dev/shm`` (``unshare``), as each would on a machine of its own: DGL names its
shared memory by graph, so two servers of one graph on one machine would overwrite each other's.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from ..errors import UserInputError
from .launch import COLLECTIVE_TIMEOUT_S, EXIT_GRACE_S, RankFailed, rendezvous_port, usable_cores

START_TIMEOUT_S = 120  # how long a trainer waits for every role to connect
PRIVATE_SHM = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /dev/shm && exec "$0" "$@"']


def is_standalone() -> bool:
    """Whether DGL runs standalone (one process, one partition, no servers): ``DGL_DIST_MODE`` unset or so."""
    return os.environ.get("DGL_DIST_MODE", "standalone") == "standalone"


def read_ip_config(ip_config: str | None) -> list:
    """The ``(ip, port or None)`` of each machine of ``ip_config``, with a one-line error when missing."""
    if not ip_config or not Path(ip_config).is_file():
        raise UserInputError(f"--ip-config {ip_config!r} does not exist; write one line 'IP [PORT]' per machine (one "
                             f"machine per partition), see the README's DistDGL section")
    machines = []
    for line in Path(ip_config).read_text().splitlines():
        fields = line.split()
        if fields:
            port = fields[1] if len(fields) > 1 else None
            if port is not None and not port.isdigit():
                raise UserInputError(f"--ip-config {ip_config!r}: {line!r} is not 'IP [PORT]'; fix that line")
            machines.append((fields[0], None if port is None else int(port)))
    return machines


def check_cluster(ip_config: str | None, parts: int) -> None:
    """This role's view of the cluster fits the partitions: standalone needs one, a cluster one machine each."""
    if is_standalone():
        if parts != 1:
            raise UserInputError(f"standalone mode reads one partition but the graph has {parts}; start servers and "
                                 f"trainers (--local-trainers N, or DGL's launch tool: see the README) or "
                                 f"partition with --parts 1")
        return
    machines = read_ip_config(ip_config)
    if len(machines) != parts:
        raise UserInputError(f"--ip-config lists {len(machines)} machine(s) but the graph has {parts} partition(s); "
                             f"list one machine per partition")


def start_timeout_s() -> float:
    """How long a trainer may take to join the cluster: ``$DGL_LTD_START_TIMEOUT_S``, else :data:`START_TIMEOUT_S`."""
    text = os.environ.get("DGL_LTD_START_TIMEOUT_S", "")
    try:
        return float(text) if text else START_TIMEOUT_S
    except ValueError:
        raise UserInputError(f"DGL_LTD_START_TIMEOUT_S={text!r} is not a number of seconds; set e.g. 120") from None


def _give_up_after(seconds: float) -> threading.Timer:
    """A watchdog that ends this process in one line (exit 2) unless cancelled within ``seconds``.

    DGL waits without a deadline for every server and trainer to connect: a role that died while
    starting would leave the others waiting for ever.
    """
    def give_up() -> None:
        print(f"dgl-ltd: error: this trainer could not join the cluster within {seconds:g} s (a server or trainer "
              f"did not start or died); check the ip_config and every role's log, or raise DGL_LTD_START_TIMEOUT_S",
              file=sys.stderr, flush=True)
        os._exit(2)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()
    return timer


def start_role(ip_config: str | None, graph_name: str, part_config: str) -> tuple:
    """Start DistDGL in this process: a server serves and exits; a trainer gets its
    :class:`~.parallel.Comm` and the ``DistGraph`` (or gives up after :func:`start_timeout_s`)."""
    import torch.distributed as dist

    from .._compat import dgl
    from .parallel import Comm

    watchdog = None if os.environ.get("DGL_ROLE") == "server" else _give_up_after(start_timeout_s())
    dgl.distributed.initialize(ip_config or "")  # a server serves its partition here, then exits
    timeout = timedelta(seconds=COLLECTIVE_TIMEOUT_S)
    if is_standalone():
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{rendezvous_port()}", rank=0, world_size=1,
                                timeout=timeout)
    else:
        dist.init_process_group("gloo", timeout=timeout)  # RANK, WORLD_SIZE, MASTER_ADDR/PORT from the launcher
    graph = dgl.distributed.DistGraph(graph_name, part_config=part_config)
    watchdog.cancel()
    return Comm(dist.get_rank(), dist.get_world_size()), graph


def _check_ports(machines: list) -> None:
    for ip, port in machines:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((ip, port or 30050))
            except OSError:
                raise UserInputError(f"port {port or 30050} of {ip} (--ip-config) is in use; pick a free port "
                                     f"there, or drop --ip-config to let --local-trainers choose") from None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_ip_config(folder: str, ip_config: str | None, parts: int) -> str:
    """``ip_config`` checked (one local machine per partition, ports free), or a new one with free ports."""
    if ip_config is None:
        ip_config = os.path.join(folder, "ip_config.txt")
        Path(ip_config).write_text("".join(f"127.0.0.1 {_free_port()}\n" for _ in range(parts)))
    machines = read_ip_config(ip_config)
    if len(machines) != parts:
        raise UserInputError(f"--ip-config lists {len(machines)} machine(s) but the graph has {parts} partition(s); "
                             f"list one machine per partition")
    _check_ports(machines)
    return ip_config


def check_local_trainers(trainers: int, parts: int) -> None:
    """Whether this machine can run ``trainers`` trainers (and private /dev/shm for a second server)."""
    cores = usable_cores()
    if trainers > cores:
        raise UserInputError(f"--local-trainers {trainers} exceeds the {cores} CPU cores this process may use; use "
                             f"--local-trainers {cores} or fewer")
    if parts > 1 and shutil.which("unshare") is None:
        raise UserInputError(f"{parts} partitions on one machine need 'unshare' (util-linux) to give each server its "
                             f"own /dev/shm; install it, or partition with --parts 1")


def role_env(ip_config: str, part_config: str, trainers: int) -> dict:
    """The environment of one machine's roles, as DGL's launch tool sets it (``DGL_ROLE`` and ranks apart)."""
    return dict(os.environ, DGL_DIST_MODE="distributed", DGL_IP_CONFIG=ip_config, DGL_CONF_PATH=part_config,
                DGL_NUM_SERVER="1", DGL_NUM_CLIENT=str(trainers), DGL_GRAPH_FORMAT="csc", DGL_NUM_SAMPLER="0",
                DGL_GROUP_ID="0", OMP_NUM_THREADS=str(max(1, usable_cores() // trainers)))


def launch_local(command: list, part_config: str, parts: int, trainers: int, ip_config: str | None = None) -> str:
    """Run ``command`` (a ``dgl-ltd distill`` trainer) as ``parts`` servers and ``trainers`` trainers here.

    Returns rank 0's standard output. A trainer that fails ends the run with its one-line error
    (or :class:`~.launch.RankFailed` naming how it died), every other process stopped.
    """
    check_local_trainers(trainers, parts)
    with tempfile.TemporaryDirectory(prefix="dgl_ltd_dist_") as folder:
        ip_config = local_ip_config(folder, ip_config, parts)
        env = role_env(ip_config, os.path.abspath(part_config), trainers)
        servers = [_start(([] if i == 0 else PRIVATE_SHM) + command, dict(env, DGL_ROLE="server", DGL_SERVER_ID=str(i)),
                          folder, f"server-{i}") for i in range(parts)]
        master = dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(rendezvous_port()), WORLD_SIZE=str(trainers))
        ranks = [_start(command, dict(env, DGL_ROLE="client", RANK=str(r), LOCAL_RANK=str(r), **master), folder,
                        f"trainer-{r}") for r in range(trainers)]
        try:
            _wait(ranks, servers, folder)
        finally:
            for process in ranks + servers:
                _stop(process)
        return Path(folder, "trainer-0.out").read_text()


def _start(command: list, env: dict, folder: str, name: str) -> subprocess.Popen:
    with open(os.path.join(folder, f"{name}.out"), "w") as out, open(os.path.join(folder, f"{name}.err"), "w") as err:
        return subprocess.Popen(command, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


def _wait(ranks: list, servers: list, folder: str) -> None:
    """Until every trainer has exited (servers then get :data:`EXIT_GRACE_S` to follow); the first failure raises."""
    while any(p.poll() is None for p in ranks):
        _raise_first_failure(ranks, folder)
        for index, process in enumerate(servers):  # a server exits 0 once the trainers shut it down
            if process.poll() not in (None, 0):
                raise RankFailed(f"server {index} exited with code {process.returncode} before the trainers "
                                 f"finished: {_last_line(folder, f'server-{index}')}; check the partition folder")
        time.sleep(0.2)
    _raise_first_failure(ranks, folder)
    deadline = time.monotonic() + EXIT_GRACE_S
    while any(p.poll() is None for p in servers) and time.monotonic() < deadline:
        time.sleep(0.2)


def _raise_first_failure(ranks: list, folder: str) -> None:
    """The error of a failed trainer: one killed by a signal first (its peers then fail for want of it)."""
    failed = [(rank, p.returncode) for rank, p in enumerate(ranks) if p.poll() not in (None, 0)]
    if failed:
        rank, code = min(failed, key=lambda item: (item[1] >= 0, item[0]))
        raise _failure(rank, len(ranks), code, folder)


def _last_line(folder: str, name: str) -> str:
    lines = [line for line in Path(folder, f"{name}.err").read_text().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("dgl-ltd: error: ")]
    return errors[-1][len("dgl-ltd: error: "):] if errors else (lines[-1].strip() if lines else "no message")


def _failure(rank: int, world: int, code: int, folder: str) -> Exception:
    """The one-line error of trainer ``rank``: its own message, or how it died."""
    if code < 0:
        name = signal.Signals(-code).name
        return RankFailed(f"trainer {rank} of {world} was killed by {name} (out of memory?); the run was stopped; "
                          f"use fewer trainers (--local-trainers) or a smaller batch (--batch-size)")
    return UserInputError(_last_line(folder, f"trainer-{rank}"))


def trainer_command(argv: list) -> list:
    """The ``dgl-ltd`` command line a local server or trainer runs: ``argv`` without ``--local-trainers``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--local-trainers":
            skip = True
        elif not arg.startswith("--local-trainers="):
            out.append(arg)
    return [sys.executable, "-m", "dgl_ltd.cli"] + out
