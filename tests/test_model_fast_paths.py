"""The fast training paths give the plain reference's values: forward, gradients and running statistics."""

import copy

import pytest
import torch

from dfs_sim.model.quantize import quantize_levels, quantize_uniform
from dfs_sim.model.registry import create_model


def _calibrated(name, seed=0):
    torch.manual_seed(seed)
    model = create_model(name).train()
    with torch.no_grad():  # BN statistics and activation ranges as training would set them
        model.forward_candidates_reference(torch.randn(16, 3, 32, 32), naive=True)
        for embedding in model.gate_embeddings:  # gates that tell inputs apart: choices vary within the batch
            embedding.conv.weight.mul_(30)
        model.controller.fc.weight.normal_(0, 30, generator=torch.Generator().manual_seed(seed))
    return model


def _step(model, path, x, y):
    out = path(model, x)
    loss = torch.nn.functional.cross_entropy(out.logits, y) + 0.01 * model.computation_cost(out.masks)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads, {n: b.clone() for n, b in model.named_buffers()}


def _assert_close_maps(a, b, what, atol=2e-5, rtol=1e-4):
    for key in a.keys() | b.keys():
        left = a.get(key, torch.zeros(()))
        right = b.get(key, torch.zeros(()))
        assert torch.allclose(left.float(), right.float(), atol=atol, rtol=rtol), f"{what} {key}"


@pytest.mark.parametrize("bits", [1, 2, 8, 10, 12, 14, 16])
def test_quantize_levels_equals_the_reference_exactly(bits):
    x = torch.randn(4, 3, 9, 9, generator=torch.Generator().manual_seed(bits)) * 3
    low, high = torch.tensor(-2.5), torch.tensor(4.0)
    (fast,) = quantize_levels(x, [bits], low, high)
    assert torch.equal(fast, quantize_uniform(x, bits, low, high))


def test_quantize_levels_shares_one_input_and_passes_each_gradient_through():
    x = torch.randn(64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    outputs = quantize_levels(x, [8, 12], torch.tensor(-1.0), torch.tensor(1.0))
    (outputs[0] * 2 + outputs[1] * 3).sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 5.0))
    assert len(torch.unique(outputs[0].detach())) <= 256


@pytest.mark.parametrize("name", ["dfs_resnet8", "dfs_resnet14", "skipnet_resnet8"])
@pytest.mark.parametrize("sync_free", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fast_training_forward_equals_the_reference(name, sync_free, channels_last):
    base = _calibrated(name, seed=1)
    x = torch.randn(12, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    y = torch.randint(0, 10, (12,), generator=torch.Generator().manual_seed(5))
    if channels_last:  # both paths in the layout the trainer uses on a CPU
        base = base.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    reference = _step(copy.deepcopy(base), lambda m, x: m.forward_candidates_reference(x, naive=True), x, y)
    fast = _step(copy.deepcopy(base), lambda m, x: m.forward_candidates(x, sync_free=sync_free), x, y)
    assert len(torch.unique(reference[0].codes)) >= 2
    assert torch.equal(reference[0].codes, fast[0].codes)
    assert torch.allclose(reference[0].logits, fast[0].logits, atol=2e-5, rtol=1e-4)
    _assert_close_maps(reference[2], fast[2], "buffer")
    if not channels_last:
        _assert_close_maps(reference[1], fast[1], "gradient of")
    else:
        # The gate's gradient is a difference of nearly equal dot products <grad, candidate_k>; the two paths sum
        # them in another order in this layout, and the cancellation magnifies that to ~1% of the gradient's scale.
        for key in reference[1]:
            a, b = reference[1][key], fast[1].get(key, torch.zeros(()))  # unused: no gradient, or zero
            assert (a - b).abs().max() <= 1e-6 + 2e-2 * a.abs().max(), f"gradient of {key}"
    assert any(g.abs().sum() > 0 for k, g in fast[1].items() if k.startswith("controller"))


def test_gate_stage_runs_the_frozen_backbone_at_full_precision():
    base = _calibrated("dfs_resnet8", seed=2)
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    backbone = copy.deepcopy(base)
    expected = backbone(x, fixed_code=backbone.fp_code)
    model = copy.deepcopy(base)
    out = model.forward_gate_stage(x)
    assert torch.allclose(out.logits, expected.logits, atol=1e-5, rtol=1e-4)  # the masks do not change the output
    assert out.masks.shape == (8, model.num_gated, len(model.options)) and out.probs is not None
    model.computation_cost(out.masks).backward()
    assert all(p.grad is None for p in model.backbone_parameters())
    assert all(p.grad is not None for p in model.controller.parameters())
    _assert_close_maps(dict(backbone.named_buffers()), dict(model.named_buffers()), "buffer")  # BN sees fp only


def test_channels_last_gives_the_same_full_precision_values():
    """The layout changes only the order of sums (quantized options can then round one level apart, so compare fp)."""
    base = _calibrated("dfs_resnet8", seed=3)
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    plain = copy.deepcopy(base)(x, fixed_code=base.fp_code)
    last = copy.deepcopy(base).to(memory_format=torch.channels_last)
    out = last(x.contiguous(memory_format=torch.channels_last), fixed_code=base.fp_code)
    assert torch.allclose(plain.logits, out.logits, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("quantizer", ["standard", "standard_mse"])
def test_fast_training_forward_equals_the_reference_under_the_standard_quantizers(quantizer):
    """Each width quantizes with the running range as it stands after its own observation, on both paths."""
    torch.manual_seed(1)
    base = create_model("dfs_resnet8", quantizer=quantizer).train()
    with torch.no_grad():
        base.forward_candidates_reference(torch.randn(16, 3, 32, 32), naive=True)
        for embedding in base.gate_embeddings:
            embedding.conv.weight.mul_(30)
        base.controller.fc.weight.normal_(0, 30, generator=torch.Generator().manual_seed(1))
        for module in base.modules():  # distinct clips per width, as a calibration would leave them
            if hasattr(module, "clip"):
                module.clip.copy_(torch.linspace(0.5, 1.0, module.clip.numel()))
    x = torch.randn(12, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    y = torch.randint(0, 10, (12,), generator=torch.Generator().manual_seed(5))
    reference = _step(copy.deepcopy(base), lambda m, x: m.forward_candidates_reference(x, naive=True), x, y)
    fast = _step(copy.deepcopy(base), lambda m, x: m.forward_candidates(x), x, y)
    assert len(torch.unique(reference[0].codes)) >= 2 and torch.equal(reference[0].codes, fast[0].codes)
    assert torch.allclose(reference[0].logits, fast[0].logits, atol=2e-5, rtol=1e-4)
    _assert_close_maps(reference[2], fast[2], "buffer")
    _assert_close_maps(reference[1], fast[1], "gradient of")
