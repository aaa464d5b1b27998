"""``MLP.inference`` against the plain chunked forward it replaced, side by side in one process.

The plain path is ``torch.cat([mlp(chunk) for chunk in feat.split(65536)])`` in eval mode (what
``MLP.inference`` ran before commit 82c5b1f); ``MLP.inference`` computes the same logits with its
ReLUs in place and the output layer written straight into one preallocated result. Both run on the
planted graph's features (GLNN's students: 2 x 128 and 3 x 256 with batch norm), alternating, and
each figure is the best of ``--repeats``. Prints a Markdown table (seconds per 100k nodes).

Usage: python benchmarks/mlp_inference_paths.py [--num-nodes 1000000] [--repeats 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import time

import torch

from common import at_least, command_line, git_commit, machine

PRESETS = ("amazon-computers", "ogbn-products")


@torch.no_grad()
def compare(feat: torch.Tensor, preset: str, repeats: int) -> dict:
    from dgl_ltd.models import glnn_mlp

    torch.manual_seed(0)
    mlp = glnn_mlp(feat.shape[1], 47, preset).eval()
    paths = {"plain": lambda: torch.cat([mlp(chunk) for chunk in feat.split(65536)]),
             "inference": lambda: mlp.inference(None, feat)}
    best = {name: float("inf") for name in paths}
    for _ in range(repeats):
        for name, path in paths.items():
            start = time.perf_counter()
            path()
            best[name] = min(best[name], time.perf_counter() - start)
    if not torch.allclose(paths["plain"](), paths["inference"](), atol=1e-5):
        raise RuntimeError(f"{preset}: MLP.inference and the plain forward disagree")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-nodes", type=at_least(1000), default=1_000_000)
    parser.add_argument("--repeats", type=at_least(1), default=5)
    parser.add_argument("--threads", type=at_least(1), default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from dgl_ltd.data import load_dataset

    graph = load_dataset("planted", num_nodes=args.num_nodes, avg_degree=50, num_classes=47, num_feats=100, seed=0)
    per = 100_000 / args.num_nodes
    lines = [f"Command: `{command_line()}` (commit {git_commit()}).", f"Machine: {machine()}.", "",
             "| MLP (GLNN preset) | plain chunked forward s/100k | MLP.inference s/100k | speed-up |",
             "| --- | --- | --- | --- |"]
    for preset in PRESETS:
        best = compare(graph.ndata["feat"], preset, args.repeats)
        lines.append(f"| {preset} | {best['plain'] * per:.4f} | {best['inference'] * per:.4f} | "
                     f"{best['plain'] / best['inference']:.2f}x |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
