"""The argument parser of the dgl-ltd command (its sub-commands, flags, help and argparse types)."""
from __future__ import annotations

import argparse
import math

from . import __version__

DESCRIPTION = "The dgl-ltd command: train teachers, score logits files, distill (LTD, LTD-S, FT, KD)."
DEFAULT_DATASET = "cora"


def parse_seeds(text: str) -> list:
    """argparse type: comma-separated seeds in [0, MAX_SEED] (also used by the benchmark scripts)."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed, e.g. --seeds 0,1,2")
    from .metrics import MAX_SEED

    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise argparse.ArgumentTypeError(f"seeds must lie in [0, {MAX_SEED}], got {bad[0]}")
    return seeds


def _seed(text: str) -> int:
    seeds = parse_seeds(text)
    if len(seeds) != 1:
        raise argparse.ArgumentTypeError(f"give one seed, got {text!r}")
    return seeds[0]


def _temperature(text: str):
    """argparse type of ``--temperature``: a finite number other than 0, or ``auto`` (tuned on the validation nodes)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value == 0:
        raise argparse.ArgumentTypeError(f"temperature must be a finite number other than 0, or 'auto', got {text!r}")
    return value


def _fanouts(text: str) -> tuple:
    """argparse type of ``--fanouts``: comma-separated neighbours per layer (-1: all), e.g. ``10,10``."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or any(v < 1 and v != -1 for v in values):
        raise argparse.ArgumentTypeError(f"fanouts must be comma-separated positive integers (or -1), one per layer, "
                                         f"got {text!r}; e.g. --fanouts 10,10")
    return values


def _integer_at_least(minimum: int):
    """argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value
    return parse


_positive = _integer_at_least(1)
_non_negative = _integer_at_least(0)


def _minibatch_flags(parser: argparse.ArgumentParser, samplers: tuple) -> None:
    """Mini-batch training: absent, the run is full-graph."""
    parser.add_argument("--fanouts", type=_fanouts, default=None,
                        help="train on neighbour-sampled blocks with these neighbours per layer, e.g. 10,10 "
                             "(default: full-graph training)")
    parser.add_argument("--sampler", choices=samplers, default=None,
                        help="neighbor: sampled blocks (needs --fanouts); cluster: ClusterGCN subgraphs (APPNP, "
                             "GCNII); node: node batches of a feature table (SGC, MLP) (default: neighbor with --fanouts)")
    parser.add_argument("--batch-size", type=_positive, default=None, help="seed nodes per batch (default: 1024)")
    parser.add_argument("--batches-per-epoch", type=_positive, default=None,
                        help="at most this many batches per epoch (default: all nodes once)")


def _planted_flags(parser: argparse.ArgumentParser) -> None:
    """Options of --dataset planted (ogbn-products-like defaults)."""
    for flag, kind, text in (("num-nodes", _positive, "nodes (default: 100000)"),
                             ("avg-degree", float, "average degree (default: 50)"),
                             ("num-classes", _positive, "classes (default: 47)"),
                             ("num-feats", _positive, "features (default: 100)")):
        parser.add_argument(f"--{flag}", type=kind, default=None, help=f"--dataset planted: {text}")


def _common(parser: argparse.ArgumentParser, trains: bool = True) -> None:
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help="dataset name (default: the built-in cora)")
    parser.add_argument("--data-dir", default=None, help="data folder (default: $DGL_LTD_DATA; none: built-in cora only)")
    parser.add_argument("--protocol", choices=("ltd", "random"), default="ltd",
                        help="ltd: the paper's split; random: the same per-class counts drawn with --split-seed "
                             "(default: ltd)")
    parser.add_argument("--split-seed", type=_seed, default=None, help="split seed for --protocol random (default: 0)")
    parser.add_argument("--split", choices=("protocol", "public"), default="protocol",
                        help="protocol: the split of --protocol; public: the train/val/test masks of DGL's own "
                             "dataset class (cora, citeseer, pubmed), graph as DGL ships it (default: protocol)")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the figures last")
    _planted_flags(parser)
    if trains:
        parser.add_argument("--quiet", action="store_true", help="no progress bars")
        parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                            help="where to train (default: cuda when torch and DGL can use a GPU, else cpu)")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block), like every other error of the CLI."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _settings_flags(parser: argparse.ArgumentParser) -> None:
    """The distill flags that override a field of the --settings cell (default None: keep the cell's)."""
    for flag, kind, text in (
            ("lam", float, "weight of the label loss on V_L^D (default: from --settings)"),
            ("temperature", _temperature, "FT's global temperature, > 0, or 'auto' to tune it on the validation "
                                          "nodes (default: from --settings)"),
            ("k", float, "LTD's temperature range: tau in (-0.2k, 0.8k) (default: from --settings)"),
            ("alpha", float, "student learning rate, per optimiser step (mini-batches take one a batch: a full-graph "
                             "rate can be too high) (default: from --settings)"),
            ("beta", float, "temperature-network learning rate (LTD, LTD-S), per learning step (LTD learns at "
                            "every batch: divide a full-graph rate by the batches of an epoch) "
                            "(default: from --settings)"),
            ("init-tau", float, "start temperature of every node (LTD, LTD-S) (default: from --settings; tuned: "
                                "calibrated on the teacher, paper: random)"),
            ("warmup", int, "epochs before the temperatures learn (default: from --settings)"),
            ("max-epochs", int, "student epochs at most (default: from --settings)"),
            ("patience", int, "student early-stopping patience (default: from --settings)"),
            ("meta-every", int, "LTD-S: epochs between temperature updates (default: from --settings)")):
        parser.add_argument(f"--{flag}", type=kind, default=None, help=text)
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default=None,
                         help="student (and temperature-network) optimiser (default: from --settings; tuned: adam, "
                              "paper: sgd)")
    parser.add_argument("--reduction", choices=("mean", "sum"), default=None,
                         help="average or sum the losses over nodes (default: from --settings; tuned: mean, "
                              "paper: sum)")
    parser.add_argument("--calibrate-on", choices=("temp", "val"), default=None,
                         help="labelled nodes that fit LTD's start temperature (default: temp = V_L^E; val on a graph "
                              "without temp_mask, such as --split public)")
    parser.add_argument("--kd-holdout", action="store_true", default=None,
                         help="leave the nodes that judge the temperatures out of the KD term (LTD, LTD-S)")
    parser.add_argument("--meta-on", choices=("temp", "val"), default=None,
                         help="labelled nodes whose loss the temperatures learn to lower (default: temp = V_L^E; val on a "
                              "graph without temp_mask, such as --split public)")


def _partition_parser(sub) -> None:
    """The ``partition`` command: a dataset cut for DistDGL."""
    partition = sub.add_parser("partition", help="partition a dataset for DistDGL, with the teacher logits, the "
                                                 "neighbourhood entropy and the masks as node data")
    _common(partition)
    partition.add_argument("--model", default="gcn", help="the student to be trained on the partitions: gcn and gat "
                           "get self-loops; also the teacher's architecture when neither teacher flag is given "
                           "(default: gcn)")
    source = partition.add_mutually_exclusive_group()
    source.add_argument("--teacher-logits", default=None, help="teacher logits file (default: the paper's, if in --data-dir)")
    source.add_argument("--teacher-model", default=None, help="train this architecture as the teacher first")
    partition.add_argument("--parts", type=_positive, required=True, help="partitions: one per machine of the cluster")
    partition.add_argument("--out", required=True, help="the partition folder to create (absent or empty); the "
                           "config is OUT/<dataset>.json")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dgl-ltd", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version of dgl_ltd and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    teacher = sub.add_parser("teacher", help="train teacher models (Adam, early stopping on validation)")
    _common(teacher)
    teacher.add_argument("--model", default="gcn", help="gcn, gat, graphsage, appnp, sgc, gcnii or mlp (default: gcn)")
    teacher.add_argument("--seeds", type=parse_seeds, default=[0], help="comma-separated seeds (default: 0)")
    teacher.add_argument("--out", default=None, help="folder for logits (<model>_seed<k>.npy, and .txt up to 500k "
                         "nodes) and weights (.pt)")
    teacher.add_argument("--max-epochs", type=int, default=600, help="training epochs at most (default: 600)")
    teacher.add_argument("--patience", type=int, default=50, help="early-stopping patience (default: 50)")
    teacher.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: per model)")
    teacher.add_argument("--weight-decay", type=float, default=None, help="Adam weight decay (default: per model)")
    _minibatch_flags(teacher, ("neighbor",))

    evaluate = sub.add_parser("eval-logits", help="score an N x C logits file on the test mask")
    _common(evaluate, trains=False)
    evaluate.add_argument("--logits", required=True, help="logits file (text rows, .npy or .pt)")

    distill = sub.add_parser("distill", help="distill a teacher's logits into a student (--model)")
    _common(distill)
    distill.add_argument("--model", default="gcn", help="student (and teacher) architecture; mlp: a graph-free student, "
                         "which needs --teacher-logits or --teacher-model (default: gcn)")
    distill.add_argument("--method", choices=("ltd", "ltd-s", "ft", "kd"), default="ltd",
                         help="ltd: learned node-specific temperatures; ltd-s: its scalable variant; ft: one global "
                              "temperature; kd: temperature 1 (default: ltd)")
    source = distill.add_mutually_exclusive_group()
    source.add_argument("--teacher-logits", default=None, help="teacher logits file (default: the paper's, if in --data-dir)")
    source.add_argument("--teacher-model", default=None, help="train this architecture as the teacher first")
    distill.add_argument("--seeds", type=parse_seeds, default=[0], help="comma-separated student seeds (default: 0)")
    distill.add_argument("--settings", choices=("standard", "tuned", "paper"), default="standard",
                         help="standard: DistillConfig's, the same as the Python API's; tuned: the per-cell settings "
                              "of the reproduction table (paper datasets); paper: the paper's published cell (SGD, "
                              "summed losses) (default: standard)")
    _settings_flags(distill)
    _minibatch_flags(distill, ("neighbor", "cluster", "node"))
    distill.add_argument("--procs", type=_positive, default=None,
                         help="train data-parallel in this many processes on this machine (mini-batch training "
                              "only: with --fanouts or --sampler node; default: 1)")
    distill.add_argument("--label-batch-size", type=_non_negative, default=None,
                         help="labelled nodes whose label loss each mini-batch step scores, appended to its seeds "
                              "(default: --batch-size, or all labelled nodes when fewer; 0: only those among the seeds)")
    distill.add_argument("--num-workers", type=_non_negative, default=None,
                         help="sample the training batches' blocks in this many worker processes (with --fanouts; "
                              "the run is the same for any count; default: 0, sampling in the training process)")
    _dist_flags(distill)
    distill.add_argument("--save-temperatures", default=None, help="write the learned temperatures (of the first seed) here")
    distill.add_argument("--report", default=None, metavar="DIR",
                         help="write plots, report.md and report.html of the run into DIR (needs matplotlib)")

    _partition_parser(sub)
    return parser


def _dist_flags(distill: argparse.ArgumentParser) -> None:
    """distill on a DistGraph (DistDGL)."""
    distill.add_argument("--part-config", default=None, metavar="DIR/NAME.json",
                         help="train on the partitions of 'dgl-ltd partition' as a DistGraph (standalone with one "
                              "partition; servers and trainers with --ip-config or DGL's launch tool)")
    distill.add_argument("--ip-config", default=None, help="--part-config: one line 'IP [PORT]' per machine "
                         "(default: $DGL_IP_CONFIG, set by DGL's launch tool)")
    distill.add_argument("--local-trainers", type=_positive, default=None,
                         help="--part-config: start one server per partition and this many trainers on this machine")
    distill.add_argument("--save-student", default=None, help="--part-config: write the student's weights (first seed) here")
