"""Benchmark graphs, offline, under the LTD paper's protocol or a seeded random split.

The paper's protocol (``protocol="ltd"``), exactly as its code does it: read the gnn-benchmark npz
CSR arrays; make the adjacency symmetric and unweighted, drop self-loops, keep the largest connected
component (nodes in ascending original index); binarise the bag-of-words features; then draw one
split with ``numpy.random.RandomState(0)``: three rounds of 20, 20 and 10 nodes per class, each round
class by class with ``choice`` without replacement among the class's not-yet-chosen nodes in
ascending index. The rounds are V_L^D (``distill_mask``), V_L^E (``temp_mask``) and validation
(``val_mask``); every other node is test (``test_mask``). ``train_mask`` is V_L^D | V_L^E, the
nodes a teacher trains on.

``protocol="random"`` draws the same per-class counts with another seed (for multi-split
statistics). ``source="dgl"`` loads DGL's own dataset classes instead of the npz files, and with
``split="public"`` keeps their public ``train_mask``/``val_mask``/``test_mask`` (cora, citeseer,
pubmed) instead of drawing a split.
"""
from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

from ._compat import dgl
from .errors import UserInputError
from .metrics import accuracy, check_finite, check_seed  # noqa: F401  (re-exported: dgl_ltd.data.accuracy)

ENV_DATA_DIR = "DGL_LTD_DATA"
PROTOCOLS = ("ltd", "random")
SOURCES = ("npz", "dgl")
SPLITS = ("protocol", "public")  # the split of ``protocol``; DGL's public masks
PUBLIC_MASKS = ("train_mask", "val_mask", "test_mask")
PUBLIC_SPLIT_DATASETS = ("cora", "citeseer", "pubmed")  # the Planetoid graphs; the others ship no split
SPLIT_COUNTS = (20, 20, 10)  # per class: V_L^D, V_L^E, validation
MASK_NAMES = ("distill_mask", "temp_mask", "val_mask")
BUILTIN_DIR = Path(__file__).resolve().parent / "_data"

# canonical name -> (npz path relative to the data dir, DGL class, DGL raw folder)
DATASETS = {
    "cora": ("npz/cora.npz", "CoraGraphDataset", "cora_v2_d697a464"),
    "citeseer": ("npz/citeseer.npz", "CiteseerGraphDataset", "citeseer_d6836239"),
    "pubmed": ("npz/pubmed.npz", "PubmedGraphDataset", "pubmed_35464cad"),
    "amazon-computers": (
        "amazon_co_buy_computer_b5999b2e/amazon_co_buy_computer.npz",
        "AmazonCoBuyComputerDataset",
        "amazon_co_buy_computer_b5999b2e",
    ),
    "amazon-photo": (
        "amazon_co_buy_photo_b75d805d/amazon_co_buy_photo.npz",
        "AmazonCoBuyPhotoDataset",
        "amazon_co_buy_photo_b75d805d",
    ),
    "coauthor-cs": ("coauthor_cs_10782e7c/coauthor_cs.npz", "CoauthorCSDataset", "coauthor_cs_10782e7c"),
    "coauthor-physics": (
        "coauthor_physics_310c1038/coauthor_physics.npz",
        "CoauthorPhysicsDataset",
        "coauthor_physics_310c1038",
    ),
}
# the paper's file names (also the folder names of its teacher logits)
ALIASES = {
    "amazon_electronics_computers": "amazon-computers",
    "amazon_electronics_photo": "amazon-photo",
    "ms_academic_cs": "coauthor-cs",
    "ms_academic_phy": "coauthor-physics",
}


def canonical_name(name: str) -> str:
    """Map a dataset name or alias (``amazon_electronics_computers``, ``Cora``) to its canonical name."""
    key = name.strip().lower().replace(" ", "-")
    key = ALIASES.get(key, key).replace("_", "-")
    if key not in DATASETS and key != "planted":
        raise UserInputError(
            f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}, planted"
        )
    return key


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """``data_dir``, else ``$DGL_LTD_DATA``, else ``None`` (only the built-in Cora is available)."""
    if data_dir is None:
        data_dir = os.environ.get(ENV_DATA_DIR) or None
    if data_dir is None:
        return None
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise UserInputError(
            f"data folder {str(path)!r} does not exist; pass --data-dir (or set {ENV_DATA_DIR}) to the "
            "folder that holds MANIFEST.md"
        )
    return path


def read_npz_csr(path: str | os.PathLike) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Read a gnn-benchmark npz file: adjacency (CSR), attributes (CSR) and integer labels."""
    with np.load(path, allow_pickle=False) as data:
        adj = sp.csr_matrix(
            (data["adj_data"], data["adj_indices"], data["adj_indptr"]), shape=tuple(data["adj_shape"])
        )
        if "attr_data" in data:
            attr = sp.csr_matrix(
                (data["attr_data"], data["attr_indices"], data["attr_indptr"]),
                shape=tuple(data["attr_shape"]),
            )
        else:
            attr = sp.csr_matrix(data["attr_matrix"])
        labels = np.asarray(data["labels"]).astype(np.int64)
    return adj, attr, labels


def standardize(
    adj: sp.csr_matrix, attr: sp.csr_matrix, labels: np.ndarray
) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """The paper's preprocessing: symmetric, unweighted, no self-loops, largest component, binary bag-of-words."""
    adj = (adj + adj.T).tocsr()
    adj.data[:] = 1.0
    adj.setdiag(0)
    adj.eliminate_zeros()
    _, component = connected_components(adj, directed=False)
    largest = np.argmax(np.bincount(component))
    keep = np.flatnonzero(component == largest)  # ascending original index
    adj = adj[keep][:, keep].tocsr()
    attr = attr[keep].tocsr()
    attr.data[:] = (attr.data > 0).astype(attr.dtype)
    attr.eliminate_zeros()
    return adj, attr, labels[keep]


def per_class_split(labels: np.ndarray, seed: int, counts=SPLIT_COUNTS) -> list[np.ndarray]:
    """Rounds of ``counts[i]`` nodes per class, drawn as the paper's code draws them.

    Returns one array of node ids per round; the nodes not drawn in any round are the test set.
    """
    rng = np.random.RandomState(seed)
    labels = np.asarray(labels)
    num_classes = int(labels.max()) + 1
    chosen = np.zeros(len(labels), dtype=bool)
    rounds = []
    for count in counts:
        picked = []
        for c in range(num_classes):
            candidates = np.flatnonzero((labels == c) & ~chosen)
            if len(candidates) < count:
                raise UserInputError(
                    f"class {c} has only {len(candidates)} unchosen nodes but the split needs {count} "
                    "per class; use a dataset with more labelled nodes per class"
                )
            take = rng.choice(candidates, count, replace=False)
            chosen[take] = True
            picked.append(take)
        rounds.append(np.concatenate(picked))
    return rounds


def build_graph(adj: sp.csr_matrix, feat: np.ndarray, labels: np.ndarray) -> "dgl.DGLGraph":
    """A DGLGraph (one edge per stored entry of ``adj``) with ``feat`` and ``label`` in ``ndata``."""
    coo = adj.tocoo()
    graph = dgl.graph(
        (torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))),
        num_nodes=adj.shape[0],
    )
    graph.ndata["feat"] = torch.as_tensor(np.asarray(feat), dtype=torch.float32)
    graph.ndata["label"] = torch.as_tensor(labels, dtype=torch.long)
    return graph


def split_masks(labels, seed: int) -> dict:
    """The boolean masks of the per-class split drawn with ``seed`` (seed 0: the paper's).

    Returns
    -------
    dict
        ``distill_mask`` (V_L^D), ``temp_mask`` (V_L^E), ``val_mask``, ``train_mask``
        (V_L^D | V_L^E) and ``test_mask`` (every node not drawn).
    """
    labels = np.asarray(labels)
    n = len(labels)
    masks, rest = {}, torch.ones(n, dtype=torch.bool)
    for name, ids in zip(MASK_NAMES, per_class_split(labels, seed)):
        mask = torch.zeros(n, dtype=torch.bool)
        mask[torch.from_numpy(ids)] = True
        masks[name] = mask
        rest &= ~mask
    masks["train_mask"] = masks["distill_mask"] | masks["temp_mask"]
    masks["test_mask"] = rest
    return masks


def attach_split(graph: "dgl.DGLGraph", seed: int) -> "dgl.DGLGraph":
    """Add ``distill_mask``, ``temp_mask``, ``val_mask``, ``train_mask`` and ``test_mask`` to ``graph``."""
    for name, mask in split_masks(graph.ndata["label"].cpu().numpy(), seed).items():
        graph.ndata[name] = mask.to(graph.device)
    return graph


def _npz_path(name: str, data_dir: Path | None) -> Path:
    rel = DATASETS[name][0]
    if data_dir is None:
        if name == "cora":
            return BUILTIN_DIR / "cora.npz"
        raise UserInputError(
            f"dataset {name!r} needs a data folder; pass --data-dir (or set {ENV_DATA_DIR}) to the folder "
            f"that holds {rel}"
        )
    path = data_dir / rel
    if not path.is_file():
        raise UserInputError(
            f"dataset {name!r} is missing: expected file {path.name!r} in folder {str(path.parent)!r}; "
            "put it there or choose another dataset"
        )
    return path


def _dgl_dataset_graph(name: str, data_dir: Path | None, masks: tuple = ()):
    """Load ``name`` with DGL's own class from a scratch ``raw_dir`` of symlinks (never writes into data_dir).

    The result holds ``feat`` (float32), ``label`` (int64) and the masks named in ``masks``.
    """
    _, cls_name, folder = DATASETS[name]
    if data_dir is None or not (data_dir / folder).is_dir():
        where = "no data folder was given" if data_dir is None else f"folder {str(data_dir / folder)!r} is missing"
        raise UserInputError(
            f"dataset {name!r} from DGL's classes needs the folder {folder!r} ({where}); pass --data-dir"
        )
    scratch = Path(os.environ.get("DGL_LTD_CACHE", Path.home() / ".cache" / "dgl_ltd")) / "dgl_raw"
    target = scratch / folder
    target.mkdir(parents=True, exist_ok=True)
    for entry in (data_dir / folder).iterdir():
        link = target / entry.name
        if entry.is_file() and not link.exists() and "dgl_graph" not in entry.name:
            try:
                link.symlink_to(entry.resolve())
            except OSError:
                shutil.copy2(entry, link)
    os.environ.pop("DGL_REPO", None)
    cls = getattr(dgl.data, cls_name)
    graph = cls(raw_dir=str(scratch), verbose=False)[0]
    out = dgl.graph(graph.edges(), num_nodes=graph.num_nodes())
    out.ndata["feat"] = graph.ndata["feat"].float()
    out.ndata["label"] = graph.ndata["label"].long()
    missing = [mask for mask in masks if mask not in graph.ndata]
    if missing:
        raise UserInputError(f"DGL's {cls_name} has no {missing[0]!r}, so dataset {name!r} has no public split; "
                             f"draw one with --protocol random (protocol='random')")
    for mask in masks:
        out.ndata[mask] = graph.ndata[mask].bool()
    return out


def _check_public_split(name: str, protocol: str, source: str) -> None:
    """``split='public'`` needs DGL's classes, a dataset that ships a split, and no other split protocol."""
    if source != "dgl":
        raise UserInputError("the public split comes with DGL's dataset classes; pass source='dgl' "
                             "(the command line's --split public does)")
    if protocol == "random":
        raise UserInputError("split='public' (--split public) keeps DGL's split, protocol='random' (--protocol random) "
                             "draws another; drop one of them")
    if name not in PUBLIC_SPLIT_DATASETS:
        raise UserInputError(f"dataset {name!r} has no public split (only {', '.join(PUBLIC_SPLIT_DATASETS)} ship "
                             f"one); draw a split with --protocol random (protocol='random')")


def _check_choices(name: str, protocol: str, source: str, split: str) -> None:
    """One-line errors for an unknown protocol, source or split, or a public split the dataset lacks."""
    for what, value, allowed in (("protocol", protocol, PROTOCOLS), ("source", source, SOURCES),
                                 ("split", split, SPLITS)):
        if value not in allowed:
            raise UserInputError(f"unknown {what} {value!r}; choose one of: {', '.join(allowed)}")
    if split == "public":
        _check_public_split(name, protocol, source)


def load_dataset(
    name: str = "cora",
    data_dir: str | os.PathLike | None = None,
    protocol: str = "ltd",
    seed: int = 0,
    source: str = "npz",
    split: str = "protocol",
    **planted_options,
) -> "dgl.DGLGraph":
    """Load a benchmark graph with the split masks of ``protocol``.

    Parameters
    ----------
    name : str
        ``cora``, ``citeseer``, ``amazon-computers``, ``amazon-photo``, ``coauthor-cs``,
        ``coauthor-physics`` (``pubmed`` is known but its files are not shipped), or the paper's
        file names such as ``amazon_electronics_computers``.
    data_dir : path, optional
        Folder laid out as ``shared/data`` (see its MANIFEST.md). Defaults to ``$DGL_LTD_DATA``;
        without either, only the built-in Cora (paper's npz) is available.
    protocol : {'ltd', 'random'}
        ``ltd`` is the paper's split (``RandomState(0)``); ``random`` draws the same per-class
        counts with ``seed``.
    seed : int
        Split seed for ``protocol='random'`` (ignored by ``ltd``, which is always seed 0).
    source : {'npz', 'dgl'}
        ``npz`` (the paper's gnn-benchmark files, preprocessed as the paper does) or ``dgl``
        (DGL's dataset classes, used as DGL returns them; ``protocol='random'`` or
        ``split='public'`` only).
    split : {'protocol', 'public'}
        ``protocol``: the split of ``protocol``. ``public``: keep the public split that DGL's
        class ships (``source='dgl'``; cora, citeseer, pubmed), ignoring ``seed``.
    **planted_options
        Only with ``name='planted'``: the options of :func:`dgl_ltd.planted.planted_partition_graph`
        (``num_nodes``, ``avg_degree``, ``num_classes``, ``num_feats``, ...); ``seed`` seeds the
        graph and its split, and ``data_dir``, ``protocol``, ``source`` and ``split`` are not used.

    Returns
    -------
    DGLGraph
        With ``ndata`` keys ``feat`` (float32, N x F), ``label`` (int64, N) and the boolean masks
        ``distill_mask``, ``temp_mask``, ``val_mask``, ``train_mask``, ``test_mask``; with
        ``split='public'`` only ``train_mask``, ``val_mask`` and ``test_mask``.

    Examples
    --------
    >>> from dgl_ltd.data import load_dataset
    >>> g = load_dataset("cora")          # built-in copy, the paper's protocol
    >>> g.num_nodes(), int(g.ndata["distill_mask"].sum())
    (2485, 140)
    >>> p = load_dataset("cora", "../shared/data", source="dgl", split="public")
    >>> [int(p.ndata[m].sum()) for m in ("train_mask", "val_mask", "test_mask")]
    [140, 500, 1000]
    """
    if not isinstance(name, str):
        raise UserInputError(f"the dataset name must be a string such as 'cora', got {name!r}")
    if name.strip().lower() == "planted":
        from .planted import planted_from_options

        return planted_from_options(seed, planted_options)
    if planted_options:
        raise UserInputError(f"{', '.join(planted_options)}: options of the 'planted' dataset only; drop them "
                             "or pass name='planted'")
    name = canonical_name(name)
    seed = check_seed(seed, "the split seed")
    _check_choices(name, protocol, source, split)
    directory = resolve_data_dir(data_dir)
    if split == "public":
        graph = _dgl_dataset_graph(name, directory, PUBLIC_MASKS)
        check_finite(graph.ndata["feat"], "node features")
        return graph
    if source == "dgl":
        if protocol == "ltd":
            raise UserInputError("the 'ltd' protocol is defined on the paper's npz files; pass source='npz' "
                                 "(or protocol='random', or split='public' for DGL's own split)")
        graph = _dgl_dataset_graph(name, directory)
    else:
        adj, attr, labels = read_npz_csr(_npz_path(name, directory))
        check_finite(torch.from_numpy(np.asarray(attr.data)), f"node features of {name!r}")
        adj, attr, labels = standardize(adj, attr, labels)
        graph = build_graph(adj, attr.toarray(), labels)
    check_finite(graph.ndata["feat"], "node features")
    return attach_split(graph, 0 if protocol == "ltd" else int(seed))


def load_logits(path: str | os.PathLike, graph: "dgl.DGLGraph | None" = None) -> torch.Tensor:
    """Read a teacher-logits file (whitespace-separated text, ``.npy`` or ``.pt``) as float32 N x C.

    When ``graph`` is given, the row count must equal its node count and the column count its
    number of classes.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"logits file {str(path)!r} does not exist; pass the path of an N x C logits file")
    try:
        with warnings.catch_warnings():  # an empty file or an overflow is reported below, in one line
            warnings.simplefilter("ignore")
            if path.suffix == ".npy":
                array = np.load(path)
            elif path.suffix in (".pt", ".pth"):
                loaded = torch.load(path, map_location="cpu")
                if not isinstance(loaded, torch.Tensor):  # e.g. the weights `dgl-ltd teacher --out` saves
                    raise UserInputError(f"{str(path)!r} holds a {type(loaded).__name__}, not a logits tensor (model "
                                         f"weights?); pass the logits file, e.g. the <model>_seed<k>.txt beside it")
                array = loaded.numpy()
            else:
                array = np.loadtxt(path, dtype=np.float64, ndmin=2)
            array = np.asarray(array, dtype=np.float32)
    except UserInputError:
        raise
    except Exception as exc:
        raise UserInputError(f"could not read logits file {str(path)!r} ({exc}); write it as N x C numbers") from exc
    logits = torch.as_tensor(array)
    if logits.dim() != 2:
        raise UserInputError(f"logits in {str(path)!r} have shape {tuple(logits.shape)}; expected N x C")
    if graph is not None:
        n, c = graph.num_nodes(), int(graph.ndata["label"].max()) + 1
        if logits.shape != (n, c):
            raise UserInputError(
                f"logits in {str(path)!r} have shape {tuple(logits.shape)} but the graph needs ({n}, {c}); "
                "use the logits of this dataset under the same protocol"
            )
    check_finite(logits, f"logits in {str(path)!r}")
    return logits
