"""Where LTD starts: the teacher's neighbourhood entropy, the calibrated start temperature, the network."""
from __future__ import annotations

import torch

from ..temperature import TemperatureNet
from .core import make_optimizer


def calibrated_temperature(teacher_logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
                           k: float | None = None) -> float:
    """The global temperature that minimises the teacher's cross-entropy on ``mask`` (temperature scaling).

    Searched on a log grid over [0.01, 10], or inside the temperature network's positive range
    (0, 0.8k) when ``k`` is given; LTD starts every node there and learns node-specific deviations.
    """
    if k is None:
        grid = torch.logspace(-2, 1, 121, dtype=torch.float64)
    else:
        grid = torch.logspace(-2, 0, 81, dtype=torch.float64) * 0.79 * k
    t = teacher_logits[mask].double()
    y = labels[mask]
    losses = torch.stack([torch.nn.functional.cross_entropy(t / T, y) for T in grid])
    return float(grid[int(torch.argmin(losses))])


def temperature_network(cfg, data) -> tuple:
    """The temperature network, its optimiser, and the resolved start temperature and range ``k``."""
    init_tau = cfg.init_tau
    if init_tau == "calibrated":
        init_tau = calibrated_temperature(data.teacher, data.labels, data.calibration_mask, cfg.k)
    k = cfg.k if cfg.k is not None else 2.0 * init_tau  # init_tau then sits at 0.5k: (-0.4, 1.6) x init
    min_abs = cfg.min_abs_tau if cfg.min_abs_tau is not None else min(0.01, 0.02 * k)
    net = TemperatureNet(data.teacher.shape[1], k, cfg.temp_hidden, cfg.temp_dropout, init_tau, min_abs).to(
        data.feat.device, data.feat.dtype)
    optimizer = make_optimizer(cfg.optimizer, net.parameters(), cfg.beta, cfg.temp_weight_decay)
    return net, optimizer, init_tau, k
