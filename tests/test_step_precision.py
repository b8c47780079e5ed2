"""The export's ``"step"`` measurement (dfs_sim/model/precision.py) against ``cost_models.step_widths`` (DNNsim's
per-step widths, checked on every row of tests/data/dnnsim_reference.csv), and what the cost model charges for its
mean (issue #29 items 3 and 4)."""

import numpy as np
import pytest
import torch

from cost_models import load_preset, option_cost
from cost_models.bitserial import stepwise_compute
from cost_models.pricing import effective_cost
from cost_models.step_widths import conv_act_step_widths
from dfs_sim.layer_table import ConvLayer
from dfs_sim.model.blocks import GatedBasicBlock
from dfs_sim.model.precision import PrecisionMeter, StepGeometry, step_measurement, step_widths
from dfs_sim.options import DFS_OPTIONS, Option


@pytest.mark.parametrize(
    "channels, size, kernel, stride, padding, top",
    [(16, 8, 3, 1, 1, 255), (20, 9, 3, 2, 1, 4000), (3, 12, 5, 1, 0, 7), (40, 6, 1, 1, 0, 1), (33, 7, 3, 1, 1, 0)],
)
def test_step_widths_are_dnnsims(channels, size, kernel, stride, padding, top):
    rng = np.random.default_rng(channels * size)
    levels = rng.integers(0, top + 1, size=(3, channels, size, size)) * (rng.random((3, channels, size, size)) < 0.6)
    ours = step_widths(torch.from_numpy(levels).float(), kernel, stride, padding).numpy()
    for sample in range(3):
        reference = conv_act_step_widths(levels[sample], kernel, stride, padding, signed=False)
        np.testing.assert_array_equal(ours[sample], reference)
    signed = levels - top // 2  # signed data: the sign bit and the complement, as DNNsim
    ours = step_widths(torch.from_numpy(signed).float(), kernel, stride, padding).numpy()
    if (signed < 0).any():
        reference = conv_act_step_widths(signed[0], kernel, stride, padding, signed=True)
        np.testing.assert_array_equal(ours[0], reference)


def test_a_block_records_the_step_weighted_mean_step_width():
    torch.manual_seed(0)
    block = GatedBasicBlock(16, 32, stride=2).eval()
    for conv in (block.conv1, block.conv2):
        conv.input_quantizer.running_max.fill_(2.0)
        conv.input_quantizer.initialized.fill_(True)
    x = torch.rand(2, 16, 8, 8) ** 4
    option = DFS_OPTIONS[1]  # q8
    inputs = {}
    block.conv1.register_forward_pre_hook(lambda m, a: inputs.__setitem__(1, a[0]))
    block.conv2.register_forward_pre_hook(lambda m, a: inputs.__setitem__(2, a[0]))
    for b in (1, 2):
        with step_measurement(block, StepGeometry(bits_per_cycle=b)):
            meter = PrecisionMeter()
            block(x, option, meter)
        measured = meter.block_bits()
        assert measured is not None
        sums, counts = np.zeros(2), 0
        for index, conv, stride in ((1, block.conv1, 2), (2, block.conv2, 1)):
            levels = conv.input_quantizer.levels(inputs[index], option.a_bits).numpy().astype(np.int64)
            for sample in range(2):
                widths = conv_act_step_widths(levels[sample], 3, stride, 1, signed=False)
                sums[sample] += (b * -(-widths // b)).sum()
            counts += widths.size  # one filter set of 256 each
        np.testing.assert_allclose(measured.numpy(), sums / counts, rtol=1e-12)
    assert PrecisionMeter().geometry is None  # closed: the position measurement again


@pytest.mark.parametrize("preset_name", ["dnnsim_shapeshifter", "dnnsim_loom", "loom_dynamic"])
def test_effective_cost_at_the_mean_step_width_is_dnnsims_sum_over_steps(preset_name):
    """The compute cycles ``effective_cost`` charges at a fractional mean width (the export's step measurement, at
    the preset's bits per cycle) equal ``stepwise_compute`` on the widths themselves: exact, not interpolated."""
    preset = load_preset(preset_name)
    b = preset.array.act_bits_per_cycle
    layer = ConvLayer(32, 64, 16, 16, 3, 1, 1)
    option = Option(1, "q8", 8, 8)
    rng = np.random.default_rng(5)
    levels = rng.integers(0, 256, size=(32, 16, 16)) >> rng.integers(0, 8, size=(32, 16, 16))
    widths = conv_act_step_widths(levels, 3, 1, 1, signed=False)
    exact = stepwise_compute(layer, preset, 8, 8, widths)[0] if preset.array.trim_group == "step" else None
    streamed = b * -(-widths // b)
    mean = float(streamed.mean())
    charged = effective_cost(layer, preset, option, mean).compute_cycles
    expected = streamed.sum() // b * 8 if preset.array.variant == "loom" else streamed.sum()
    assert charged == pytest.approx(expected, rel=1e-12)
    if exact is not None:
        assert charged == pytest.approx(exact, rel=1e-12)
    assert effective_cost(layer, preset, option, 8.0) == option_cost(layer, preset, option)


def test_export_records_which_measurement_made_the_columns(tmp_path):
    """``--precision-measure step`` records DNNsim's mean per-step width and says so in the metadata; it changes no
    decision; at 2 bits per cycle every step rounds up."""
    from dfs_sim.errors import DfsSimError
    from dfs_sim.model.config import StageConfig, TrainConfig
    from dfs_sim.model.export import export, main
    from dfs_sim.model.training import train
    from dfs_sim.traces import read_trace

    config = TrainConfig(
        model="dfs_resnet8",
        dataset="digits",
        out_dir=str(tmp_path / "dfs"),
        batch_size=32,
        augment="none",
        budget=40.0,
        device="cpu",
        seed=3,
        backbone=StageConfig(2, 0.05),
        gate=StageConfig(1, 0.01),
        joint=StageConfig(1, 0.05),
    )
    joint = train(config, progress=False).checkpoints["joint"]
    position = read_trace(export(joint, tmp_path / "position.parquet", effective_precision=True).path)
    out = tmp_path / "step.parquet"
    assert main([str(joint), "--out", str(out), "--effective-precision", "--precision-measure", "step"]) == 0
    step = read_trace(out)
    assert position.meta["effective_precision"]["measurement"] == "position"
    meta = step.meta["effective_precision"]
    assert meta["measurement"] == "step" and meta["preset"] == "stripes_dynamic"
    assert (meta["windows"], meta["lanes"], meta["filters_per_set"], meta["bits_per_cycle"]) == (16, 16, 256, 1)
    assert np.array_equal(step.codes, position.codes) and np.array_equal(step.pred, position.pred)
    assert position.precision is not None and step.precision is not None
    assert ((step.precision > 0) == (position.precision > 0)).all()
    loom = read_trace(
        export(
            joint,
            tmp_path / "loom.parquet",
            effective_precision=True,
            precision_measure="step",
            precision_preset="loom_dynamic",
        ).path
    )
    assert loom.meta["effective_precision"]["bits_per_cycle"] == 2
    assert (loom.precision.astype(int) >= step.precision.astype(int)).all()  # each step rounded up to 2 bits
    with pytest.raises(DfsSimError, match="precision-measure"):
        export(joint, tmp_path / "x.parquet", effective_precision=True, precision_measure="window")
    with pytest.raises(DfsSimError, match="precision-preset"):
        export(
            joint,
            tmp_path / "x.parquet",
            effective_precision=True,
            precision_measure="step",
            precision_preset="bitparallel16",
        )
