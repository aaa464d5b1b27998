"""Where training runs: the CPU, or a CUDA GPU when both torch and DGL can use one.

DGL 2.1 from PyPI is a CPU-only build: torch may see a GPU while DGL cannot place a graph there,
so a GPU is used only when a one-edge graph moves onto it.
"""
from __future__ import annotations

import torch

from .errors import UserInputError

DEVICES = ("cpu", "cuda")


def dgl_can_use_cuda() -> bool:
    """Whether this DGL build places graphs on the GPU (a one-edge graph is moved there to find out)."""
    from ._compat import dgl

    try:
        dgl.graph(([0], [0])).to("cuda")
    except Exception:  # DGL's CPU build raises DGLError; torch without a driver a RuntimeError
        return False
    return True


def resolve_device(name: str | None = None, flag: str = "--device") -> torch.device:
    """The device to train on: ``name``, or by default ``cuda`` when torch and DGL can use it, else ``cpu``.

    Parameters
    ----------
    name : {'cpu', 'cuda'}, optional
        The device asked for; ``None`` picks one.
    flag : str
        The option that asked, for the messages.

    Raises
    ------
    UserInputError
        ``cuda`` was asked for without a GPU that torch sees, or with a DGL build that cannot use it.
    """
    if name is None:
        use_gpu = torch.cuda.is_available() and dgl_can_use_cuda()
        return torch.device("cuda" if use_gpu else "cpu")
    if name not in DEVICES:
        raise UserInputError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserInputError(f"{flag} cuda: torch sees no CUDA GPU on this machine; use {flag} cpu, or a GPU "
                                 f"machine with a CUDA build of torch")
        if not dgl_can_use_cuda():
            raise UserInputError(f"{flag} cuda: this DGL build cannot place graphs on the GPU (DGL 2.1 from PyPI is "
                                 f"CPU-only); install a CUDA build of DGL (see dgl.ai) or use {flag} cpu")
    return torch.device(name)
