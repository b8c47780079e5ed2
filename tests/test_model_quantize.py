"""The uniform quantizer: 2^b levels, identity (straight-through) gradient, running activation ranges."""

import pytest
import torch

from dfs_sim.model.quantize import ActivationQuantizer, quantize_uniform, quantize_weight


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
