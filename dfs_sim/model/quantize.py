"""Uniform asymmetric quantization with a straight-through gradient (docs/design.md §1).

Weights are quantized per tensor from the tensor's own min/max. Activations use a running min/max: in training the
per-sample min and max are averaged over the batch and folded into running averages; at evaluation the running values
are used as they are, so an input's result never depends on the rest of its batch. Rounding is deterministic.
The forward value is exactly the quantized one; the gradient is the identity (straight-through estimator).

``quantize_uniform`` is the plain reference. ``quantize_levels`` is the training path's fast twin: one input at
several widths, the clamp and offset shared, four elementwise passes per width instead of eight, the same values
(``tests/test_model_quantize.py`` checks them equal).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dfs_sim.model.distributed import global_mean

__all__ = ["ActivationQuantizer", "quantize_levels", "quantize_uniform", "quantize_weight"]

_EPS = 1e-8


class _RoundStraightThrough(torch.autograd.Function):
    """Forward: the quantized value exactly; backward: the identity (straight-through estimator)."""

    @staticmethod
    def forward(ctx, x, low, high, levels):
        scale = torch.clamp((high - low) / levels, min=_EPS)
        return torch.round((torch.maximum(torch.minimum(x, high), low) - low) / scale).clamp_(0, levels) * scale + low

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None, None, None


def quantize_uniform(x: torch.Tensor, bits: int, low: torch.Tensor | float, high: torch.Tensor | float) -> torch.Tensor:
    """Round ``x`` onto ``2**bits`` evenly spaced levels from ``low`` to ``high``; identity gradient."""
    if bits < 1:
        raise ValueError(f"bits must be >= 1, got {bits}")
    low = torch.as_tensor(low, dtype=x.dtype, device=x.device).detach()
    high = torch.as_tensor(high, dtype=x.dtype, device=x.device).detach()
    return _RoundStraightThrough.apply(x, low, high, 2**bits - 1)


class _LevelsStraightThrough(torch.autograd.Function):
    """``x`` quantized at several widths from one clamp; the gradient of each output is the identity."""

    @staticmethod
    def forward(ctx, x, low, high, bits):
        ctx.set_materialize_grads(False)
        offset = torch.clamp(x, min=low, max=high).sub_(low)
        outputs = []
        for width in bits:
            levels = 2**width - 1
            scale = torch.clamp((high - low) / levels, min=_EPS)
            # offset / scale lies in [0, levels] (up to one rounding), so the reference's clamp after round is a no-op
            outputs.append(torch.div(offset, scale).round_().mul_(scale).add_(low))
        return tuple(outputs)

    @staticmethod
    def backward(ctx, *grads):
        present = [g for g in grads if g is not None]
        if not present:
            return None, None, None, None
        total = present[0]
        for g in present[1:]:
            total = total + g
        return total, None, None, None


def quantize_levels(
    x: torch.Tensor, bits: Sequence[int], low: torch.Tensor, high: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """``quantize_uniform(x, b, low, high)`` for every ``b`` in ``bits``, sharing the clamp and the offset."""
    if any(b < 1 for b in bits):
        raise ValueError(f"bits must be >= 1, got {list(bits)}")
    if not bits:
        return ()
    low = torch.as_tensor(low, dtype=x.dtype, device=x.device).detach()
    high = torch.as_tensor(high, dtype=x.dtype, device=x.device).detach()
    return _LevelsStraightThrough.apply(x, low, high, tuple(bits))


def quantize_weight(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-tensor min/max quantization of a weight tensor."""
    with torch.no_grad():
        low, high = weight.min(), weight.max()
    return quantize_uniform(weight, bits, low, high)


class ActivationQuantizer(nn.Module):
    """Running min/max of a layer's input (per-sample extremes averaged over the batch), then uniform quantization.

    ``momentum`` weighs the old running value: ``running = momentum·running + (1 − momentum)·batch`` (the convention of
    the quantization code the DFS reference builds on). The first training batch sets the range outright. The update
    never reads a tensor back to the host, so a GPU forward does not wait on it.
    """

    def __init__(self, momentum: float = 0.1) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_min", torch.zeros(()))
        self.register_buffer("running_max", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    @staticmethod
    @torch.no_grad()
    def batch_range(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-sample minimum and maximum of ``x``, each averaged over the (global) batch."""
        flat = x.detach().flatten(1)
        return global_mean(flat.amin(dim=1)), global_mean(flat.amax(dim=1))

    @torch.no_grad()
    def observe(self, low: torch.Tensor, high: torch.Tensor) -> None:
        """Fold one batch's range into the running range (the first batch sets it)."""
        keep = self.momentum
        self.running_min.copy_(torch.where(self.initialized, self.running_min * keep + low * (1 - keep), low))
        self.running_max.copy_(torch.where(self.initialized, self.running_max * keep + high * (1 - keep), high))
        self.initialized.fill_(True)

    def range(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training: this batch's range (and the running range updated once); evaluation: the running range."""
        if not self.training:
            return self.running_min, self.running_max
        low, high = self.batch_range(x)
        self.observe(low, high)
        return low, high

    def forward(self, x: torch.Tensor, bits: int) -> torch.Tensor:
        low, high = self.range(x)
        return quantize_uniform(x, bits, low, high)

    @torch.no_grad()
    def levels(self, x: torch.Tensor, bits: int) -> torch.Tensor:
        """The integer levels (0 .. 2^bits − 1, as floats) that ``forward`` at evaluation maps ``x`` to."""
        low, high = self.running_min, self.running_max
        scale = torch.clamp((high - low) / (2**bits - 1), min=_EPS)
        return torch.round((torch.maximum(torch.minimum(x, high), low) - low) / scale).clamp_(0, 2**bits - 1)
