"""Uniform asymmetric quantization with a straight-through gradient (DESIGN §1).

Weights are quantized per tensor from the tensor's own min/max. Activations use a running min/max: in training the
per-sample min and max are averaged over the batch and folded into running averages; at evaluation the running values
are used as they are, so an input's result never depends on the rest of its batch. Rounding is deterministic.
The forward value is exactly the quantized one; the gradient is the identity (straight-through estimator).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ActivationQuantizer", "quantize_uniform", "quantize_weight"]

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


def quantize_weight(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-tensor min/max quantization of a weight tensor."""
    with torch.no_grad():
        low, high = weight.min(), weight.max()
    return quantize_uniform(weight, bits, low, high)


class ActivationQuantizer(nn.Module):
    """Running min/max of a layer's input (per-sample extremes averaged over the batch), then uniform quantization.

    ``momentum`` weighs the old running value: ``running = momentum·running + (1 − momentum)·batch`` (the convention of
    the quantization code the DFS reference builds on). The first training batch sets the range outright.
    """

    def __init__(self, momentum: float = 0.1) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_min", torch.zeros(()))
        self.register_buffer("running_max", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor, bits: int) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                flat = x.detach().flatten(1)
                low = flat.min(dim=1).values.mean()
                high = flat.max(dim=1).values.mean()
                if bool(self.initialized):
                    self.running_min.mul_(self.momentum).add_(low * (1 - self.momentum))
                    self.running_max.mul_(self.momentum).add_(high * (1 - self.momentum))
                else:
                    self.running_min.copy_(low)
                    self.running_max.copy_(high)
                    self.initialized.fill_(True)
        else:
            low, high = self.running_min, self.running_max
        return quantize_uniform(x, bits, low, high)
