"""Bit Fusion against the public simulator's cycles, and the Numba tiling search against its exhaustive twin."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cost_models import layer_cost, load_preset
from cost_models._tiling import ACC, ACT, EDP, ENERGY, PROMOTED, TILE, Mapping, search, search_reference
from cost_models.bitfusion import fusion_rates
from dfs_sim.layer_table import ConvLayer

# The public Bit Fusion simulator's total cycles (hsharma35/bitfusion, bf_e_conf; docs/hardware.md §1.4).
REFERENCE = Path(__file__).resolve().parent / "data" / "bitfusion_public_sim_cycles.csv"


def public_sim_preset():
    """The public simulator as a preset: 32-bit partial sums, whole promoted first fill, fewest cycles first, the
    whole core charged every compute cycle, SRAM energies at full precision."""
    return load_preset("bitfusion_sim")


# bitfusion/sram/cacti_sweep.csv (45 nm, 4-byte block), the rows simulator.py get_energy_cost looks up for bf_e_conf:
# (bank bytes, port) -> (read, write) nJ per access; per bit = / 32 bits.
CACTI_ROWS = {
    "wbuf": (0.000683701, 0.000925317),  # 128 B banks (N*M = 512 of them), port 0
    "ibuf": (0.00190318, 0.00363853),  # 2048 B banks (N = 16), port 0
    "obuf": (0.00106097, 0.00233869),  # 512 B banks (M = 32), port 1
}
# docs/hardware.md §1.4: the simulator run with the notebook's printed (3-decimal) SRAM energies; (layer, bits) ->
# energy in uJ, to the 0.1 uJ printed
SIMULATOR_ENERGY_UJ = {
    ("small", 8): 519.7,
    ("small", 4): 265.5,
    ("small", 2): 236.8,
    ("deep", 8): 517.9,
    ("deep", 4): 256.7,
    ("deep", 2): 118.3,
}


def _reference_rows():
    with open(REFERENCE) as handle:
        return [{key: int(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def _layer(row):
    out, kernel, stride = row["out_hw"], row["kernel"], row["stride"]
    return ConvLayer(row["in_ch"], row["out_ch"], out, out, kernel, stride, (kernel - 1) // 2, fixed_option=6)


def test_bitfusion_sim_is_the_public_simulator():
    sim, shipped = load_preset("bitfusion_sim"), load_preset("bitfusion_eyeriss")
    assert (sim.policy.output_bits, sim.policy.fill_drain, sim.policy.search_objective) == ("acc", "promoted", "cycles")
    assert sim.energy.idle_unit_cycle_pj == sim.energy.unit_cycle_pj == pytest.approx(235.104 / 512, rel=1e-15)
    for buffer, (read_nj, write_nj) in CACTI_ROWS.items():
        assert getattr(sim.energy, f"{buffer}_read_pj_per_bit") == pytest.approx(read_nj / 32 * 1000, rel=1e-12)
        assert getattr(sim.energy, f"{buffer}_write_pj_per_bit") == pytest.approx(write_nj / 32 * 1000, rel=1e-12)
    assert (sim.array, sim.buffers, sim.dram, sim.freq_mhz) == (
        shipped.array,
        shipped.buffers,
        shipped.dram,
        shipped.freq_mhz,
    )
    # with the notebook's 3-decimal SRAM energies, as the simulator ran in docs/hardware.md §1.4: every energy to 0.1%
    printed = sim.replace(
        **{
            f"energy__{buffer}_{way}_pj_per_bit": round(getattr(sim.energy, f"{buffer}_{way}_pj_per_bit"), 3)
            for buffer in CACTI_ROWS
            for way in ("read", "write")
        }
    )
    layers = {"small": ConvLayer(64, 64, 56, 56, 3, 1, 1, fixed_option=6), "deep": ConvLayer(512, 512, 7, 7, 3, 1, 1)}
    for (name, bits), energy_uj in SIMULATOR_ENERGY_UJ.items():
        assert layer_cost(layers[name], printed, bits, bits).energy_pj / 1e6 == pytest.approx(energy_uj, rel=1e-3)


def test_design_anchors():
    preset = public_sim_preset()
    small = ConvLayer(64, 64, 56, 56, 3, 1, 1, fixed_option=6)
    deep = ConvLayer(512, 512, 7, 7, 3, 1, 1, fixed_option=6)
    assert layer_cost(small, preset, 8, 8).cycles == 226_646
    assert layer_cost(deep, preset, 8, 8).cycles == 226_562
    assert layer_cost(small, preset, 4, 4).cycles == 74_204
    assert layer_cost(deep, preset, 4, 4).cycles == 71_340
    # docs/hardware.md §1.4: 854 stall cycles and 389.8 uJ of DRAM at 8x8 for the 56x56 layer
    cost = layer_cost(small, preset, 8, 8)
    assert cost.stall_cycles == 854
    assert cost.e_dram_pj / 1e6 == pytest.approx(389.8, abs=0.05)


def test_every_public_simulator_cycle_count_matches_exactly():
    """All 98 (a, w) in 2..8 for both layers: exact, no tolerance."""
    preset = public_sim_preset()
    misses = []
    for row in _reference_rows():
        cycles = layer_cost(_layer(row), preset, row["w_bits"], row["a_bits"]).cycles
        if cycles != row["total_cycles"]:
            misses.append((row, cycles))
    assert not misses


def test_fusion_rates():
    assert fusion_rates(8, 2, 8, 8) == (1, 1)
    assert fusion_rates(8, 2, 4, 4) == (4, 1)
    assert fusion_rates(8, 2, 2, 2) == (16, 1)
    assert fusion_rates(8, 2, 1, 1) == (16, 1)
    assert fusion_rates(8, 2, 5, 8) == (1, 1)  # 5..7 bits round to the 8-bit class
    assert fusion_rates(8, 2, 16, 16) == (1, 4)  # temporal fusion: 16 bit in 4 cycles
    assert fusion_rates(8, 2, 16, 8) == (1, 2)
    assert fusion_rates(8, 2, 9, 9) == fusion_rates(8, 2, 16, 16)
    assert fusion_rates(8, 2, 32, 32) == (1, 16)


@pytest.mark.parametrize("name", ["bitfusion_eyeriss", "bitfusion_stripes"])
def test_nine_bit_operand_costs_what_sixteen_bit_costs_in_compute(name):
    preset = load_preset(name)
    layer = ConvLayer(32, 32, 16, 16, 3, 1, 1, fixed_option=6)
    for w in (8, 9, 16):
        nine, sixteen = layer_cost(layer, preset, w, 9), layer_cost(layer, preset, w, 16)
        assert nine.compute_cycles == sixteen.compute_cycles and nine.e_compute_pj == sixteen.e_compute_pj
    assert layer_cost(layer, preset, 9, 9).compute_cycles == 4 * layer_cost(layer, preset, 8, 8).compute_cycles


def _mapping(
    a,
    w,
    *,
    policy=ACC,
    fill=PROMOTED,
    im2col=False,
    rows=16,
    cols=32,
    windows=1,
    caps=(131072, 262144, 65536),
    bw=192,
    pack=None,
    temporal=1,
    objective=0,
    units=None,
    unit_reduction=None,
    div=1,
):
    spatial, passes = fusion_rates(8, 2, a, w)
    pack = spatial if pack is None else pack
    return Mapping(
        rows=rows,
        cols=cols,
        windows=windows,
        pack=pack,
        temporal=passes * temporal,
        im2col=im2col,
        pad_outputs=cols > 1 and windows == 1,
        a_bits=a,
        w_bits=w,
        acc_bits=32,
        out_bits=a,
        output_policy=policy,
        fill_rule=fill,
        cap_act_bits=caps[0],
        cap_wgt_bits=caps[1],
        cap_out_bits=caps[2],
        dram_bits_per_cycle=bw,
        prices=(0.459, 0.1, 0.059, 0.114, 0.021, 0.029, 0.033, 0.073, 15.0),
        units=rows * cols if units is None else units,
        unit_reduction=pack if unit_reduction is None else unit_reduction,
        unit_temporal=passes * temporal,
        temporal_div=div,
        objective=objective,
    )


CASES = [
    # (batch, out_h, out_w, in_ch, out_ch, kernel, stride), mapping
    ((1, 8, 8, 16, 16, 3, 1), _mapping(8, 8)),
    ((2, 4, 4, 8, 40, 3, 2), _mapping(4, 2, policy=ACT)),
    ((1, 1, 1, 20, 40, 1, 1), _mapping(16, 16, fill=TILE)),
    ((1, 6, 6, 3, 16, 3, 1), _mapping(8, 8, im2col=True, policy=ACT, fill=TILE)),
    ((1, 8, 8, 32, 64, 3, 1), _mapping(10, 10, policy=ACT, fill=TILE, caps=(8192, 16384, 8192))),
    ((1, 8, 4, 16, 32, 1, 1), _mapping(8, 8, rows=16, cols=256, windows=16, pack=1, temporal=8, policy=ACT, fill=TILE)),
    # the other search objectives; a remainder input-channel tile (20 = 16 + 4); a divided temporal factor (Loom FC)
    ((1, 8, 8, 16, 16, 3, 1), _mapping(8, 8, objective=EDP)),
    ((1, 16, 16, 32, 32, 3, 1), _mapping(8, 8, policy=ACT, fill=TILE, objective=EDP)),
    ((1, 16, 16, 32, 32, 3, 1), _mapping(12, 8, policy=ACT, fill=TILE, objective=ENERGY)),
    ((2, 4, 4, 20, 40, 3, 2), _mapping(4, 2, policy=ACT, objective=EDP, caps=(4096, 8192, 65536))),
    (
        (1, 1, 1, 64, 10, 1, 1),
        _mapping(
            8,
            8,
            rows=16,
            cols=32,
            pack=1,
            temporal=8,
            div=16,
            policy=ACT,
            fill=TILE,
            units=4096,
            unit_reduction=16,
            objective=EDP,
        ),
    ),
]


@pytest.mark.parametrize("dims, mapping", CASES)
def test_numba_search_equals_exhaustive_reference(dims, mapping):
    assert search(*dims, mapping) == search_reference(*dims, mapping)


def test_search_objectives_trade_cycles_for_dram_on_a_layer_that_fits_on_chip():
    """32->32 3x3 conv on 16x16 at q8 on bitfusion_eyeriss (the reviewer's case): cycles-first takes tiny tiles and
    refetches (3.6x the compulsory DRAM bits); energy and EDP take the few-cycles-slower tiling near the minimum."""
    layer = ConvLayer(32, 32, 16, 16, 3, 1, 1, fixed_option=6)
    compulsory = (32 * 32 * 9 + 32 * 16 * 16 + 32 * 16 * 16) * 8
    preset = load_preset("bitfusion_eyeriss")
    costs = {
        name: layer_cost(layer, preset.replace(policy__search_objective=name), 8, 8)
        for name in ("cycles", "energy", "edp")
    }
    assert costs["cycles"].dram_bits > 3 * compulsory
    for name in ("energy", "edp"):
        assert costs[name].dram_bits < 1.25 * compulsory
        assert costs[name].energy_pj < 0.6 * costs["cycles"].energy_pj
        assert costs["cycles"].cycles < costs[name].cycles < 1.1 * costs["cycles"].cycles
    assert costs["energy"].energy_pj <= costs["edp"].energy_pj


def test_idle_fus_cost_what_busy_ones_cost_reproduces_the_whole_core_charge():
    """With idle = busy price every FU is charged every compute cycle, as the public simulator does (235.104 pJ per
    cycle for the 512-FU core); a 32-channel layer leaves half the rows of Fusion Units idle at 2 bits."""
    preset = load_preset("bitfusion_eyeriss")
    whole = preset.replace(energy__idle_unit_cycle_pj=preset.energy.unit_cycle_pj)
    layer = ConvLayer(16, 16, 8, 8, 3, 1, 1, fixed_option=6)
    cost = layer_cost(layer, whole, 8, 8)
    assert cost.e_compute_pj == pytest.approx(cost.compute_cycles * 235.104)
    assert cost.active_unit_cycles == 8 * 8 * 16 * 9 * 16  # one FU per (position, filter, channel) at 8 bits
    assert cost.unit_cycles == cost.compute_cycles * 512 and cost.active_unit_cycles == cost.unit_cycles // 2
    split = layer_cost(layer, preset, 8, 8)
    assert split.e_compute_pj == pytest.approx(cost.active_unit_cycles * 0.4591875 + cost.active_unit_cycles * 0.1)


def test_fixed_mapping_reevaluates_the_same_tiling():
    dims, mapping = CASES[0]
    found = search(*dims, mapping)
    again = search(*dims, mapping, fixed=found)
    assert again == found


def test_no_fitting_tile_is_an_error():
    with pytest.raises(ValueError, match="no tiling"):
        search(1, 8, 8, 16, 16, 3, 1, _mapping(8, 8, caps=(8, 8, 8)))
