"""Copy the weights of a ``dgl_ltd.models`` model into its PyG twin, so both start from the same point.

Works on state dicts only, so it needs no DGL import: the DGL side can be a ``state_dict()``
saved in another process. The mapping per model:

========== =================================================== ===========================================
model      DGL parameter                                       PyG parameter
========== =================================================== ===========================================
GCN        ``layers.i.weight`` (in x out), ``layers.i.bias``   ``layers.i.lin.weight`` (transposed), ``layers.i.bias``
GAT        ``layers.i.fc.weight``, ``attn_l``, ``attn_r``,     ``layers.i.lin.weight``, ``att_src``, ``att_dst``,
           ``bias``                                            ``bias``
GraphSAGE  ``layers.i.fc_neigh.weight``, ``layers.i.bias``     ``layers.i.lin_l.weight``, ``layers.i.lin_l.bias``
APPNP      ``lin1.*``, ``lin2.*``                              the same names
SGC        ``conv.fc.weight``, ``conv.fc.bias``                ``conv.lin.weight``, ``conv.lin.bias``
GCNII      ``lin_in.*``, ``lin_out.*``, ``convs.i.weight1``,   the same ``lin_*``, ``convs.i.conv.weight1``,
           ``convs.i.bias``                                    ``convs.i.bias``
========== =================================================== ===========================================
"""
from __future__ import annotations

import re

import torch
from torch import Tensor, nn

_RULES: dict[str, list[tuple[str, str, bool]]] = {
    # (regex on the DGL name, replacement giving the PyG name, transpose?)
    "gcn": [(r"^layers\.(\d+)\.weight$", r"layers.\1.lin.weight", True),
            (r"^layers\.(\d+)\.bias$", r"layers.\1.bias", False)],
    "gat": [(r"^layers\.(\d+)\.fc\.weight$", r"layers.\1.lin.weight", False),
            (r"^layers\.(\d+)\.attn_l$", r"layers.\1.att_src", False),
            (r"^layers\.(\d+)\.attn_r$", r"layers.\1.att_dst", False),
            (r"^layers\.(\d+)\.bias$", r"layers.\1.bias", False)],
    "graphsage": [(r"^layers\.(\d+)\.fc_neigh\.weight$", r"layers.\1.lin_l.weight", False),
                  (r"^layers\.(\d+)\.bias$", r"layers.\1.lin_l.bias", False)],
    "appnp": [(r"^(lin[12]\.(weight|bias))$", r"\1", False)],
    "sgc": [(r"^conv\.fc\.(weight|bias)$", r"conv.lin.\1", False)],
    "gcnii": [(r"^(lin_(in|out)\.(weight|bias))$", r"\1", False),
              (r"^convs\.(\d+)\.weight1$", r"convs.\1.conv.weight1", False),
              (r"^convs\.(\d+)\.bias$", r"convs.\1.bias", False)],
}


def dgl_to_pyg_state(model: str, dgl_state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename (and where needed transpose) a DGL model's state dict into its PyG twin's names.

    Raises ``KeyError`` for a DGL entry that no rule maps, so an architecture change on either
    side fails loudly instead of leaving a layer at its random initialisation.
    """
    rules = _RULES[model]
    out: dict[str, Tensor] = {}
    for name, value in dgl_state.items():
        for pattern, target, transpose in rules:
            if re.match(pattern, name):
                out[re.sub(pattern, target, name)] = value.t().contiguous() if transpose else value.clone()
                break
        else:
            raise KeyError(f"no PyG counterpart for DGL parameter {name!r} of model {model!r}")
    return out


def copy_dgl_weights(model: str, dgl_state: dict[str, Tensor], pyg_model: nn.Module) -> nn.Module:
    """Load ``dgl_state`` (a DGL model's ``state_dict()``) into ``pyg_model`` (strict: every tensor must match)."""
    mapped = dgl_to_pyg_state(model, dgl_state)
    with torch.no_grad():
        pyg_model.load_state_dict(mapped, strict=True)
    return pyg_model
