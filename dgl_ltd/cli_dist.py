"""The DistDGL commands: ``dgl-ltd partition``, and ``dgl-ltd distill --part-config`` (a server, a trainer,
or, with ``--local-trainers N``, one machine's servers and trainers).

Every check (the partition folder against ``--dataset``/``--protocol``/``--split``/``--model``, the
``ip_config``, the flags that a DistGraph run cannot honour, the output file) runs before any
work. Rank 0 writes the outputs, each whole or not at all. A trainer of a distributed run that
fails prints its one-line error and exits at once (code 2), so that its peers' collectives fail
instead of waiting, rather than first waiting for them at DGL's exit barrier.
"""
from __future__ import annotations

import json
import os
import sys
from types import SimpleNamespace

import torch

from .errors import UserInputError

EXIT_USER_ERROR = 2
DIST_UNSUPPORTED = ("procs", "num_workers", "save_temperatures", "report", "sampler")


def _self_loop(model: str) -> bool:
    from .models import MODELS

    return bool(getattr(MODELS[model], "self_loop", False))


def cmd_partition(args) -> dict:
    """Partition ``--dataset`` into ``--parts`` parts with the teacher logits, entropy and masks as node data."""
    from .cli import DIGITS, _graph, _teacher_logits
    from .data import accuracy, canonical_name
    from .files import check_output_folder
    from .models import canonical_model_name
    from .partition import check_partition_target, partition_for_distillation

    model, dataset = canonical_model_name(args.model), canonical_name(args.dataset)
    check_output_folder(args.out, "--out")
    graph = _graph(args)
    check_partition_target(args.out, args.parts, graph.num_nodes())
    teacher, source = _teacher_logits(args, graph, model)
    teacher_acc = round(accuracy(teacher, graph.ndata["label"], graph.ndata["test_mask"]), DIGITS)
    info = {"dataset": dataset, "protocol": args.protocol, "split": args.split, "split_seed": args.split_seed,
            "model": model, "teacher": source, "teacher_test_acc": teacher_acc}
    config = partition_for_distillation(graph, teacher.cpu(), args.out, args.parts, _self_loop(model), info,
                                        graph_name=dataset)
    return {"part_config": str(config), "parts": args.parts, "dataset": dataset, "model": model,
            "teacher_test_acc": teacher_acc, "teacher": source}


def _check_dist_flags(args) -> None:
    for key in DIST_UNSUPPORTED:
        if getattr(args, key, None) is not None:
            flag = "--" + key.replace("_", "-")
            raise UserInputError(f"{flag} does not apply with --part-config (DistGraph runs train on neighbour-sampled "
                                 f"blocks across trainers); drop it")
    if args.fanouts is None:
        raise UserInputError("--part-config trains on neighbour-sampled blocks; add --fanouts (e.g. --fanouts 10,10)")
    if args.method == "ft" and args.temperature in (None, "auto"):
        raise UserInputError("--method ft with --part-config needs one temperature; give --temperature T (e.g. 4)")
    if args.local_trainers is not None and os.environ.get("DGL_ROLE"):
        raise UserInputError("--local-trainers starts this machine's roles itself; drop it under DGL's launch tool")


def _dist_config(args, model: str, dataset: str, meta: dict):
    """The validated :class:`DistillConfig` of the run (the student checked against the sampler)."""
    from .cli import _distill_config
    from .distill import Distiller
    from .models import build_model

    n = meta["num_nodes"]
    counts = SimpleNamespace(ndata={"distill_mask": torch.arange(n) < meta["distill_count"]}, num_nodes=lambda: n)
    config = _distill_config(args, model, dataset, counts)  # --settings tuned reads |V_L^D| / N only
    return Distiller(build_model(model, meta["num_feats"], meta["num_classes"]), args.method, **config).config


def cmd_distill_dist(args) -> dict:
    """``dgl-ltd distill --part-config``: this process's role, or this machine's roles with ``--local-trainers``."""
    from .cli import _check_method_flags
    from .data import canonical_name
    from .distill.dist_launch import check_cluster, launch_local, start_role, trainer_command
    from .files import check_output_file
    from .models import canonical_model_name
    from .partition import check_partition_matches, read_partition_meta

    meta = read_partition_meta(args.part_config)
    ip_config = args.ip_config or os.environ.get("DGL_IP_CONFIG")
    if os.environ.get("DGL_ROLE") == "server":
        check_cluster(ip_config, meta["parts"])
        start_role(ip_config, meta["graph_name"], args.part_config)  # serves until the trainers are done, exits
    model, dataset = canonical_model_name(args.model), canonical_name(args.dataset)
    _check_method_flags(args)
    _check_dist_flags(args)
    check_partition_matches(meta, dataset, args.protocol, args.split, model, _self_loop(model))
    cfg = _dist_config(args, model, dataset, meta)
    if args.save_student:
        check_output_file(args.save_student, "--save-student")
    if args.local_trainers is not None:
        out = launch_local(trainer_command(args.argv + ["--json"]), args.part_config, meta["parts"],
                           args.local_trainers, args.ip_config)
        return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    check_cluster(ip_config, meta["parts"])
    comm, graph = start_role(ip_config, meta["graph_name"], args.part_config)
    try:
        return _train(args, cfg, model, meta, comm, graph)
    except Exception as exc:  # noqa: BLE001  (any failure of a trainer ends it, in one line)
        if comm.world > 1:  # end now: peers' collectives fail at once instead of waiting at DGL's exit barrier
            lines = str(exc).strip().splitlines()
            print(f"dgl-ltd: error: trainer {comm.rank} of {comm.world}: {lines[0] if lines else type(exc).__name__}",
                  file=sys.stderr, flush=True)
            os._exit(EXIT_USER_ERROR)
        raise


def _train(args, cfg, model: str, meta: dict, comm, graph) -> dict:
    """Train one student per seed on the DistGraph; rank 0 saves the first seed's weights."""
    from .cli import DIGITS, _settings_used, _summary
    from .distill.dist_run import DistRankDistiller, dist_node_data
    from .files import save_torch
    from .models import build_model
    from .training import set_seed

    temperature = float(cfg.temperature) if cfg.method == "ft" else 1.0
    accs, results = [], []
    for seed in args.seeds:
        set_seed(seed)
        student = build_model(model, meta["num_feats"], meta["num_classes"])
        data = dist_node_data(graph, cfg, comm)
        res = DistRankDistiller(student, cfg, comm, seed).fit_here(data, seed, temperature)
        accs.append(res.test_acc)
        results.append(res)
        if not args.json and comm.rank == 0:
            print(f"seed {seed}: test_acc {res.test_acc:.4f} (teacher {meta['teacher_test_acc']:.4f}) val_acc "
                  f"{res.val_acc:.4f} epochs {res.epochs}")
    if args.save_student and comm.rank == 0:
        save_torch(results[0].student.state_dict(), args.save_student)
    extra = {"teacher_test_acc": meta["teacher_test_acc"], "method": args.method, "model": model,
             "dataset": meta["dataset"], "teacher": meta["teacher"], "trainers": comm.world,
             "parts": meta["parts"], "seconds_per_epoch": round(sum(r.seconds_per_epoch for r in results) /
                                                                len(results), 6)}
    summary = _summary(accs, {**extra, **_settings_used(results[0].config, args.method)})
    summary.update(val_acc=round(results[0].val_acc, DIGITS), test_nodes=results[0].config["test_count"])
    return summary
