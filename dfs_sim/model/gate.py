"""The DFS / SkipNet gate: per-block feature → shared LSTM → option probabilities, hard forward, soft backward.

Gate of gated block b reads the previous block's output: AvgPool to 1×1 → 1×1 conv to 10 channels (one per block) →
one LSTM(10, 10) shared by all blocks, its hidden state carried from block to block → Linear(10, options) → softmax.
The forward value is the one-hot argmax; the gradient is the softmax's (``hard − p.detach() + p``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GateController", "GateEmbedding", "straight_through_one_hot"]


def straight_through_one_hot(probs: torch.Tensor) -> torch.Tensor:
    """One-hot of the argmax in the forward pass, the gradient of ``probs`` in the backward pass."""
    hard = F.one_hot(probs.argmax(dim=1), probs.shape[1]).to(probs.dtype)
    return hard - probs.detach() + probs


class GateEmbedding(nn.Module):
    """AvgPool to 1×1, then a 1×1 convolution to the gate's embedding width (one per gated block)."""

    def __init__(self, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(in_channels, embed_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x)).flatten(1)


class GateController(nn.Module):
    """The shared LSTM(embed, embed) and Linear(embed, options); ``step`` advances the hidden state by one block."""

    def __init__(self, embed_dim: int, num_options: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(embed_dim, embed_dim)
        self.fc = nn.Linear(embed_dim, num_options)

    def step(self, feature: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None):
        """Return ``(mask, probs, state)``: the straight-through one-hot mask (N × options) and the softmax."""
        output, state = self.lstm(feature.unsqueeze(0), state)
        probs = F.softmax(self.fc(output.squeeze(0)), dim=1)
        return straight_through_one_hot(probs), probs, state
