"""Option sets beyond the paper's seven: names that say the widths, weights and activations at different widths,
from the config through training, export, trace, replay and plots."""

import copy

import pytest
import torch

from analysis.pipeline import replay
from dfs_sim.errors import ConfigError
from dfs_sim.model.blocks import QuantConv2d
from dfs_sim.model.config import StageConfig, config_from_dict
from dfs_sim.model.export import export
from dfs_sim.model.quantize import quantize_uniform, quantize_weight
from dfs_sim.model.registry import create_model
from dfs_sim.model.training import train
from dfs_sim.options import DFS_OPTIONS, parse_options
from dfs_sim.traces import read_trace
from tests.test_model_fast_paths import _assert_close_maps, _step
from tests.test_train import _tiny

NATIVE = ["skip", "w2a2", "w4a4", "w4a8", "w8a4", "w8a8", "fp"]  # Bit Fusion's native widths


def test_option_names_say_the_widths():
    options = parse_options(NATIVE)
    assert [(o.code, o.w_bits, o.a_bits) for o in options[1:6]] == [
        (1, 2, 2),
        (2, 4, 4),
        (3, 4, 8),
        (4, 8, 4),
        (5, 8, 8),
    ]
    assert options[0].is_skip and options[6].float and options[3].proxy_cost == pytest.approx(4 * 8 / 32**2)
    assert parse_options([o.name for o in DFS_OPTIONS]) == DFS_OPTIONS  # the paper's seven by their names


@pytest.mark.parametrize(
    ("names", "needle"),
    [
        (["skip", "q8"], "exactly one full-precision option"),
        (["fp", "w4"], "unknown option 'w4'"),
        (["fp", "q8", "w8a8"], "same widths"),
        (["fp", "q8", "q8"], "listed twice"),
        (["fp", "w4a17"], "bits must be in 1..16"),
        (["fp", *[f"q{b}" for b in range(1, 17)]], "at most 16 options"),
        ("fp", "non-empty list"),
    ],
)
def test_bad_option_lists_are_one_line(names, needle):
    with pytest.raises(ValueError, match=needle):
        parse_options(names)


def test_config_options_are_checked_and_only_for_dfs_models():
    config = config_from_dict({"dataset": "digits", "model": "dfs_resnet8", "options": NATIVE})
    assert config.options == tuple(NATIVE)
    with pytest.raises(ConfigError, match="config: options: unknown option 'w9'"):
        config_from_dict({"dataset": "digits", "model": "dfs_resnet8", "options": ["fp", "w9"]})
    with pytest.raises(ConfigError, match="skipnet_resnet8 has a fixed option list"):
        config_from_dict({"dataset": "digits", "model": "skipnet_resnet8", "options": NATIVE})


def test_a_conv_runs_weights_and_inputs_at_their_own_widths():
    torch.manual_seed(0)
    conv = QuantConv2d(3, 4, 3, padding=1, bias=False).eval()
    x = torch.randn(2, 3, 6, 6)
    conv.input_quantizer.running_min.fill_(-2.0)
    conv.input_quantizer.running_max.fill_(2.0)
    conv.input_quantizer.initialized.fill_(True)
    out = conv(x, 4, input_bits=8)
    expected = torch.nn.functional.conv2d(
        quantize_uniform(x, 8, torch.tensor(-2.0), torch.tensor(2.0)), quantize_weight(conv.weight, 4), padding=1
    )
    assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.allclose(out, conv(x, 8, input_bits=4))  # the two widths are not interchangeable


def test_fast_training_forward_equals_the_reference_with_mixed_widths():
    torch.manual_seed(1)
    base = create_model("dfs_resnet14", options=parse_options(NATIVE)).train()
    with torch.no_grad():
        base.forward_candidates_reference(torch.randn(16, 3, 32, 32), naive=True)
        for embedding in base.gate_embeddings:
            embedding.conv.weight.mul_(30)
        base.controller.fc.weight.normal_(0, 30, generator=torch.Generator().manual_seed(1))
    x = torch.randn(12, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    y = torch.randint(0, 10, (12,), generator=torch.Generator().manual_seed(5))
    reference = _step(copy.deepcopy(base), lambda m, x: m.forward_candidates_reference(x, naive=True), x, y)
    fast = _step(copy.deepcopy(base), lambda m, x: m.forward_candidates(x), x, y)
    assert len(torch.unique(reference[0].codes)) >= 3
    assert torch.equal(reference[0].codes, fast[0].codes)
    assert torch.allclose(reference[0].logits, fast[0].logits, atol=2e-5, rtol=1e-4)
    _assert_close_maps(reference[2], fast[2], "buffer")
    _assert_close_maps(reference[1], fast[1], "gradient of")


@pytest.mark.slow
def test_a_mixed_width_option_set_runs_end_to_end(tmp_path):
    config = _tiny(
        tmp_path / "run",
        options=tuple(NATIVE),
        budget=20.0,
        backbone=StageConfig(20, 0.05),
        gate=StageConfig(5, 0.01),
        joint=StageConfig(20, 0.05),
    )
    result = train(config, progress=False)
    (tmp_path / "traces").mkdir()
    trace = read_trace(export(result.checkpoints["joint"], tmp_path / "traces" / "dfs_native.parquet").path)
    assert [option.name for option in trace.options] == NATIVE
    assert [(o["w_bits"], o["a_bits"]) for o in trace.meta["options"]][3] == (4, 8)
    replayed = replay(tmp_path / "traces", presets=["bitfusion_eyeriss"], out=tmp_path / "results", progress=False)
    row = replayed.per_run.iloc[0]
    assert sum(row[f"frac_{name}"] for name in NATIVE) == pytest.approx(1.0)
    assert (tmp_path / "results" / "plots" / "decision_maps.png").is_file()
