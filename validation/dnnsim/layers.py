"""The layers, precisions and integer data of the DNNsim reference (numpy only; torch is needed only to capture the
ResNet-38 activations once, in ``run_reference.py capture``).

Every layer's data is kept at one base width and quantized down to each width that is run, with integer arithmetic
only, so the reference rows and the test (``tests/test_dnnsim_reference.py``) see the same integers:

* activations: unsigned levels of 15 bits, ``0 .. 32767``; at ``a`` bits ``round(l · M_a / 32767)`` with
  ``M_a = 2^a − 1`` for ``a ≤ 15`` and ``M_16 = 32767``: DNNsim holds every value in a 16-bit two's-complement word
  (``data_width 16``) and its width table ``core/src/Utils.cpp generateMinMaxTable`` has 2^15 entries, so a 16-bit
  unsigned activation above 32767 would be read out of bounds;
* weights: signed levels of 16 bits, ``−32767 .. 32767``; at ``w`` bits ``round(l · (2^(w−1) − 1) / 32767)``,
  halves away from zero.

Synthetic layers are regenerated from their seeds (``synthetic_levels``); the ResNet-38 layers are read from
``r38_levels.npz`` (``resnet_levels``), written by ``run_reference.py capture`` from the bundled backbone on real
Fashion-MNIST test images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
R38_LEVELS = HERE / "r38_levels.npz"

ACT_BASE_MAX = 32767  # 15-bit unsigned activation levels
WGT_BASE_MAX = 32767  # 16-bit signed weight levels

# (a_bits, w_bits) run on every synthetic layer and on the ResNet-38 layers
SYNTHETIC_PRECISIONS = ((16, 16), (12, 12), (8, 8), (4, 8), (8, 4))
RESNET_PRECISIONS = ((16, 16), (8, 8), (4, 4))
RESNET_IMAGES = (0, 1, 2, 3)  # indices into the Fashion-MNIST test split
RESNET_CHECKPOINT = "examples/checkpoints/fashion-mnist_r38_backbone.pt"


@dataclass(frozen=True)
class Layer:
    """One layer: ``kind`` "conv" (square input ``in_hw``) or "fc" (``in_hw = kernel = 1``)."""

    name: str
    kind: str
    in_ch: int
    out_ch: int
    in_hw: int
    kernel: int
    stride: int
    padding: int
    seed: int = 0  # synthetic layers only

    @property
    def out_hw(self) -> int:
        return (self.in_hw + 2 * self.padding - self.kernel) // self.stride + 1


# Synthetic layers: odd channel counts (lanes padded), more than 256 filters (two filter groups of 16 tiles x 16
# rows), stride 2, a 5x5 kernel on 3 channels, 1x1; two FC layers, one whose ceil(C/16) = 20 steps per filter group
# is not a multiple of the 16 columns (DNNsim's column rotation then reads an empty column on later groups).
# Outputs are square: DNNsim's WindowFirstOutS places window w at (w % out_x, w / out_y).
SYNTHETIC = (
    Layer("s_conv3_c64_k64_16", "conv", 64, 64, 16, 3, 1, 1, seed=101),
    Layer("s_conv3_c24_k40_10", "conv", 24, 40, 10, 3, 1, 1, seed=102),
    Layer("s_conv3_c32_k300_15_s2", "conv", 32, 300, 15, 3, 2, 1, seed=103),
    Layer("s_conv1_c48_k32_12", "conv", 48, 32, 12, 1, 1, 0, seed=104),
    Layer("s_conv5_c3_k16_12", "conv", 3, 16, 12, 5, 1, 2, seed=105),
    Layer("s_fc_c512_k300", "fc", 512, 300, 1, 1, 1, 0, seed=106),
    Layer("s_fc_c320_k520", "fc", 320, 520, 1, 1, 1, 0, seed=107),
)

# ResNet-38 (Fashion-MNIST, 28x28x1) layers, shapes as dfs_sim.layer_table.cifar_resnet_layers(38, input_size=28,
# in_channels=1) gives them (checked by the test against the repository's layer table).
RESNET = (
    Layer("stem", "conv", 1, 16, 28, 3, 1, 1),
    Layer("group1.block1.conv1", "conv", 16, 16, 28, 3, 1, 1),
    Layer("group2.block0.conv1", "conv", 16, 32, 28, 3, 2, 1),
    Layer("group2.block0.projection", "conv", 16, 32, 28, 1, 2, 0),
    Layer("group2.block1.conv1", "conv", 32, 32, 14, 3, 1, 1),
    Layer("group3.block1.conv1", "conv", 64, 64, 7, 3, 1, 1),
    Layer("fc", "fc", 64, 10, 1, 1, 1, 0),
)


def act_shape(layer: Layer) -> tuple[int, ...]:
    return (layer.in_ch,) if layer.kind == "fc" else (layer.in_ch, layer.in_hw, layer.in_hw)


def wgt_shape(layer: Layer) -> tuple[int, ...]:
    return (
        (layer.out_ch, layer.in_ch) if layer.kind == "fc" else (layer.out_ch, layer.in_ch, layer.kernel, layer.kernel)
    )


def _round_ratio(values: np.ndarray, numerator: int, denominator: int) -> np.ndarray:
    """round(values · numerator / denominator), halves away from zero, in exact integer arithmetic."""
    v = values.astype(np.int64)
    magnitude = (np.abs(v) * numerator * 2 + denominator) // (2 * denominator)
    return np.sign(v) * magnitude


def act_levels(base: np.ndarray, a_bits: int) -> np.ndarray:
    """15-bit unsigned base levels quantized to ``a_bits`` (module docstring)."""
    top = ACT_BASE_MAX if a_bits >= 16 else (1 << a_bits) - 1
    return _round_ratio(base, top, ACT_BASE_MAX)


def wgt_levels(base: np.ndarray, w_bits: int) -> np.ndarray:
    """16-bit signed base levels quantized to ``w_bits`` (module docstring)."""
    return _round_ratio(base, (1 << (w_bits - 1)) - 1, WGT_BASE_MAX)


def synthetic_base(layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    """Seeded base levels of a synthetic layer: ReLU-like activations (half zeros, half-normal with a log-normal
    scale per channel, so a few channels are wide and most narrow) and normal weights, each scaled to its base
    range by its largest magnitude."""
    rng = np.random.default_rng(layer.seed)
    shape = act_shape(layer)
    scale = rng.lognormal(0.0, 1.0, size=(layer.in_ch,) + (1,) * (len(shape) - 1))
    x = np.maximum(rng.standard_normal(shape), 0.0) * scale
    acts = np.rint(x / x.max() * ACT_BASE_MAX).astype(np.int64)
    w = rng.standard_normal(wgt_shape(layer))
    wgts = np.rint(w / np.abs(w).max() * WGT_BASE_MAX).astype(np.int64)
    return acts[None], wgts  # activations with a batch axis of one sample


def resnet_base(layer: Layer, path: Path = R38_LEVELS) -> tuple[np.ndarray, np.ndarray]:
    """Base levels of a ResNet-38 layer: activations (images, ...) and weights, from ``r38_levels.npz``."""
    with np.load(path) as data:
        return data[f"act:{layer.name}"].astype(np.int64), data[f"wgt:{layer.name}"].astype(np.int64)


def cases() -> list[tuple[str, Layer, tuple[tuple[int, int], ...]]]:
    """(source, layer, precisions) of every layer of the reference."""
    return [("synthetic", layer, SYNTHETIC_PRECISIONS) for layer in SYNTHETIC] + [
        ("resnet38", layer, RESNET_PRECISIONS) for layer in RESNET
    ]


def levels(source: str, layer: Layer, a_bits: int, w_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer activations (samples, ...) and weights of ``layer`` at ``a_bits`` / ``w_bits``."""
    acts, wgts = synthetic_base(layer) if source == "synthetic" else resnet_base(layer)
    return act_levels(acts, a_bits), wgt_levels(wgts, w_bits)
