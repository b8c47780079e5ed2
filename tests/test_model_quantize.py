"""The uniform quantizer: 2^b levels, identity (straight-through) gradient, running activation ranges."""

import pytest
import torch

from dfs_sim.model.quantize import CLIP_GRID, ActivationQuantizer, mse_clip, quantize_uniform, quantize_weight


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_quantizer_has_two_to_the_bits_levels(bits):
    x = torch.linspace(-1.0, 3.0, 20001)
    q = quantize_uniform(x, bits, -1.0, 3.0)
    levels = torch.unique(q)
    assert len(levels) == 2**bits
    assert torch.isclose(levels.min(), torch.tensor(-1.0)) and torch.isclose(levels.max(), torch.tensor(3.0))
    assert torch.allclose(torch.diff(levels), torch.full((2**bits - 1,), 4.0 / (2**bits - 1)), atol=1e-5)


def test_quantizer_gradient_is_identity():
    x = (torch.randn(64, generator=torch.Generator().manual_seed(0)) * 3).requires_grad_()
    weights = torch.arange(64, dtype=torch.float32)
    (quantize_uniform(x, 4, -1.0, 1.0) * weights).sum().backward()
    assert torch.equal(x.grad, weights)
    w = torch.randn(8, 4, 3, 3, requires_grad=True)
    quantize_weight(w, 8).sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))


def test_quantizer_rounds_deterministically_to_nearest_level():
    x = torch.tensor([0.0, 0.24, 0.26, 0.49, 0.51, 1.0])
    q = quantize_uniform(x, 1, 0.0, 1.0)  # levels 0 and 1
    assert q.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    assert torch.equal(quantize_uniform(x, 3, 0.0, 1.0), quantize_uniform(x, 3, 0.0, 1.0))


def test_weight_quantizer_uses_the_tensor_min_max():
    w = torch.tensor([-2.0, -0.3, 0.1, 5.0])
    q = quantize_weight(w, 8)
    assert q.min() == -2.0 and q.max() == 5.0


def test_activation_ranges_run_in_training_and_are_fixed_in_evaluation():
    quantizer = ActivationQuantizer(momentum=0.1)
    batch = torch.stack([torch.linspace(0, 1, 10), torch.linspace(-1, 3, 10)])
    quantizer.train()
    quantizer(batch, 8)
    assert quantizer.running_min.item() == pytest.approx(-0.5)  # per-sample minima averaged over the batch
    assert quantizer.running_max.item() == pytest.approx(2.0)
    quantizer(batch * 2, 8)
    assert quantizer.running_max.item() == pytest.approx(0.1 * 2.0 + 0.9 * 4.0)
    quantizer.eval()
    before = quantizer.running_max.clone()
    single = quantizer(batch[1:], 8)
    together = quantizer(torch.cat([batch[1:], batch * 10]), 8)[:1]
    assert torch.equal(single, together)  # evaluation: an input's result does not depend on its batch
    assert torch.equal(quantizer.running_max, before)


# --- the standard schemes (docs/departures.md, "The quantizer") -----------------------------------------------------


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_standard_weights_are_per_channel_symmetric(bits):
    w = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(bits)) * torch.arange(1, 7).view(6, 1, 1, 1)
    q = quantize_weight(w, bits, "standard")
    top = 2 ** (bits - 1) - 1
    for channel in range(6):
        scale = w[channel].abs().max() / top  # an independent computation of the channel's step
        levels = q[channel] / scale
        assert torch.allclose(levels, levels.round(), atol=1e-4)  # every value on the channel's grid
        assert levels.abs().max().round() == top and len(torch.unique(levels.round())) <= 2 * top + 1
        assert torch.allclose(q[channel], (w[channel] / scale).round() * scale, atol=1e-6)


def test_standard_one_bit_weights_are_sign_times_mean_magnitude():
    w = torch.tensor([[1.0, -3.0], [0.5, 0.5]])
    assert torch.equal(quantize_weight(w, 1, "standard"), torch.tensor([[2.0, -2.0], [0.5, 0.5]]))


def test_standard_weight_gradient_is_identity():
    w = torch.randn(4, 2, 3, 3, requires_grad=True)
    quantize_weight(w, 3, "standard_mse").sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))


def test_standard_training_quantizes_with_the_running_range_and_weighs_the_new_batch():
    quantizer = ActivationQuantizer(momentum=0.1, scheme="standard").train()
    first = torch.stack([torch.linspace(0, 1, 10), torch.linspace(0, 3, 10)])  # per-sample maxima 1 and 3: mean 2
    quantizer(first, 8)
    assert quantizer.running_max.item() == pytest.approx(2.0)
    out = quantizer(first * 2, 8)  # batch max 4: running 0.9 * 2 + 0.1 * 4
    assert quantizer.running_max.item() == pytest.approx(2.2)
    assert out.max().item() == pytest.approx(2.2)  # clamped to the running range, not the batch's own 4


def test_calibration_weighs_every_batch_the_same():
    quantizer = ActivationQuantizer(scheme="standard").train()
    quantizer.begin_calibration()
    for top in (1.0, 2.0, 6.0):
        quantizer(torch.linspace(0, top, 50)[None], 4)
    quantizer.end_calibration([4])
    assert quantizer.running_max.item() == pytest.approx(3.0)  # (1 + 2 + 6) / 3: no batch dominates
    authors = ActivationQuantizer(scheme="dfs_authors").train()
    authors.begin_calibration()
    for top in (1.0, 2.0, 6.0):
        authors(torch.linspace(0, top, 50)[None], 4)
    assert authors.running_max.item() == pytest.approx(0.1 * (0.1 * 1 + 0.9 * 2) + 0.9 * 6)  # the last batch rules


def test_mse_clip_tightens_a_heavy_tailed_range_at_few_bits_only():
    values = torch.cat([torch.rand(20000, generator=torch.Generator().manual_seed(0)), torch.full((20,), 3.0)])
    low, high = torch.tensor(0.0), torch.tensor(3.0)
    clip2 = mse_clip(values, low, high, 2)
    assert clip2 < 0.6  # a 2-bit grid spread to the rare 3.0s would round most values in [0, 1] to 0 or 1
    error = lambda top: float((quantize_uniform(values, 2, low, top) - values).square().mean())  # noqa: E731
    assert error(high * clip2) < error(high) and all(error(high * clip2) <= error(high * c) for c in CLIP_GRID)
    uniform = torch.linspace(0, 1, 20001)
    assert mse_clip(uniform, torch.tensor(0.0), torch.tensor(1.0), 8) == 1.0  # nothing to gain on a uniform range


def test_standard_mse_keeps_a_clip_per_width():
    quantizer = ActivationQuantizer(scheme="standard_mse").train()
    quantizer.begin_calibration()
    heavy = torch.cat([torch.rand(4000, generator=torch.Generator().manual_seed(1)), torch.full((4,), 3.0)])
    quantizer(heavy[None], 2)
    quantizer.end_calibration([2, 8])
    assert quantizer.clip[1] < quantizer.clip[7] <= 1.0  # 2 bits clip harder than 8
    quantizer.eval()
    top = float(quantizer.running_max * quantizer.clip[1])
    assert quantizer(torch.tensor([[100.0]]), 2).item() == pytest.approx(top, rel=1e-4)  # clamped at the clip
