"""Start a data-parallel run: ``procs`` processes on this machine, or the ranks ``torchrun`` started.

:meth:`Distiller.fit <dgl_ltd.distill.Distiller.fit>` with ``procs=N`` > 1 spawns N processes
(``torch.multiprocessing``, a rendezvous on a free loopback port, gloo on the CPU, NCCL when the
data lie on a GPU); each trains its rank (:mod:`~.parallel_run`) and rank 0 hands the result back
through a file of a temporary folder, which the parent loads into the user's student. Under
``torchrun`` (``RANK`` and ``WORLD_SIZE`` set, ``WORLD_SIZE`` > 1) each process runs its rank
directly and every rank returns the result.

Faults end the run with one line: a rank that raises or dies stops the others at once (the parent
terminates them), and a rank left waiting in a collective gives up after
:data:`COLLECTIVE_TIMEOUT_S`. The scripts that call ``fit`` with ``procs`` > 1 need the usual
``if __name__ == '__main__':`` guard of spawned processes.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessException

from ..errors import UserInputError
from .parallel import Comm

COLLECTIVE_TIMEOUT_S = 60
EXIT_GRACE_S = 5  # how long a rank that has delivered its result may take to exit


class RankFailed(UserInputError):
    """A rank of a data-parallel run raised or died; the one-line message names it and what to do."""


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def torchrun_rank() -> tuple | None:
    """``(rank, world)`` when ``torchrun`` (or any launcher that sets ``RANK``/``WORLD_SIZE``) started us."""
    if "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return None


def check_procs(cfg) -> None:
    """Whether this machine can run ``cfg.procs`` processes (and a port to meet on), before any work."""
    under = torchrun_rank()
    if under is not None and cfg.procs not in (1, under[1]):
        raise UserInputError(f"procs={cfg.procs} but torchrun started {under[1]} processes; drop procs (--procs) "
                             f"under torchrun")
    if cfg.procs <= 1 or under is not None:
        return
    cores = usable_cores()
    if cfg.procs > cores:
        raise UserInputError(f"procs={cfg.procs} exceeds the {cores} CPU cores this process may use; use "
                             f"procs={cores} or fewer (--procs {cores})")
    rendezvous_port()


def rendezvous_port() -> int:
    """``MASTER_PORT`` when set (it must be free), else a free loopback port."""
    wanted = os.environ.get("MASTER_PORT")
    port = int(wanted) if wanted and wanted.isdigit() else 0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise UserInputError(f"port {port} (MASTER_PORT) is in use on 127.0.0.1; unset MASTER_PORT to pick a "
                                 f"free port, or set it to a free one") from None
        return sock.getsockname()[1]


def run_ranks(fn, procs: int, *args, backend: str = "gloo", timeout_s: float = COLLECTIVE_TIMEOUT_S) -> list:
    """``fn(comm, *args)`` in ``procs`` spawned processes; every rank's return value, in rank order.

    ``fn`` must be importable by name (a module's top-level function); its arguments and return
    values travel by pickling (tensors through shared memory). A rank that raises or dies ends
    the run with a one-line :class:`RankFailed` (or the rank's own ``UserInputError``).
    """
    port = rendezvous_port()
    with tempfile.TemporaryDirectory(prefix="dgl_ltd_ranks_") as folder:
        context = mp.spawn(_rank_main, args=(procs, port, folder, backend, timeout_s, fn, args), nprocs=procs,
                           join=False)
        try:
            _wait(context, [os.path.join(folder, f"result-{rank}.pt") for rank in range(procs)])
        except ProcessException as exc:
            raise _failure(folder, procs, exc) from None
        except BaseException:  # Ctrl-C: no rank outlives the parent
            _terminate(context)
            raise
        return [torch.load(os.path.join(folder, f"result-{rank}.pt")) for rank in range(procs)]


def _wait(context, results: list) -> None:
    """Until every rank has exited, or has left its result and had :data:`EXIT_GRACE_S` to exit.

    Closing a gloo process group can hang (pytorch/pytorch#75097); a rank that has delivered its
    result is then terminated. A rank that fails raises here and the others are terminated.
    """
    deadline = None
    while not context.join(timeout=0.2):
        if deadline is None and all(os.path.isfile(path) for path in results):
            deadline = time.monotonic() + EXIT_GRACE_S
        if deadline is not None and time.monotonic() > deadline:
            _terminate(context)
            return


def _terminate(context) -> None:
    for process in context.processes:
        if process.is_alive():
            process.terminate()
        process.join()


def _rank_main(rank: int, world: int, port: int, folder: str, backend: str, timeout_s: float, fn, args) -> None:
    """One spawned rank: join the group, run ``fn``, leave its value (or its error) in ``folder``."""
    torch.set_num_threads(max(1, usable_cores() // world))
    device = torch.device("cpu")
    if backend == "nccl":
        device = torch.device("cuda", rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    try:
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                                timeout=timedelta(seconds=timeout_s))
        value = fn(Comm(rank, world, device), *args)
    except BaseException as exc:  # the group is left open: closing it while a peer waits can deadlock
        _record_error(folder, rank, exc)
        raise
    path = os.path.join(folder, f"result-{rank}.pt")
    torch.save(value, path + ".part")
    os.replace(path + ".part", path)
    dist.barrier()
    dist.destroy_process_group()


def _record_error(folder: str, rank: int, exc: BaseException) -> None:
    """The first line of a rank's error, for the parent (then the rank fails as spawn expects)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    with open(os.path.join(folder, f"error-{rank}.json"), "w") as out:
        json.dump({"time": time.time(), "type": type(exc).__name__, "message": first,
                   "user": isinstance(exc, UserInputError), "diverged": isinstance(exc, FloatingPointError)}, out)


def _failure(folder: str, world: int, exc: ProcessException) -> Exception:
    """The one-line error of a failed run: the earliest error a rank recorded (the others then lose their peer)."""
    from .callbacks import TrainingDiverged

    errors = []
    for rank in range(world):
        path = os.path.join(folder, f"error-{rank}.json")
        if os.path.isfile(path):
            with open(path) as src:
                errors.append(dict(json.load(src), rank=rank))
    if not any(e["rank"] == exc.error_index for e in errors):  # the first rank to end left no error: it died
        how = f"was killed by {exc.signal_name}" if getattr(exc, "signal_name", None) else "exited"
        return RankFailed(f"rank {exc.error_index} of {world} {how} (out of memory?); the run was stopped; "
                          f"use fewer processes (--procs) or a smaller batch_size (--batch-size)")
    first = min(errors, key=lambda e: e["time"])
    if first["user"]:
        return UserInputError(first["message"])
    if first["diverged"]:
        return TrainingDiverged(first["message"])
    return RankFailed(f"rank {first['rank']} of {world} failed: {first['type']}: {first['message']}; the run was "
                      f"stopped; rerun with procs=1 (--procs 1) to see the traceback")


def fit_in_processes(distiller, data, seed: int, temperature: float):
    """Train ``distiller``'s student data-parallel; the :class:`DistillResult` of rank 0, in this process."""
    from .parallel_run import fit_rank, unpack_result

    if torchrun_rank() is not None:
        return _fit_under_torchrun(distiller, data, seed, temperature)
    if hasattr(data.graph, "create_formats_"):  # build the sparse formats once, not in every rank
        data.graph.create_formats_()
    backend = "nccl" if data.feat.is_cuda else "gloo"
    values = run_ranks(fit_rank, distiller.config.procs, distiller.student, distiller.config, data, seed,
                       temperature, backend=backend)
    return unpack_result(distiller.student, values[0])


def _fit_under_torchrun(distiller, data, seed: int, temperature: float):
    from .parallel_run import RankDistiller

    rank, world = torchrun_rank()
    backend = "nccl" if data.feat.is_cuda else "gloo"
    started = not dist.is_initialized()
    if started:
        dist.init_process_group(backend, timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S))
    try:
        comm = Comm(rank, world, data.feat.device if backend == "nccl" else "cpu")
        return RankDistiller(distiller.student, distiller.config, comm, seed).fit_here(data, seed, temperature)
    finally:
        if started:
            dist.destroy_process_group()
