"""Model-side measurements for ``python -m benchmarks`` (torch lives here, not in ``benchmarks/``)."""

from __future__ import annotations

import time

import torch

from dfs_sim.model.registry import create_model

__all__ = ["bench_grouped_inference"]


def _best_of(function, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def bench_grouped_inference(batch: int = 256) -> dict:
    """Inference that runs only the chosen option per input against the all-candidates forward of training."""
    torch.manual_seed(0)
    model = create_model("dfs_resnet38").eval()
    images = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.forward_grouped(images[:8])
        grouped_s = _best_of(lambda: model.forward_grouped(images), repeat=2)
        candidates_s = _best_of(lambda: model.forward_candidates(images), repeat=2)
    return {"model_batch": batch, "grouped_s": grouped_s, "candidates_s": candidates_s,
            "model_speedup": candidates_s / grouped_s}
