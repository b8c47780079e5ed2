"""The gates: per-block feature → shared LSTM → a decision per input, hard forward, soft backward.

Gate of gated block b reads the previous block's output: AvgPool to 1×1 → 1×1 conv to 10 channels (one per block) →
one LSTM(10, 10) shared by all blocks, its hidden state carried from block to block, then

- DFS (``GateController``): Linear(10, options) → softmax; the forward value is the one-hot argmax, the gradient the
  softmax's (``hard − p.detach() + p``);
- SkipNet (``SkipGateController``, ``ucbdrive/skipnet`` ``cifar/models.py`` ``RNNGate``/``RNNGatePolicy``):
  Linear(10, 1) → sigmoid, the probability p of executing the block; the decision is ``p > 0.5`` with the gradient
  of p (straight-through), or, for the reinforcement-learning phase, a Bernoulli(p) sample with no gradient (the
  policy gradient comes from the log-probability of the sample instead).

Both return the decision as a one-hot mask over the options and the probability of each option, so the network,
the cost term and the traces treat them alike; SkipNet's options are (skip, full precision) in that order.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GateController", "GateEmbedding", "SkipGateController", "straight_through_one_hot"]


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


class SkipGateController(nn.Module):
    """SkipNet's controller: the shared LSTM(embed, embed), Linear(embed, 1) and a sigmoid, p = P(execute).

    ``step`` returns ``(mask, probs, state)`` over the options (skip, execute): ``probs`` is ``[1 − p, p]``; the mask
    is the thresholded decision with p's gradient (straight-through), or with ``sample`` a Bernoulli(p) draw without
    gradient. The linear layer starts as the authors' RL model's: N(0, √(2/(out·in))) weights, zero bias."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(embed_dim, embed_dim)
        self.fc = nn.Linear(embed_dim, 1)
        nn.init.normal_(self.fc.weight, std=(2.0 / embed_dim) ** 0.5)
        nn.init.zeros_(self.fc.bias)

    def step(self, feature: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None, sample: bool = False):
        output, state = self.lstm(feature.unsqueeze(0), state)
        execute = torch.sigmoid(self.fc(output.squeeze(0)))  # N × 1
        probs = torch.cat([1 - execute, execute], dim=1)
        if sample:
            decision = torch.bernoulli(execute.detach())
        else:
            decision = (execute > 0.5).to(execute.dtype) - execute.detach() + execute
        return torch.cat([1 - decision, decision], dim=1), probs, state
