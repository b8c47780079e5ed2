"""Model-side measurements for ``python -m benchmarks`` (torch lives here, not in ``benchmarks/``)."""

from __future__ import annotations

import timeit

import torch

from dfs_sim.model.registry import create_model

__all__ = ["bench_grouped_inference", "bench_training"]


def _best_of(function, repeat: int) -> float:
    """The fastest of ``repeat`` calls, in seconds."""
    return min(timeit.repeat(function, number=1, repeat=repeat))


def bench_grouped_inference(batch: int = 256) -> dict:
    """Inference that runs only the chosen option per input against the all-candidates forward of training."""
    torch.manual_seed(0)
    model = create_model("dfs_resnet38").eval()
    images = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.forward_grouped(images[:8])
        grouped_s = _best_of(lambda: model.forward_grouped(images), repeat=2)
        candidates_s = _best_of(lambda: model.forward_candidates_reference(images), repeat=2)
    return {
        "model_batch": batch,
        "grouped_s": grouped_s,
        "candidates_s": candidates_s,
        "model_speedup": candidates_s / grouped_s,
    }


def _training_step(model, images, labels, forward, stage: str):
    """One SGD iteration of ``stage`` through ``forward``; returns a function that runs it."""
    from torch.nn import functional as F

    gates = {id(p) for p in model.gate_parameters()}
    for p in model.parameters():
        p.requires_grad_(stage == "joint" or (stage == "backbone") != (id(p) in gates))
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)

    def step() -> None:
        output = forward(model, images)
        loss = F.cross_entropy(output.logits, labels)
        if stage != "backbone":
            loss = loss + 1e-5 * model.computation_cost(output.masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


_PLAIN = {  # the paths training took before the speed work (the reference implementations)
    "backbone": lambda m, x: m.forward_candidates_reference(x, fixed_code=m.fp_code),
    "gate": lambda m, x: m.forward_candidates_reference(x),
    "joint": lambda m, x: m.forward_candidates_reference(x),
}
_FAST = {  # the paths dfs_sim.model.training takes on a CPU
    "backbone": lambda m, x: m.forward_candidates(x, fixed_code=m.fp_code),
    "gate": lambda m, x: m.forward_gate_stage(x),
    "joint": lambda m, x: m.forward_candidates(x),
}


def bench_training(batch: int = 128, model_name: str = "dfs_resnet38", repeat: int = 2) -> dict:
    """Seconds per training iteration of each stage, the plain path against the fast one (and the fast one with
    channels_last), measured back to back in this process on the same batch; best of ``repeat``."""
    import copy

    torch.manual_seed(0)
    base = create_model(model_name).train()
    images = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, base.num_classes, (batch,), generator=torch.Generator().manual_seed(1))
    results: dict = {"train_batch": batch}
    for stage in ("backbone", "gate", "joint"):
        variants = {
            "plain": (copy.deepcopy(base), images, _PLAIN[stage]),
            "fast": (copy.deepcopy(base), images, _FAST[stage]),
            "fast_cl": (
                copy.deepcopy(base).to(memory_format=torch.channels_last),
                images.contiguous(memory_format=torch.channels_last),
                _FAST[stage],
            ),
        }
        steps = {name: _training_step(m, x, labels, f, stage) for name, (m, x, f) in variants.items()}
        best = dict.fromkeys(steps, float("inf"))
        for step in steps.values():
            step()  # warm-up
        for _ in range(repeat):  # interleaved, so a noisy minute hits every variant alike
            for name, step in steps.items():
                best[name] = min(best[name], _best_of(step, 1))
        results[f"train_{stage}_plain_s"] = best["plain"]
        results[f"train_{stage}_fast_s"] = best["fast"]
        results[f"train_{stage}_speedup"] = best["plain"] / best["fast"]
        results[f"train_{stage}_channels_last_speedup"] = best["plain"] / best["fast_cl"]
    return results
