"""Bit-serial and bit-parallel models against their published ratios, a hand count, and properties of every preset."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from cost_models import layer_cost, list_presets, load_preset, option_cost
from cost_models.bitserial import parallel_twin, serial_cycles
from cost_models.pricing import skip_cost
from dfs_sim.layer_table import ConvLayer
from dfs_sim.options import DFS_OPTIONS, SKIPNET_OPTIONS, Option

# Fills the DaDianNao / Stripes tiles: 256 filters, channels a multiple of 16 lanes, 16x16 = 256 windows.
FILLING = ConvLayer(64, 256, 16, 16, 3, 1, 1, fixed_option=6)
SMALL = ConvLayer(16, 32, 8, 8, 3, 1, 1, fixed_option=6)
LINEAR = ConvLayer(64, 10, 1, 1, 1, kind="linear", fixed_option=6)
STEM = ConvLayer(3, 16, 32, 32, 3, 1, 1, fixed_option=6)
DEPTHWISE = ConvLayer(32, 32, 16, 16, 3, 1, 1, groups=32, fixed_option=6)
GROUPED = ConvLayer(64, 128, 8, 8, 3, 1, 1, groups=4, fixed_option=6)


@pytest.mark.parametrize("a", [1, 2, 4, 8, 10, 12, 14, 16])
def test_stripes_speedup_over_its_parallel_twin_is_16_over_a(a):
    stripes = load_preset("stripes")
    twin = parallel_twin(stripes)
    assert twin.array.filters == 16 and twin.array.windows == 1  # DaDianNao
    assert twin.array == load_preset("bitparallel16").array
    serial = layer_cost(FILLING, stripes, 16, a).compute_cycles
    parallel = layer_cost(FILLING, twin, 16, a).compute_cycles
    assert parallel / serial == pytest.approx(16 / a)
    # closed form of docs/hardware.md §2.2: N·ceil(PQ/16)·ceil(K/256)·RS·ceil(C/16)·a
    assert serial == math.ceil(16 * 16 / 16) * 1 * 9 * (64 // 16) * a
    # DaDianNao, docs/hardware.md §2.1: N·P·Q·ceil(K/256)·R·S·ceil(C/16)
    assert parallel == 16 * 16 * 1 * 9 * (64 // 16)


@pytest.mark.parametrize("a, w", [(2, 2), (4, 8), (8, 8), (10, 12), (16, 16), (8, 16)])
def test_loom_speedup_over_its_parallel_twin_is_256_over_aw(a, w):
    loom = load_preset("loom")
    twin = parallel_twin(loom)
    serial = layer_cost(FILLING, loom, w, a).compute_cycles
    parallel = layer_cost(FILLING, twin, w, a).compute_cycles
    assert parallel / serial == pytest.approx(256 / (a * w))


def test_bitparallel_gains_nothing_in_compute_from_fewer_bits():
    preset = load_preset("bitparallel16")
    full = layer_cost(SMALL, preset, 16, 16)
    for bits in (1, 2, 4, 8, 10, 12, 14):
        cost = layer_cost(SMALL, preset, bits, bits)
        assert cost.compute_cycles == full.compute_cycles and cost.e_compute_pj == full.e_compute_pj
        ladder = option_cost(SMALL, preset, Option(1, "q", bits, bits))
        assert (
            ladder.compute_cycles == full.compute_cycles and ladder.dram_bits <= full.dram_bits
        )  # only traffic shrinks
    assert layer_cost(SMALL, preset, 32, 32).compute_cycles == 4 * full.compute_cycles


@pytest.mark.parametrize("name", ["bitfusion_stripes", "stripes", "bitparallel16"])
@pytest.mark.parametrize("bits", [8, 16])
def test_hand_count_of_dram_bits_when_every_tensor_fits_on_chip(name, bits):
    """1x1 conv, 32 -> 64 channels on 8x8, batch 1: each tensor crosses DRAM exactly once (128 KB buffers)."""
    layer = ConvLayer(32, 64, 8, 8, 1, fixed_option=6)
    cost = layer_cost(layer, name, bits, bits)
    inputs, weights, outputs = 32 * 8 * 8, 32 * 64, 64 * 8 * 8
    assert cost.dram_read_bits == (inputs + weights) * bits
    assert cost.dram_write_bits == outputs * bits  # outputs leave at the activation width (output_bits = "act")
    assert cost.ibuf_write_bits == inputs * bits and cost.wbuf_write_bits == weights * bits


def test_hand_count_with_accumulator_outputs():
    """Same layer under the public simulator's policy: outputs loaded and stored as 32-bit partial sums."""
    preset = load_preset("bitfusion_stripes").replace(policy__output_bits="acc")
    cost = layer_cost(ConvLayer(32, 64, 8, 8, 1, fixed_option=6), preset, 8, 8)
    assert cost.dram_read_bits == (32 * 64 + 32 * 64) * 8 + 64 * 64 * 32
    assert cost.dram_write_bits == 64 * 64 * 32


@pytest.mark.parametrize("name", list_presets())
def test_more_bits_never_cost_less_along_the_options(name):
    preset = load_preset(name)
    for layer in (SMALL, LINEAR, STEM, ConvLayer(32, 64, 16, 16, 3, 2, 1, fixed_option=6), DEPTHWISE, GROUPED):
        previous = None
        for bits in (8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 32):
            cost = option_cost(layer, preset, Option(1, "q", bits, bits))
            current = (cost.cycles, cost.energy_pj, cost.dram_bits)
            if previous is not None:
                assert all(now >= before for now, before in zip(current, previous, strict=True)), (layer, bits)
            previous = current


@pytest.mark.parametrize("name", list_presets())
def test_more_bits_of_one_operand_never_cost_fewer_cycles(name):
    """Under the cycles-first objective, cycles are monotone in each operand on its own (the search minimises cycles
    over a shrinking set); under the preset's own objective that objective is (energy and cycles of every tiling
    grow with the bits)."""
    preset = load_preset(name)
    low = 8 if preset.kind == "bitfusion" else 1  # below pmax, Bit Fusion's packing granularity moves weight padding
    grid = [b for b in (1, 2, 3, 4, 8, 9, 12, 16, 32) if b >= low]
    score = {"cycles": lambda c: c.cycles, "energy": lambda c: c.energy_pj, "edp": lambda c: c.cycles * c.energy_pj}
    for variant in {preset.replace(policy__search_objective="cycles"), preset}:
        key = score[variant.policy.search_objective]
        for layer in (SMALL, LINEAR):
            for fixed in grid:
                a_scores = [key(layer_cost(layer, variant, fixed, a)) for a in grid]
                w_scores = [key(layer_cost(layer, variant, w, fixed)) for w in grid]
                assert a_scores == sorted(a_scores) and w_scores == sorted(w_scores), (variant.policy, layer)


@pytest.mark.parametrize("name", list_presets())
def test_skip_costs_less_than_any_execution(name):
    preset = load_preset(name)
    for policy in ("alias", "copy"):
        variant = preset.replace(policy__skip=policy)
        for layer in (SMALL, LINEAR, FILLING):
            skipped = option_cost(layer, variant, DFS_OPTIONS[0])
            for option in DFS_OPTIONS[1:]:
                run = option_cost(layer, variant, option)
                assert skipped.energy_pj < run.energy_pj and skipped.compute_cycles == 0
                if policy == "alias":
                    assert skipped.cycles == 0 < run.cycles


def test_skip_copy_moves_the_input_twice():
    preset = load_preset("stripes").replace(policy__skip="copy")
    cost = skip_cost(SMALL, preset)
    bits = SMALL.input_count * preset.policy.skip_copy_bits
    assert cost.dram_read_bits == cost.dram_write_bits == bits
    assert cost.e_dram_pj == pytest.approx(2 * bits * preset.dram.pj_per_bit)


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(("bitfusion_eyeriss", "bitfusion_stripes", "stripes", "loom", "bitparallel16")),
    in_ch=st.sampled_from([3, 8, 16, 32, 64]),
    out_ch=st.sampled_from([10, 16, 64]),
    size=st.sampled_from([1, 4, 8, 16]),
    kernel=st.sampled_from([1, 3]),
    stride=st.sampled_from([1, 2]),
    w=st.integers(1, 32),
    a=st.integers(1, 32),
)
def test_energy_parts_add_up_and_are_priced_from_counts(name, in_ch, out_ch, size, kernel, stride, w, a):
    preset = load_preset(name)
    layer = ConvLayer(in_ch, out_ch, size, size, kernel, stride, kernel // 2, fixed_option=6)
    cost = layer_cost(layer, preset, w, a)
    assert cost.energy_pj == pytest.approx(cost.e_compute_pj + cost.e_sram_pj + cost.e_dram_pj)
    assert cost.e_dram_pj == pytest.approx(cost.dram_bits * preset.dram.pj_per_bit)
    energy = preset.energy
    sram = sum(
        getattr(cost, f"{buf}_{way}_bits") * getattr(energy, f"{buf}_{way}_pj_per_bit")
        for buf in ("ibuf", "wbuf", "obuf")
        for way in ("read", "write")
    )
    assert cost.e_sram_pj == pytest.approx(sram)
    assert 0 < cost.active_unit_cycles <= cost.unit_cycles
    idle = cost.unit_cycles - cost.active_unit_cycles
    assert cost.e_compute_pj == pytest.approx(
        cost.active_unit_cycles * energy.unit_cycle_pj + idle * energy.idle_unit_cycle_pj
    )
    assert cost.cycles == cost.compute_cycles + cost.stall_cycles
    assert cost.cycles >= max(cost.compute_cycles, 1)


def test_full_precision_policies():
    preset = load_preset("bitfusion_eyeriss")
    fp = DFS_OPTIONS[-1]
    as_int = option_cost(SMALL, preset, fp)
    assert as_int.compute_cycles == 16 * layer_cost(SMALL, preset, 8, 8).compute_cycles  # 4 x 4 temporal passes
    unit = option_cost(SMALL, preset.replace(policy__fp_bits="fp_unit"), fp)
    assert unit.compute_cycles == math.ceil(SMALL.macs / preset.policy.fp_macs_per_cycle)
    assert unit.e_compute_pj == pytest.approx(SMALL.macs * preset.policy.fp_mac_pj)
    assert unit.dram_bits == as_int.dram_bits  # traffic at 32 bits either way
    assert option_cost(SMALL, preset, SKIPNET_OPTIONS[1]) == as_int


def test_bad_bits_are_rejected():
    with pytest.raises(ValueError, match="w_bits"):
        layer_cost(SMALL, "stripes", 0, 8)


TOY = """
schema_version = 1
name = "toy"
kind = "bitparallel"
description = "hand-checkable toy: 2 filters x 2 lanes, integer energies"
[clock]
freq_mhz = 1.0          # test value
[array]
tiles = 1               # test value
filters = 2             # test value
windows = 1             # test value
lanes = 2               # test value
pe_width = 16           # test value
im2col_max_in_ch = 0    # test value
[buffers]
ibuf_kib = 1024         # test value
wbuf_kib = 1024         # test value
obuf_kib = 1024         # test value
fit_fraction = 0.5      # test value
pad_outputs_to_cols = false  # test value
[dram]
bits_per_cycle = 1000000  # test value: every transfer takes one cycle
pj_per_bit = 1.0        # test value
[energy]
unit_cycle_pj = 1.0     # test value
idle_unit_cycle_pj = 0.5     # test value
ibuf_read_pj_per_bit = 0.0   # test value
ibuf_write_pj_per_bit = 0.0  # test value
wbuf_read_pj_per_bit = 0.0   # test value
wbuf_write_pj_per_bit = 0.0  # test value
obuf_read_pj_per_bit = 0.0   # test value
obuf_write_pj_per_bit = 0.0  # test value
[policy]
output_bits = "act"     # test value
fill_drain = "tile"     # test value
search_objective = "cycles"  # test value
acc_bits = 32           # test value
skip = "alias"          # test value
skip_copy_bits = 16     # test value
fp_bits = "int32"       # test value
fp_macs_per_cycle = 1   # test value
fp_mac_pj = 1.0         # test value
"""


def test_toy_preset_and_two_layer_network_by_hand(tmp_path):
    """Two 1x1 convs, 2 -> 2 channels on 2x2, on a 2x2 multiplier array: every number worked out on paper."""
    from cost_models import build_cost_table
    from dfs_sim.layer_table import LayerTable

    path = tmp_path / "toy.toml"
    path.write_text(TOY)
    network = LayerTable(
        [ConvLayer(2, 2, 2, 2, 1, name="always", fixed_option=6), ConvLayer(2, 2, 2, 2, 1, name="gated", block=0)]
    )
    table = build_cost_table(network, load_preset(path), cache_dir=tmp_path)
    # q8: 4 output positions x 1 filter group x 1 lane group = 4 compute cycles, + 1 cycle first fill + 1 last drain;
    # 4 multipliers x 4 cycles x 1 pJ; DRAM: inputs 8 x 8 + weights 4 x 8 read, outputs 8 x 8 written = 160 bits;
    # 16 unit-cycles, every one of them busy (2 channels fill the 2x2 array)
    np.testing.assert_array_equal(table.block[0, 1], [6, 16, 0, 160, 160, 16, 16])
    # full precision as int32 on 16-bit multipliers: 2 x 2 = 4 passes; traffic at 32 bits
    np.testing.assert_array_equal(table.fixed, [18, 64, 0, 640, 640, 64, 64])
    np.testing.assert_array_equal(table.block[0, 0], [0] * 7)


@pytest.mark.parametrize("layer", [LINEAR, ConvLayer(20, 40, 1, 1, 1, kind="gate", fixed_option=6)])
@pytest.mark.parametrize("bits", [(8, 8), (8, 16), (12, 10), (16, 16), (32, 32)])
def test_fully_connected_layers_on_stripes_cost_the_twin_and_on_loom_the_twin_times_w_over_16(layer, bits):
    """docs/hardware.md §2.2: no Stripes speed-up on FC layers (one window); docs/hardware.md §2.4: Loom's FC time
    scales with w/16 of its equal-peak bit-parallel twin (rounded up once per layer)."""
    w, a = bits
    stripes = load_preset("stripes")
    assert (
        layer_cost(layer, stripes, w, a).compute_cycles
        == layer_cost(layer, parallel_twin(stripes), w, a).compute_cycles
    )
    loom = load_preset("loom")
    twin = layer_cost(layer, parallel_twin(loom), w, a).compute_cycles
    cost = layer_cost(layer, loom, w, a)
    if w <= 16:
        assert cost.compute_cycles == math.ceil(twin * w / 16)
    # the SIP work is the serial work whatever the dataflow: K filters x ceil(C/16) lane chunks x serial cycles
    assert cost.active_unit_cycles == layer.out_ch * math.ceil(layer.in_ch / 16) * math.ceil(a / 2) * w


def test_fc_layer_at_q8_on_stripes_and_loom_is_not_slower_than_dadiannao():
    """The reviewer's case: fc 64 -> 10 at q8 cost 32 (Stripes) and 128 (Loom) cycles against 4 on DaDianNao."""
    base = layer_cost(LINEAR, "bitparallel16", 8, 8).compute_cycles
    assert base == 4
    assert layer_cost(LINEAR, "stripes", 8, 8).compute_cycles == base
    assert layer_cost(LINEAR, "loom", 8, 8).compute_cycles == 2  # its twin (512 MACs/cycle) also takes 4 cycles


def test_loom_fills_a_quarter_of_its_filter_slots_and_is_slower_than_the_16_bit_baseline_on_resnet38():
    """Documented limitation (bitserial module docstring, loom.toml): a ResNet-38 group-3 layer has K = 64 of Loom's
    256 filter slots, and Loom's 16-bit peak is 1/8 of DaDianNao's, so even at q8 it is slower than bitparallel16."""
    from dfs_sim.layer_table import cifar_resnet_layers

    layer = next(x for x in cifar_resnet_layers(38) if x.role == "main" and x.out_ch == 64 and x.in_ch == 64)
    for option in DFS_OPTIONS[1:]:
        loom = option_cost(layer, "loom", option)
        assert loom.active_unit_cycles <= loom.unit_cycles // 4  # at most a quarter of the SIPs busy
        assert loom.cycles > option_cost(layer, "bitparallel16", option).cycles


# ------------------------------------------------------------------------------ grouped and depthwise convolutions
def _one_group(layer, count=1):
    """The dense layer of ``count`` groups of ``layer`` side by side (block-diagonal)."""
    return ConvLayer(
        count * layer.in_ch // layer.groups,
        count * layer.out_ch // layer.groups,
        layer.in_h,
        layer.in_w,
        layer.kernel,
        layer.stride,
        layer.padding,
    )


@pytest.mark.parametrize(
    "name, packed, compute",
    [
        # Bit Fusion at 8 bits: 16 rows x 1 packed channel hold 16 depthwise groups (of the 32 columns); two passes
        # of a 16 -> 16 3x3 conv on 16x16: 2 x 256 positions x 9 taps x 1 cycle
        ("bitfusion_eyeriss", 16, 2 * 256 * 9),
        # Stripes: 16 lanes -> 16 groups per pass; a pass is ceil(256 / 16 windows) steps x 9 taps x 8 serial cycles
        ("stripes", 16, 2 * 16 * 9 * 8),
        # DaDianNao geometry, 16-bit: 16 lanes, one window, one cycle per step
        ("bitparallel16", 16, 2 * 256 * 9),
    ],
)
def test_depthwise_runs_groups_block_diagonally_as_many_as_the_array_holds(name, packed, compute):
    preset = load_preset(name)
    cost = layer_cost(DEPTHWISE, preset, 8, 8)
    assert cost.compute_cycles == compute
    assert cost.macs == DEPTHWISE.macs == 32 * 9 * 256  # the layer's own MACs, not the packed zeros
    # the packed pass is the dense block-diagonal layer; the groups one after another cost more on every preset here
    dense = layer_cost(_one_group(DEPTHWISE, packed), preset, 8, 8)
    assert cost.cycles == 2 * dense.cycles and cost.energy_pj == pytest.approx(2 * dense.energy_pj)
    sequential = layer_cost(_one_group(DEPTHWISE), preset, 8, 8)
    assert 32 * sequential.cycles > cost.cycles and 32 * sequential.energy_pj > cost.energy_pj
    # zero weights are fetched: the packed passes move packed x the layer's weight bits
    assert cost.wbuf_write_bits >= packed * DEPTHWISE.weight_count * 8


def test_groups_that_do_not_divide_the_array_leave_a_remainder_pass():
    preset = load_preset("bitfusion_eyeriss")
    layer = ConvLayer(20, 20, 16, 16, 3, 1, 1, groups=20)
    full, rest = (layer_cost(_one_group(layer, count), preset, 8, 8) for count in (16, 4))
    cost = layer_cost(layer, preset, 8, 8)
    assert cost.cycles == full.cycles + rest.cycles and cost.dram_bits == full.dram_bits + rest.dram_bits


def test_groups_too_wide_to_pack_run_one_after_another():
    """64 -> 128 in 4 groups: one group (16 -> 32) already fills Bit Fusion's 16 rows and 32 columns at 8 bits."""
    preset = load_preset("bitfusion_eyeriss")
    cost = layer_cost(GROUPED, preset, 8, 8)
    one = layer_cost(_one_group(GROUPED), preset, 8, 8)
    assert cost == dataclasses.replace(one.scaled(4), macs=GROUPED.macs)
    assert cost.macs == 4 * one.macs


def test_packing_is_chosen_by_the_search_objective():
    """Under each objective the picked layer cost is no worse than either candidate (one group at a time, or packed
    to the limit)."""
    for objective in ("cycles", "energy", "edp"):
        preset = load_preset("stripes").replace(policy__search_objective=objective)
        cost = layer_cost(DEPTHWISE, preset, 8, 8)
        candidates = [layer_cost(_one_group(DEPTHWISE), preset, 8, 8).scaled(32)]
        candidates.append(layer_cost(_one_group(DEPTHWISE, 16), preset, 8, 8).scaled(2))
        key = {
            "cycles": lambda c: (c.cycles, c.energy_pj),
            "energy": lambda c: (c.energy_pj, c.cycles),
            "edp": lambda c: (c.energy_pj * c.cycles, c.cycles),
        }[objective]
        assert key(cost) <= min(map(key, candidates))


# ------------------------------------------------------------------------------------- equal-peak twins, by name
TWINS = {
    "stripes": "bitparallel16",
    "stripes_dynamic": "bitparallel16",
    "stripes_small": "bitparallel16_small",
    "loom": "loom_twin",
    "loom_paper": "loom_paper_twin",
    "loom_dynamic": "loom_twin",
    "loom_paper_dynamic": "loom_paper_twin",
}


def _peak_16bit_macs(preset) -> float:
    array = preset.array
    units = array.tiles * array.filters * array.windows * array.lanes
    if preset.kind == "bitparallel":
        return units
    return units / serial_cycles(array, array.pe_width, array.pe_width)


def test_every_bit_serial_preset_has_a_named_twin_of_equal_peak_and_memory():
    # the dnnsim_* references are DNNsim's example configurations, checked cycle for cycle in test_dnnsim_reference.py
    serial = sorted(
        name
        for name in list_presets(reference=True)
        if load_preset(name).kind == "bitserial" and not name.startswith("dnnsim_")
    )
    assert serial == sorted(TWINS)
    for serial_name, twin_name in TWINS.items():
        serial, twin = load_preset(serial_name), load_preset(twin_name)
        assert twin.kind == "bitparallel" and twin.array == parallel_twin(serial).array
        assert (twin.buffers, twin.dram, twin.freq_mhz) == (serial.buffers, serial.dram, serial.freq_mhz)
        assert _peak_16bit_macs(twin) == _peak_16bit_macs(serial)
    assert _peak_16bit_macs(load_preset("loom_paper")) == 128  # the Loom paper's configuration [abstract]
    assert _peak_16bit_macs(load_preset("stripes")) == 4096  # DaDianNao (docs/hardware.md §2.1)


@pytest.mark.parametrize("a, w", [(2, 2), (4, 4), (8, 8), (4, 8), (8, 6)])
def test_loom_paper_beats_its_twin_by_256_over_aw_on_a_filling_layer(a, w):
    """64 filters x 16x16 positions fill loom_paper's 4 tiles x 16 filters x 16 windows; by hand, Loom takes
    ceil(256/16) x 1 x 9 x ceil(64/16) = 576 steps of ceil(a/2) x w cycles, the twin 256 x ceil(64/8) x 9 x 4 = 73,728
    cycles at any width up to 16; their ratio is 256 / (a w) for even a (docs/hardware.md §2.4)."""
    layer = ConvLayer(64, 64, 16, 16, 3, 1, 1, fixed_option=6)
    loom = layer_cost(layer, "loom_paper", w, a).compute_cycles
    twin = layer_cost(layer, "loom_paper_twin", w, a).compute_cycles
    assert loom == 576 * -(-a // 2) * w and twin == 73_728
    assert twin / loom == pytest.approx(256 / (a * w)) and twin / loom >= 1


def test_a_fixed_16_bit_twin_moves_16_bit_words_at_any_width():
    layer = ConvLayer(32, 64, 8, 8, 1, fixed_option=6)
    eight, sixteen = (layer_cost(layer, "loom_paper_twin", bits, bits) for bits in (8, 16))
    assert eight == sixteen  # min_storage_bits = 16: neither compute nor traffic shrinks
    free = load_preset("loom_paper_twin").replace(policy__min_storage_bits=1)
    assert layer_cost(layer, free, 8, 8).dram_bits < sixteen.dram_bits


def test_small_tiles_fit_cifar_layers():
    """stripes_small keeps stripes' cycles on a 64-channel CIFAR layer with a quarter of its SIPs, so four times
    the utilisation."""
    layer = ConvLayer(64, 64, 8, 8, 3, 1, 1, fixed_option=6)
    big, small = layer_cost(layer, "stripes", 8, 8), layer_cost(layer, "stripes_small", 8, 8)
    assert small.compute_cycles == big.compute_cycles
    assert small.active_unit_cycles == big.active_unit_cycles and small.unit_cycles * 4 == big.unit_cycles
