"""Partitions for DistDGL: the graph with everything a distillation step reads per node, cut into parts.

A ``DistGraph`` has no ``update_all``, so what needs whole neighbourhoods is computed here, on the
whole graph, and stored as node data before ``dgl.distributed.partition_graph`` cuts it: the
teacher logits (:data:`TEACHER_KEY`), the neighbourhood entropy (:data:`ENTROPY_KEY`), the original
node IDs (:data:`ORIG_ID_KEY`; partitioning renumbers the nodes), the masks of the protocol, and, for
a student that wants self-loops (GCN, GAT), one self-loop per node with the whole-graph degrees
(:func:`dgl_ltd.models.add_self_loops`). Beside the partition config, :data:`META_NAME` records what
was partitioned (dataset, protocol, split, node count, classes, self-loops), which a distillation
run checks before any work. The folder is written under a temporary name and renamed when
complete: a failed or interrupted run leaves no partial folder.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .errors import UserInputError

TEACHER_KEY = "_ltd_teacher"
ENTROPY_KEY = "_ltd_entropy"
ORIG_ID_KEY = "_ltd_orig_id"
META_NAME = "dgl_ltd.json"
MASK_KEYS = ("distill_mask", "temp_mask", "val_mask", "test_mask")


def check_partition_target(out: str | os.PathLike, parts: int, num_nodes: int) -> Path:
    """The output folder (absent or empty) and the part count, checked before any work."""
    from .files import check_output_folder

    if parts < 1 or parts > num_nodes:
        raise UserInputError(f"--parts {parts}: give between 1 and the graph's {num_nodes} nodes")
    target = Path(out)
    check_output_folder(target, "--out")
    if target.is_dir() and any(target.iterdir()):
        raise UserInputError(f"--out {str(out)!r} is not empty; give a new folder or remove it")
    return target


def partition_for_distillation(graph, teacher: torch.Tensor, out: str | os.PathLike, parts: int,
                               self_loop: bool, info: dict, graph_name: str = "graph",
                               part_method: str = "metis") -> Path:
    """Store the per-node inputs of distillation in ``graph`` and partition it into ``out``.

    Parameters
    ----------
    graph : DGLGraph
        The whole graph with ``feat``, ``label`` and the masks of the protocol (not modified).
    teacher : Tensor
        (N, C) teacher logits.
    out : path
        The partition folder to create (absent or empty); it receives ``<graph_name>.json``.
    parts : int
        The number of partitions (one per machine of the cluster).
    self_loop : bool
        Whether the student wants one self-loop per node (GCN, GAT): sampled blocks must come from a
        graph that has them.
    info : dict
        What the graph is (``dataset``, ``protocol``, ``split``, ``teacher``...), kept in :data:`META_NAME`.
    graph_name, part_method : str
        As for ``dgl.distributed.partition_graph``.

    Returns
    -------
    Path
        The partition config, ``out/<graph_name>.json``.
    """
    from ._compat import dgl
    from .entropy import neighbourhood_entropy
    from .models import IN_DEGREE_KEY, OUT_DEGREE_KEY, add_self_loops

    target = check_partition_target(out, parts, graph.num_nodes())
    base = add_self_loops(graph) if self_loop else graph
    prepared = dgl.graph(base.edges(), num_nodes=graph.num_nodes())  # a new graph: the caller's keeps its data
    for key in ("feat", "label", IN_DEGREE_KEY, OUT_DEGREE_KEY) + MASK_KEYS:
        if key in base.ndata:
            prepared.ndata[key] = base.ndata[key]
    if "distill_mask" not in graph.ndata:  # DGL's usual masks: the label loss uses the training nodes, as fit does
        prepared.ndata["distill_mask"] = graph.ndata["train_mask"]
    prepared.ndata[TEACHER_KEY] = teacher.detach().float().cpu()
    prepared.ndata[ENTROPY_KEY] = neighbourhood_entropy(graph, teacher)
    prepared.ndata[ORIG_ID_KEY] = torch.arange(graph.num_nodes())
    meta = dict(info, num_nodes=graph.num_nodes(), num_edges=graph.num_edges(), num_classes=int(teacher.shape[1]),
                num_feats=int(graph.ndata["feat"].shape[1]), self_loop=bool(self_loop), parts=parts,
                graph_name=graph_name, masks=[k for k in MASK_KEYS if k in prepared.ndata],
                distill_count=int(prepared.ndata["distill_mask"].sum()))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        dgl.distributed.partition_graph(prepared, graph_name, parts, str(staging),
                                        part_method=part_method if parts > 1 else "random")
        (staging / META_NAME).write_text(json.dumps(meta, indent=1))
        if target.is_dir():
            target.rmdir()  # empty (checked): the complete folder takes its name
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target / f"{graph_name}.json"


def read_partition_meta(part_config: str | os.PathLike) -> dict:
    """What :func:`partition_for_distillation` recorded beside ``part_config``, with one-line errors."""
    config = Path(part_config)
    if not config.is_file():
        raise UserInputError(f"--part-config {str(part_config)!r} does not exist; make it with "
                             f"'dgl-ltd partition --dataset NAME --parts P --out DIR' and pass DIR/NAME.json")
    meta_path = config.parent / META_NAME
    if not meta_path.is_file():
        raise UserInputError(f"{str(config.parent)!r} was not made by 'dgl-ltd partition' (no {META_NAME}); "
                             f"partition the dataset with it")
    meta = json.loads(meta_path.read_text())
    parts = json.loads(config.read_text()).get("num_parts")
    if meta.get("parts") != parts or meta.get("graph_name") != config.stem:
        raise UserInputError(f"{str(config)!r} does not belong to the partition recorded in {META_NAME} "
                             f"({meta.get('graph_name')}.json, {meta.get('parts')} parts); pass that config")
    return meta


def check_partition_matches(meta: dict, dataset: str, protocol: str, split: str, model: str,
                            self_loop: bool) -> None:
    """A one-line error when the partition folder holds another dataset, split or kind of student."""
    wanted = {"dataset": dataset, "protocol": protocol, "split": split}
    for key, value in wanted.items():
        if meta.get(key) != value:
            raise UserInputError(f"the partition folder holds {key} {meta.get(key)!r} but --{key} is {value!r}; "
                                 f"pass --{key} {meta.get(key)} or partition {value} with 'dgl-ltd partition'")
    if bool(meta.get("self_loop")) != bool(self_loop):
        has = "with" if meta.get("self_loop") else "without"
        raise UserInputError(f"the partitions were made {has} self-loops but --model {model} wants the opposite; "
                             f"partition again with 'dgl-ltd partition --model {model}'")
