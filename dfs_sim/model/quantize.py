"""Uniform quantization with a straight-through gradient, in three schemes (docs/design.md §1, docs/departures.md).

``dfs_authors``, the quantizer of the DFS reference code: weights per tensor from the tensor's own min/max
(asymmetric); activations from a running min/max of per-sample extremes averaged over the batch, where a training
batch is quantized with its own range and ``momentum`` weighs the *old* running value (0.1 keeps a tenth of it).

``standard`` and ``standard_mse``, what quantization practice does (the project's default is named in
``DEFAULT_QUANTIZER``): weights per output channel, symmetric around zero (±(2^(b−1) − 1) levels; 1 bit is the sign
times the channel's mean magnitude); activations quantized with the running range, never the batch's own. A
calibration pass (``begin_calibration`` … ``end_calibration``) averages every calibration batch with equal weight;
training folds each batch in with weight ``momentum`` (new value, PyTorch's convention). ``standard_mse`` also keeps,
per activation width, the clip of the range's top that minimises the quantization's mean squared error on the
calibration data (a grid search, ``mse_clip``): at few bits a tighter range loses less to rounding than it loses to
clipping.

Evaluation always uses the running range, so an input's result never depends on the rest of its batch. Rounding is
deterministic; the forward value is exactly the quantized one; the gradient is the identity.

``quantize_uniform`` is the plain reference. ``quantize_levels`` is the training path's fast twin: one input at
several widths, the clamp and offset shared, four elementwise passes per width instead of eight, the same values
(``tests/test_model_quantize.py`` checks them equal).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dfs_sim.model.distributed import global_mean

__all__ = [
    "DEFAULT_QUANTIZER",
    "LEGACY_QUANTIZER",
    "QUANTIZERS",
    "ActivationQuantizer",
    "fill_quantizer_defaults",
    "mse_clip",
    "quantize_levels",
    "quantize_uniform",
    "quantize_weight",
]

_EPS = 1e-8
MAX_BITS = 16  # the widest quantized option (dfs_sim.options.MAX_QUANTIZED_BITS)
QUANTIZERS = {
    "dfs_authors": "the DFS reference code's: per-tensor min/max weights, batch ranges in training",
    "standard": "per-channel symmetric weights, activations on a range calibrated over the whole calibration set",
    "standard_mse": "standard, with a per-width activation clip minimising the quantization MSE on calibration data",
}
# chosen on the validation split (docs/departures.md, "The quantizer"); checkpoints and traces that name no quantizer
# were made with the authors' one
DEFAULT_QUANTIZER = "standard_mse"
LEGACY_QUANTIZER = "dfs_authors"
CLIP_GRID = tuple(round(0.30 + 0.025 * i, 3) for i in range(29))  # 0.30 .. 1.00 of the range's top
_CALIBRATION_SAMPLE = 1 << 15  # activation values kept per calibration batch for the MSE search


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


def quantize_weight(weight: torch.Tensor, bits: int, scheme: str = LEGACY_QUANTIZER) -> torch.Tensor:
    """``weight`` on ``bits``: per tensor from its min/max (``dfs_authors``), or per output channel (dim 0),
    symmetric, ``±(2^(bits−1) − 1)`` levels of ``max|w| / (2^(bits−1) − 1)`` (the standard schemes; 1 bit: the sign
    times the channel's mean magnitude). Identity gradient."""
    if scheme == LEGACY_QUANTIZER:
        with torch.no_grad():
            low, high = weight.min(), weight.max()
        return quantize_uniform(weight, bits, low, high)
    if bits < 1:
        raise ValueError(f"bits must be >= 1, got {bits}")
    with torch.no_grad():
        magnitude = weight.detach().abs().flatten(1)
        shape = (-1,) + (1,) * (weight.dim() - 1)
        if bits == 1:
            scale = magnitude.mean(dim=1).view(shape)
            quantized = torch.where(weight >= 0, scale, -scale)
        else:
            top = 2 ** (bits - 1) - 1
            scale = torch.clamp(magnitude.amax(dim=1) / top, min=_EPS).view(shape)
            quantized = torch.round(weight / scale).clamp_(-top, top) * scale
    return weight + (quantized - weight).detach()


def mse_clip(values: torch.Tensor, low: torch.Tensor, high: torch.Tensor, bits: int) -> float:
    """The fraction ``c`` of ``CLIP_GRID`` for which quantizing ``values`` on ``bits`` between ``low`` and
    ``low + c·(high − low)`` has the least mean squared error (ties: the widest range)."""
    best, best_error = 1.0, float("inf")
    for fraction in reversed(CLIP_GRID):
        top = low + fraction * (high - low)
        error = float((quantize_uniform(values, bits, low, top) - values).square().mean())
        if error < best_error:
            best, best_error = fraction, error
    return best


def fill_quantizer_defaults(state: dict, own: dict) -> dict:
    """``state`` with the activation quantizers' per-width clips ``own`` has and ``state`` lacks (checkpoints written
    before the standard quantizers) set to ``own``'s defaults; a new dict, ``state`` untouched."""
    filled = dict(state)
    for key, value in own.items():
        if key.endswith("input_quantizer.clip") and key not in filled:
            filled[key] = torch.ones_like(value)
    return filled


class ActivationQuantizer(nn.Module):
    """The running range of a layer's input (per-sample extremes averaged over the batch), then uniform quantization
    (the schemes are described in the module docstring).

    ``momentum``: ``dfs_authors`` weighs the old running value, ``running = momentum·running + (1 − momentum)·batch``
    (the convention of the quantization code the DFS reference builds on); the standard schemes weigh the new one,
    ``running = (1 − momentum)·running + momentum·batch``. The first training batch sets the range outright. The update
    never reads a tensor back to the host, so a GPU forward does not wait on it.
    """

    def __init__(self, momentum: float = 0.1, scheme: str = LEGACY_QUANTIZER) -> None:
        super().__init__()
        if scheme not in QUANTIZERS:
            raise ValueError(f"unknown quantizer {scheme!r}; valid: {', '.join(QUANTIZERS)}")
        self.momentum, self.scheme = momentum, scheme
        self.register_buffer("running_min", torch.zeros(()))
        self.register_buffer("running_max", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        # per activation width 1..16: the fraction of the range's top kept (standard_mse; 1 elsewhere)
        self.register_buffer("clip", torch.ones(MAX_BITS))
        self._calibration: list | None = None  # (batches seen, value samples) during a calibration pass

    @staticmethod
    @torch.no_grad()
    def batch_range(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-sample minimum and maximum of ``x``, each averaged over the (global) batch."""
        flat = x.detach().flatten(1)
        return global_mean(flat.amin(dim=1)), global_mean(flat.amax(dim=1))

    @torch.no_grad()
    def observe(self, low: torch.Tensor, high: torch.Tensor) -> None:
        """Fold one batch's range into the running range (the first batch sets it)."""
        if self._calibration is not None:  # every calibration batch weighs the same
            seen = self._calibration[0]
            self.running_min.mul_(seen / (seen + 1)).add_(low / (seen + 1))
            self.running_max.mul_(seen / (seen + 1)).add_(high / (seen + 1))
            self._calibration[0] = seen + 1
            self.initialized.fill_(True)
            return
        new = 1 - self.momentum if self.scheme == LEGACY_QUANTIZER else self.momentum
        self.running_min.copy_(torch.where(self.initialized, self.running_min * (1 - new) + low * new, low))
        self.running_max.copy_(torch.where(self.initialized, self.running_max * (1 - new) + high * new, high))
        self.initialized.fill_(True)

    def begin_calibration(self) -> None:
        """Start a calibration pass: the running range is reset, and every batch until ``end_calibration`` weighs the
        same (standard schemes; ``dfs_authors`` keeps its momentum, as its authors' code does)."""
        self.initialized.fill_(False)
        self.running_min.zero_()
        self.running_max.zero_()
        self.clip.fill_(1.0)
        self._calibration = [0, []] if self.scheme != LEGACY_QUANTIZER else None

    @torch.no_grad()
    def end_calibration(self, widths: Sequence[int]) -> None:
        """End a calibration pass; ``standard_mse`` searches the clip of each activation width in ``widths``."""
        state, self._calibration = self._calibration, None
        if self.scheme != "standard_mse" or state is None or not state[1]:
            return
        values = torch.cat(state[1])
        for width in sorted(set(widths)):
            self.clip[width - 1] = mse_clip(values, self.running_min, self.running_max, width)

    def _keep_sample(self, x: torch.Tensor) -> None:
        if self._calibration is not None and self.scheme == "standard_mse":
            flat = x.detach().flatten()
            step = max(1, flat.numel() // _CALIBRATION_SAMPLE)
            self._calibration[1].append(flat[::step].float())

    def _top(self, bits: int) -> torch.Tensor:
        return self.running_min + self.clip[bits - 1] * (self.running_max - self.running_min)

    def ranges(self, x: torch.Tensor, widths: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(low, high)`` of each width. Training observes ``x`` once per width, in order, as the reference path does
        (each candidate's convolution observes its input): ``dfs_authors`` returns the batch's range for every width,
        the standard schemes the running range as it stands after that width's observation. Evaluation returns the
        running range."""
        if not self.training:
            return [(self.running_min, self._top(bits)) for bits in widths]
        low, high = self.batch_range(x)
        self._keep_sample(x)
        found = []
        for bits in widths:
            self.observe(low, high)
            found.append(
                (low, high) if self.scheme == LEGACY_QUANTIZER else (self.running_min.clone(), self._top(bits))
            )
        return found

    def range(self, x: torch.Tensor, bits: int = MAX_BITS) -> tuple[torch.Tensor, torch.Tensor]:
        """Training: the range ``forward`` uses for ``x`` (the running range updated once); evaluation: the running
        range."""
        return self.ranges(x, [bits])[0]

    def forward(self, x: torch.Tensor, bits: int) -> torch.Tensor:
        low, high = self.range(x, bits)
        return quantize_uniform(x, bits, low, high)

    @torch.no_grad()
    def levels(self, x: torch.Tensor, bits: int) -> torch.Tensor:
        """The integer levels (0 .. 2^bits − 1, as floats) that ``forward`` at evaluation maps ``x`` to."""
        low, high = self.running_min, self._top(bits)
        scale = torch.clamp((high - low) / (2**bits - 1), min=_EPS)
        return torch.round((torch.maximum(torch.minimum(x, high), low) - low) / scale).clamp_(0, 2**bits - 1)
