"""The dgl-ltd command: train teachers, score logits files, distill (LTD, LTD-S, FT, KD).

Every sub-command takes ``--data-dir``, ``--protocol``, ``--split`` and ``--json`` (one JSON object
with the figures as the last stdout line); those that train take ``--quiet`` (no progress bars) and
``--device``. Bad input prints one line naming the problem and the fix on stderr and exits with
code 2, before any work; Ctrl-C prints one line and exits with code 130.
"""
from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

from .cli_args import build_parser, parse_seeds  # noqa: F401  (parse_seeds: used by the benchmark scripts)
from .errors import UserInputError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
DIGITS = 4  # accuracies are printed as the paper prints them
PLANTED_FLAGS = ("num_nodes", "avg_degree", "num_classes", "num_feats")
TEXT_LOGITS_MAX_NODES = 500_000  # teacher --out writes .npy always, text rows up to this many nodes
MINIBATCH_FLAGS = ("fanouts", "sampler", "batch_size", "batches_per_epoch")


def _summary(accs: list, extra: dict) -> dict:
    mean = sum(accs) / len(accs)
    out = {"test_acc": round(mean, DIGITS)}
    if len(accs) > 1:
        std = math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1))
        out["test_acc_std"] = round(std, DIGITS)
        out["per_seed"] = [round(a, DIGITS) for a in accs]
    out.update(extra)
    return out


def _graph(args, device=None):
    """The graph of --dataset with the masks of --protocol/--split, on ``device`` (default: the CPU)."""
    from .data import load_dataset

    if args.split_seed is not None and args.protocol != "random":
        raise UserInputError("--split-seed applies only to --protocol random (the paper's protocol has one fixed "
                             "split); drop it or add --protocol random")
    source = "dgl" if args.split == "public" else "npz"  # only DGL's classes ship a public split
    planted = {key: getattr(args, key) for key in PLANTED_FLAGS if getattr(args, key, None) is not None}
    if planted and args.dataset.strip().lower() != "planted":
        flags = ", ".join("--" + key.replace("_", "-") for key in planted)
        raise UserInputError(f"{flags} apply to --dataset planted only; drop them")
    graph = load_dataset(args.dataset, args.data_dir, args.protocol, args.split_seed or 0, source, args.split,
                         **planted)
    return graph if device is None else graph.to(device)


def paper_train_overlap(graph) -> int:
    """How many test nodes of ``graph``'s split are training nodes (V_L^D | V_L^E) of the paper's ``ltd`` split.

    ``graph`` must be a graph of the npz source (any protocol), whose nodes are those of the paper's split.
    """
    from .data import split_masks

    paper_train = split_masks(graph.ndata["label"].cpu().numpy(), 0)["train_mask"]
    return int((paper_train & graph.ndata["test_mask"].cpu()).sum())


def cmd_eval_logits(args) -> dict:
    from .data import accuracy, load_logits

    graph = _graph(args)
    logits = load_logits(args.logits, graph)
    nd = graph.ndata
    result = {"test_acc": round(accuracy(logits, nd["label"], nd["test_mask"]), DIGITS),
              "val_acc": round(accuracy(logits, nd["label"], nd["val_mask"]), DIGITS)}
    if args.protocol == "random":
        overlap = paper_train_overlap(graph)
        result["train_overlap"] = overlap
        if overlap:
            print(f"dgl-ltd: warning: {overlap} of this split's {int(nd['test_mask'].sum())} test nodes are training "
                  f"nodes (V_L^D and V_L^E) of --protocol ltd, where the paper's teachers and any teacher trained "
                  f"with --protocol ltd learned; the test accuracy of such a teacher's logits is inflated: score them "
                  f"with --protocol ltd", file=sys.stderr)
    return result


def _teachers(args, graph, model_name: str, seeds: list, out_dir: str | None = None, max_epochs: int = 600,
              patience: int = 50, sampled: bool = False):
    """Train teachers of ``model_name``, full-graph or (``sampled``) on blocks of ``--fanouts``."""
    from .files import save_numpy, save_text, save_torch
    from .models import build_teacher, canonical_model_name
    from .training import TEACHER_DEFAULTS, set_seed, train_teacher

    name = canonical_model_name(model_name)
    opts = dict(TEACHER_DEFAULTS[name])
    if getattr(args, "lr", None) is not None:
        opts["lr"] = args.lr
    if getattr(args, "weight_decay", None) is not None:
        opts["weight_decay"] = args.weight_decay
    results = []
    for seed in seeds:
        set_seed(seed)
        model = build_teacher(name, graph.ndata["feat"].shape[1], int(graph.ndata["label"].max()) + 1)
        if sampled:  # mini-batch: sampled blocks, logits by layer-wise inference
            from .sampled_training import train_teacher_sampled

            res = train_teacher_sampled(model.to(graph.device), graph, args.fanouts, args.batch_size or 1024,
                                        args.batches_per_epoch, seed=seed, show_progress=not args.quiet,
                                        max_epochs=max_epochs, patience=patience, **opts)
        else:
            res = train_teacher(model.to(graph.device), graph, seed=seed, show_progress=not args.quiet,
                                max_epochs=max_epochs, patience=patience, **opts)
        if out_dir:
            path = Path(out_dir)
            path.mkdir(parents=True, exist_ok=True)
            logits = res.logits.cpu().numpy()
            save_numpy(path / f"{name}_seed{seed}.npy", logits)
            if logits.shape[0] <= TEXT_LOGITS_MAX_NODES:  # text rows of millions of nodes are slow to write and read
                save_text(path / f"{name}_seed{seed}.txt", logits, fmt="%.6f", delimiter="\t")
            weights = {key: value.cpu() for key, value in res.model.state_dict().items()}  # loadable without a GPU
            save_torch(weights, path / f"{name}_seed{seed}.pt")
        results.append(res)
    return results


def cmd_teacher(args) -> dict:
    from .devices import resolve_device
    from .files import check_output_folder

    unused = [flag for flag in ("batch_size", "batches_per_epoch", "sampler")
              if getattr(args, flag) is not None]
    if unused and args.fanouts is None:
        raise UserInputError(f"--{unused[0].replace('_', '-')} applies to mini-batch training; add --fanouts "
                             f"(e.g. --fanouts 10,10,10) or drop it")
    if args.out:
        check_output_folder(args.out, "--out")
    graph = _graph(args, resolve_device(args.device))
    results = _teachers(args, graph, args.model, args.seeds, args.out, args.max_epochs, args.patience,
                        sampled=args.fanouts is not None)
    for seed, res in zip(args.seeds, results):
        if not args.json:
            print(f"seed {seed}: test_acc {res.test_acc:.4f} val_acc {res.val_acc:.4f} best epoch {res.best_epoch}")
    from .data import canonical_name
    from .models import canonical_model_name

    return _summary([r.test_acc for r in results], {"model": canonical_model_name(args.model),
                                                     "dataset": canonical_name(args.dataset),
                                                     "device": graph.device.type})


def _teacher_logits(args, graph, model: str):
    from .data import canonical_name, load_logits, resolve_data_dir
    from .hparams import teacher_logits_path

    if args.teacher_logits:
        return load_logits(args.teacher_logits, graph).to(graph.device), args.teacher_logits
    if args.teacher_model:
        res = _teachers(args, graph, args.teacher_model, [0])[0]
        return res.logits, f"trained {args.teacher_model} (seed 0, test_acc {res.test_acc:.4f})"
    data_dir = resolve_data_dir(args.data_dir)
    dataset = canonical_name(args.dataset)
    if data_dir is not None and args.protocol == "ltd" and args.split == "protocol":
        path = teacher_logits_path(data_dir, dataset, model)
        if path.is_file():
            return load_logits(path, graph).to(graph.device), str(path)
    res = _teachers(args, graph, model, [0])[0]
    return res.logits, f"trained {model} (seed 0, test_acc {res.test_acc:.4f})"


def cmd_distill(args) -> dict:
    if args.part_config is not None:  # on a DistGraph (dgl_ltd.cli_dist)
        from .cli_dist import cmd_distill_dist

        return cmd_distill_dist(args)
    for flag in ("ip_config", "local_trainers", "save_student"):
        if getattr(args, flag) is not None:
            raise UserInputError(f"--{flag.replace('_', '-')} applies with --part-config (DistDGL); add it or drop "
                                 f"the flag")
    from .data import accuracy, canonical_name
    from .devices import resolve_device
    from .distill import Distiller
    from .files import check_output_file
    from .models import MODELS, build_model, canonical_model_name
    from .training import set_seed

    model = canonical_model_name(args.model)
    dataset = canonical_name(args.dataset)
    _check_method_flags(args)
    if getattr(MODELS[model], "takes_graph", True) is False and not (args.teacher_logits or args.teacher_model):
        raise UserInputError(f"--model {model} reads no graph, so it is no teacher of its own; give a GNN teacher with "
                             f"--teacher-logits FILE or --teacher-model M (e.g. graphsage)")
    if args.save_temperatures:
        check_output_file(args.save_temperatures, "--save-temperatures")
    if args.report:
        from .report import check_report_dir

        check_report_dir(args.report)
    graph = _graph(args, resolve_device(args.device))
    config = _distill_config(args, model, dataset, graph)
    nd = graph.ndata
    probe = build_model(model, nd["feat"].shape[1], int(nd["label"].max()) + 1)
    Distiller(probe, args.method, **config)  # the student fits the sampler, before any teacher trains
    teacher, source = _teacher_logits(args, graph, model)
    teacher_acc = accuracy(teacher, nd["label"], nd["test_mask"])
    accs, per_epoch, results = [], [], []
    for seed in args.seeds:
        set_seed(seed)
        student = build_model(model, nd["feat"].shape[1], teacher.shape[1]).to(graph.device)
        res = Distiller(student, args.method, **config).fit(graph, teacher, seed=seed)
        accs.append(res.test_acc)
        per_epoch.append(res.seconds_per_epoch)
        results.append(res)
        if not args.json:
            print(f"seed {seed}: test_acc {res.test_acc:.4f} (teacher {teacher_acc:.4f}) val_acc {res.val_acc:.4f} "
                  f"epochs {res.epochs} tau mean {float(res.temperatures.mean()):.3f}")
    if args.save_temperatures:
        results[0].save_temperatures(args.save_temperatures)  # whole or not at all (dgl_ltd.files.atomic_write)
    if args.report:
        from .report import write_report

        write_report(results, args.report, graph, teacher, teacher_test_acc=teacher_acc, seeds=args.seeds,
                     run_info={"dataset": dataset, "model": model, "method": args.method, "settings": args.settings,
                               "teacher": source})
    extra = {"teacher_test_acc": round(teacher_acc, DIGITS), "method": args.method, "model": model,
             "dataset": dataset, "teacher": source, "seconds_per_epoch": round(sum(per_epoch) / len(per_epoch), 6),
             "settings": args.settings, "device": graph.device.type}
    return _summary(accs, {**extra, **_settings_used(results[0].config, args.method)})


def _distill_config(args, model: str, dataset: str, graph) -> dict:
    """The --settings cell with the flags given on top, validated before any teacher trains."""
    from .distill import DistillConfig
    from .settings import paper_config, tuned_config

    if args.settings == "paper":
        config = paper_config(model, dataset, args.method)
    elif args.settings == "tuned":
        config = tuned_config(model, dataset, args.method, graph)
    else:  # standard: DistillConfig's own defaults, the same as the Python API's
        config = {}
    for key in ("lam", "temperature", "k", "alpha", "beta", "init_tau", "warmup", "max_epochs", "patience",
                "meta_every", "optimizer", "reduction", "calibrate_on", "kd_holdout", "meta_on",
                "procs", "num_workers", "label_batch_size") + MINIBATCH_FLAGS:
        value = getattr(args, key)
        if value is not None:
            config[key] = value
    config["show_progress"] = not args.quiet
    DistillConfig(method=args.method, **config).validate()
    return config


def _settings_used(used: dict, method: str) -> dict:
    """The settings a run used, from its result's config, for the summary line."""
    out = {"optimizer": used["optimizer"], "reduction": used["reduction"], "alpha": used["alpha"], "lam": used["lam"]}
    if method == "ft":  # the temperature FT used ('auto': the best of its grid on the validation nodes)
        out["temperature"] = used.get("resolved_temperature", used.get("temperature"))
    if "resolved_init_tau" in used:  # LTD, LTD-S: where the temperatures started, and what judged them
        start = used["resolved_init_tau"]  # None: the paper's random start
        out["start_temperature"] = None if start is None else round(float(start), 6)
        out.update(meta_on=used["meta_on"], kd_holdout=used["kd_holdout"])
    return out


# distill flags that only some methods read (every other flag applies to all four)
METHOD_FLAGS = {
    "temperature": ("ft",),
    "k": ("ltd", "ltd-s"), "beta": ("ltd", "ltd-s"), "init_tau": ("ltd", "ltd-s"), "warmup": ("ltd", "ltd-s"),
    "calibrate_on": ("ltd", "ltd-s"), "meta_on": ("ltd", "ltd-s"), "kd_holdout": ("ltd", "ltd-s"),
    "meta_every": ("ltd-s",),
}


def _check_method_flags(args) -> None:
    """A flag the chosen method would ignore is an error, not a silent no-op."""
    for key, methods in METHOD_FLAGS.items():
        if getattr(args, key) is not None and args.method not in methods:
            flag = "--" + key.replace("_", "-")
            raise UserInputError(f"{flag} does not apply to --method {args.method} (only to {', '.join(methods)}); "
                                 f"drop it")
    if args.calibrate_on is not None and args.init_tau is not None:
        raise UserInputError("--calibrate-on picks where the calibrated start is fitted, but --init-tau sets the start; "
                             "drop one of them")
    if args.settings == "paper" and args.calibrate_on is not None:
        raise UserInputError("--calibrate-on does not apply to --settings paper (its temperature network starts at "
                             "random); drop it")


def cmd_partition(args) -> dict:
    from .cli_dist import cmd_partition as partition

    return partition(args)


COMMANDS = {"teacher": cmd_teacher, "eval-logits": cmd_eval_logits, "distill": cmd_distill, "partition": cmd_partition}


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """The package's own warnings as one ``dgl-ltd: warning:`` line on stderr; others as Python prints them."""
    text = str(message)
    if text.startswith("dgl_ltd: "):
        print(f"dgl-ltd: warning: {text[len('dgl_ltd: '):]}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: list | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return its exit code.

    0 on success; 2 for bad input (one line on stderr, before any work) and for a diverged run;
    130 when interrupted (Ctrl-C), with one line instead of a traceback.
    """
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # what a local DistDGL launch runs again
    except SystemExit as exc:  # --help, --version, or a usage error already printed in one line
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else EXIT_USER_ERROR
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            result = COMMANDS[args.command](args)
    except (UserInputError, ImportError, FloatingPointError) as exc:  # bad input; a wrong DGL/torch; a diverged run
        print(f"dgl-ltd: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("dgl-ltd: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(result))
    else:
        print(" ".join(f"{k}={v}" for k, v in result.items() if k != "per_seed"))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
