"""Dynamic width: options that run a unit at a fraction of its internal channels, named, stored and priced."""

import dataclasses

import numpy as np
import pytest

from cost_models import build_cost_table, list_presets, load_preset
from cost_models.pricing import option_cost
from dfs_sim.layer_table import ConvLayer, LayerTable, narrowed
from dfs_sim.options import canonical_name, options_from_meta, options_to_meta, parse_options
from dfs_sim.traces import new_trace, read_trace, write_trace


def test_width_names_parse_round_trip_and_keep_format_3_entries_at_full_width():
    options = parse_options(["skip", "q4", "q8@0.5", "w4a8@0.25", "fp@0.5", "fp"])
    assert [o.width for o in options] == [1.0, 1.0, 0.5, 0.25, 0.5, 1.0]
    assert options[2].proxy_cost == pytest.approx((8 / 32) ** 2 * 0.5)
    entries = options_to_meta(options)
    assert "width" not in entries[1] and entries[2]["width"] == 0.5
    assert options_from_meta(entries) == options
    assert canonical_name("w8a8@0.50") == "q8@0.5" and canonical_name("fp@1") == "fp"


@pytest.mark.parametrize(
    ("names", "needle"),
    [
        (["skip@0.5", "fp"], "skip has no width"),
        (["q8@1.5", "fp"], r"fraction in \(0, 1\]"),
        (["q8@0", "fp"], r"fraction in \(0, 1\]"),
        (["fp@0.5"], "full-precision option at full width"),
        (["fp", "fp@1"], "same widths"),
    ],
)
def test_bad_widths_are_one_line(names, needle):
    with pytest.raises(ValueError, match=needle):
        parse_options(names)


def _basic_block(block=0):
    """A 32-channel BasicBlock of a CIFAR ResNet at 16x16, as a gated unit."""
    return [
        ConvLayer(32, 32, 16, 16, 3, 1, 1, name=f"u{block}.conv1", block=block),
        ConvLayer(32, 32, 16, 16, 3, 1, 1, name=f"u{block}.conv2", block=block),
    ]


def test_narrowing_shrinks_the_internal_channels_on_both_sides():
    # written out by hand: conv1 computes half its filters, conv2 reads half its inputs, the unit's ends stay whole
    assert [(row.in_ch, row.out_ch) for row in narrowed(_basic_block(), 0.5)] == [(32, 16), (16, 32)]
    bottleneck = [
        ConvLayer(64, 16, 8, 8, 1, name="a", block=0),
        ConvLayer(16, 16, 8, 8, 3, 1, 1, name="b", block=0),
        ConvLayer(16, 64, 8, 8, 1, name="c", block=0),
    ]
    assert [(row.in_ch, row.out_ch) for row in narrowed(bottleneck, 0.25)] == [(64, 4), (4, 4), (4, 64)]
    depthwise = [
        ConvLayer(16, 48, 8, 8, 1, name="expand", block=0),
        ConvLayer(48, 48, 8, 8, 3, 1, 1, groups=48, name="depthwise", block=0),
        ConvLayer(48, 16, 8, 8, 1, name="project", block=0),
    ]
    assert [(row.in_ch, row.out_ch, row.groups) for row in narrowed(depthwise, 0.5)] == [
        (16, 24, 1),
        (24, 24, 24),
        (24, 16, 1),
    ]
    grouped = [ConvLayer(64, 64, 8, 8, 1, name="a", block=0), ConvLayer(64, 64, 8, 8, 3, 1, 1, 32, name="b", block=0)]
    assert [(row.in_ch, row.out_ch) for row in narrowed(grouped, 0.3)] == [(64, 32), (32, 64)]  # whole groups of 2
    single = [ConvLayer(16, 32, 8, 8, 3, 1, 1, name="gated_conv", block=0)]
    assert [(row.in_ch, row.out_ch) for row in narrowed(single, 0.75)] == [(16, 24)]  # channel gating of one conv
    assert sum(layer.macs for layer in narrowed(_basic_block(), 0.5)) * 2 == sum(row.macs for row in _basic_block())


@pytest.mark.parametrize("preset", list_presets())
def test_every_shipped_preset_prices_a_narrowed_unit_as_its_narrowed_layers(preset):
    stem = ConvLayer(3, 32, 16, 16, 3, 1, 1, name="stem", fixed_option=4)
    layers = LayerTable([stem, *_basic_block(0), *_basic_block(1)])
    options = parse_options(["skip", "q8", "q8@0.5", "fp@0.25", "fp"])
    table = build_cost_table(layers, preset, options, use_cache=False)
    loaded = load_preset(preset)
    # the independent side: the narrowed shapes written out by hand, priced as ordinary layers
    half = [
        ConvLayer(32, 16, 16, 16, 3, 1, 1, name="a", block=0),
        ConvLayer(16, 32, 16, 16, 3, 1, 1, name="b", block=0),
    ]
    quarter = [
        ConvLayer(32, 8, 16, 16, 3, 1, 1, name="a", block=0),
        ConvLayer(8, 32, 16, 16, 3, 1, 1, name="b", block=0),
    ]
    for code, hand, option in ((2, half, options[1]), (3, quarter, options[4])):
        expected = sum((option_cost(layer, loaded, option) for layer in hand[1:]), option_cost(hand[0], loaded, option))
        np.testing.assert_allclose(table.block[0, code], expected.metrics(), rtol=1e-12)
    energy = table.block[0, :, 1:4].sum(axis=1)  # compute, SRAM and DRAM energy
    assert energy[2] < energy[1] and table.block[0, 2, 0] <= table.block[0, 1, 0]  # half the width: less energy


def test_a_trace_with_width_options_is_written_read_and_replayed(tmp_path):
    from analysis import replay

    layers = [
        ConvLayer(1, 16, 8, 8, 3, 1, 1, name="stem", fixed_option=3),
        *(dataclasses.replace(layer, in_ch=16, out_ch=16, in_h=8, in_w=8) for layer in _basic_block(0)),
        ConvLayer(16, 10, 1, 1, 1, name="head", kind="linear", fixed_option=3),
    ]
    rng = np.random.default_rng(0)
    run = new_trace(
        name="slim",
        method="slimmable",
        layers=layers,
        options=["skip", "fp@0.25", "fp@0.5", "fp"],
        codes=np.repeat([[0], [1], [2], [3]], 25, axis=0),
        labels=rng.integers(0, 10, 100),
        predictions=rng.integers(0, 10, 100),
        confidences=rng.random(100),
        dataset="synthetic",
        num_classes=10,
    )
    path = write_trace(tmp_path / "slim.parquet", run)
    again = read_trace(path)
    assert again.options == run.options and again.meta["model"] == {"dataset": "synthetic", "num_classes": 10}
    per_input = replay([again], presets=["bitparallel16"], out=None).per_input
    energy = per_input.groupby(again.codes[:, 0])["energy_pj"].mean().to_numpy()
    assert np.all(np.diff(energy) > 0)  # skip < a quarter < a half < the whole width


def test_the_per_layer_frame_shows_the_narrowed_shapes_and_sums_to_the_cost_table():
    from cost_models import layer_costs

    stem = ConvLayer(3, 32, 16, 16, 3, 1, 1, name="stem", fixed_option=2)
    layers = LayerTable([stem, *_basic_block(0)])
    options = parse_options(["skip", "q8@0.5", "fp"])
    frame = layer_costs(layers, "stripes", options)
    half = frame[(frame["block"] == 0) & (frame["option_name"] == "q8@0.5")]
    assert half[["in_ch", "out_ch"]].values.tolist() == [[32, 16], [16, 32]]
    table = build_cost_table(layers, "stripes", options, use_cache=False)
    assert half["cycles"].sum() == table.block[0, 1, 0]
    assert half["energy_pj"].sum() == pytest.approx(table.block[0, 1, 1:4].sum(), rel=1e-12)
