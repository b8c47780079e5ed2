"""The bit-serial cost models and ``cost_models.step_widths`` against DNNsim (isakedo/DNNsim @4748a60).

``tests/data/dnnsim_reference.csv`` holds DNNsim's cycles for DaDianNao, Stripes, ShapeShifter and Loom on 7
synthetic and 7 ResNet-38 layers at several widths (``validation/dnnsim/README.md``; docs/hardware.md "DNNsim
reference"). Where a preset is meant to match DNNsim the test asserts equality; where it is not (dynamic precision,
fully connected layers) it asserts the measured gap, so that changing a model shows here. No DNNsim is needed: the
integer data are regenerated from seeds (synthetic) or read from ``validation/dnnsim/r38_levels.npz`` (ResNet-38).
The ``dnnsim_*`` reference presets (DNNsim's example configurations) are the anchor: exact on every row, the static
ones from the layer alone, the dynamic ones at the per-step widths (``cost_models.bitserial.stepwise_cost``).
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import math
import sys
from collections import defaultdict
from fractions import Fraction
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from cost_models import Preset, layer_cost, list_presets, load_preset
from cost_models.bitserial import column_pipeline_cycles, stepwise_cost
from cost_models.preset import REFERENCE_DIR
from cost_models.pricing import effective_cost
from cost_models.step_widths import (
    conv_act_step_widths,
    conv_wgt_step_widths,
    dnnsim_compute_cycles,
    fc_act_step_widths,
    fc_wgt_step_widths,
    pipelined_cycles,
    value_widths,
)
from dfs_sim.errors import ConfigError
from dfs_sim.layer_table import ConvLayer, cifar_resnet_layers
from dfs_sim.options import Option

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "dnnsim_reference.csv"


def _load_layers_module():
    spec = importlib.util.spec_from_file_location("dnnsim_layers", ROOT / "validation" / "dnnsim" / "layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


L = _load_layers_module()
LAYERS = {(source, layer.name): layer for source, layer, _ in L.cases()}
INT_FIELDS = ("in_ch", "out_ch", "in_hw", "kernel", "stride", "padding", "out_hw", "sample", "a_bits", "w_bits")
INT_FIELDS += ("compute_cycles", "cycles", "scheduled_pes", "idle_pes")


def _rows() -> list[dict]:
    with open(REFERENCE) as handle:
        return [{k: int(v) if k in INT_FIELDS else v for k, v in row.items()} for row in csv.DictReader(handle)]


ROWS = _rows()


def _by_arch(arch: str) -> list[dict]:
    return [row for row in ROWS if row["arch"] == arch]


@cache
def _levels(source: str, name: str, a_bits: int, w_bits: int) -> tuple[np.ndarray, np.ndarray]:
    return L.levels(source, LAYERS[(source, name)], a_bits, w_bits)


def _acts(row: dict) -> np.ndarray:
    return _levels(row["source"], row["layer"], row["a_bits"], row["w_bits"])[0][row["sample"]]


def _layer(row: dict) -> ConvLayer:
    if row["kind"] == "fc":
        return ConvLayer(row["in_ch"], row["out_ch"], 1, 1, 1, 1, 0, kind="linear")
    hw = row["in_hw"]
    return ConvLayer(row["in_ch"], row["out_ch"], hw, hw, row["kernel"], row["stride"], row["padding"])


@cache
def _project(preset: str, source: str, name: str, w_bits: int, a_bits: int) -> int:
    row = next(r for r in ROWS if r["source"] == source and r["layer"] == name)
    return layer_cost(_layer(row), preset, w_bits, a_bits).compute_cycles


def project_cycles(preset: str, row: dict) -> int:
    """The project's compute cycles for ``row``'s layer at its (w, a) on ``preset`` (static precision)."""
    return _project(preset, row["source"], row["layer"], row["w_bits"], row["a_bits"])


def _filter_sets(row: dict) -> int:
    return -(-row["out_ch"] // 256)  # 16 tiles x 16 rows


def _steps(row: dict) -> int:
    """Steps per filter set of a convolution: window sets x ceil(C/16) x k² (DNNsim WindowFirstOutS)."""
    return -(-(row["out_hw"] ** 2) // 16) * -(-row["in_ch"] // 16) * row["kernel"] ** 2


def test_reference_has_every_architecture_layer_and_precision():
    assert len(ROWS) == 714
    counts: dict[str, int] = defaultdict(int)
    for row in ROWS:
        counts[row["arch"]] += 1
    assert counts == dict.fromkeys(("DaDianNao", "Stripes", "ShapeShifter", "Loom", "Loom_psb2", "DynLoom"), 119)
    for row in ROWS:
        layer = LAYERS[(row["source"], row["layer"])]
        assert (row["in_ch"], row["out_ch"], row["in_hw"], row["kernel"]) == (
            layer.in_ch,
            layer.out_ch,
            layer.in_hw,
            layer.kernel,
        )
        assert row["compute_cycles"] <= row["cycles"]


def test_resnet_layers_are_the_layer_table_s():
    table = {layer.name: layer for layer in cifar_resnet_layers(38, num_classes=10, input_size=28, in_channels=1)}
    for layer in L.RESNET:
        ours = table[layer.name]
        assert (ours.in_ch, ours.out_ch, ours.in_h, ours.in_w, ours.kernel, ours.stride, ours.padding) == (
            layer.in_ch,
            layer.out_ch,
            layer.in_hw,
            layer.in_hw,
            layer.kernel,
            layer.stride,
            layer.padding,
        )


def test_dadiannao_is_bitparallel16_exactly():
    """DNNsim DaDianNao (one step a cycle) and the bitparallel16 preset: equal on every conv and FC row."""
    misses = [row for row in _by_arch("DaDianNao") if project_cycles("bitparallel16", row) != row["compute_cycles"]]
    assert not misses


def test_stripes_is_exact_on_convolutions_and_one_pipeline_fill_off_on_fc():
    """Convolutions: equal. FC layers: the stripes preset charges its bit-parallel twin's steps (one a cycle,
    cost_models/bitserial.py), DNNsim starts one a-cycle step per cycle on 16 rotating columns, so it takes
    ``steps − 1 + a`` (``Stripes::process_tiles``, linear): the gap is the pipeline fill, a − 1 cycles per layer."""
    for row in _by_arch("Stripes"):
        ours = project_cycles("stripes", row)
        if row["kind"] == "conv":
            assert ours == row["compute_cycles"], row
        else:
            assert row["compute_cycles"] == ours - 1 + min(row["a_bits"], 16), row


def test_step_widths_reproduce_every_dnnsim_compute_cycle():
    """All 714 rows, every architecture: cost_models.step_widths gives DNNsim's compute cycles exactly."""
    misses = []
    for row in ROWS:
        arch, psb = ("Loom", 2) if row["arch"] == "Loom_psb2" else (row["arch"], 1)
        acts, wgts = _levels(row["source"], row["layer"], row["a_bits"], row["w_bits"])
        layer = LAYERS[(row["source"], row["layer"])]
        cycles = dnnsim_compute_cycles(
            arch,
            acts[row["sample"]],
            wgts,
            a_bits=row["a_bits"],
            w_bits=row["w_bits"],
            stride=layer.stride,
            padding=layer.padding,
            pe_serial_bits=psb,
        )
        if cycles != row["compute_cycles"]:
            misses.append((row, cycles))
    assert not misses


def _conv_widths(row: dict) -> np.ndarray:
    layer = LAYERS[(row["source"], row["layer"])]
    return conv_act_step_widths(_acts(row), layer.kernel, layer.stride, layer.padding, signed=False)


def test_shapeshifter_is_stripes_at_each_steps_widest_activation():
    """ShapeShifter (conv) = Σ over steps of the step's widest activation (16 windows × 16 lanes, zero = 1 bit), for
    each filter set; Stripes charges ``a`` per step, so DNNsim's ShapeShifter / our stripes = mean step width / a,
    exactly (``ShapeShifter::process_mmul``)."""
    for row in _by_arch("ShapeShifter"):
        if row["kind"] != "conv":
            continue
        widths = _conv_widths(row)
        assert widths.size == _steps(row) and widths.max() <= row["a_bits"]
        assert row["compute_cycles"] == int(widths.sum()) * _filter_sets(row)
        assert Fraction(row["compute_cycles"], project_cycles("stripes", row)) == Fraction(
            int(widths.sum()), widths.size * row["a_bits"]
        )


def test_loom_is_static_loom_at_each_steps_widest_activation():
    """Loom (conv, static weights) = Σ over steps of ceil(widest activation / pe_serial_bits) · w
    (``Loom::process_mmul``); the loom preset charges ceil(a/2) · w per step on the same 16-tile geometry, so
    loom / DNNsim Loom at 2 bits per cycle = steps · ceil(a/2) / Σ ceil(width/2), exactly."""
    for row in _by_arch("Loom_psb2"):
        if row["kind"] != "conv":
            continue
        widths = _conv_widths(row)
        trimmed = int((-(-widths // 2)).sum())
        assert row["compute_cycles"] == trimmed * row["w_bits"] * _filter_sets(row)
        assert project_cycles("loom", row) == widths.size * -(-row["a_bits"] // 2) * row["w_bits"] * _filter_sets(row)


def test_fc_step_widths_read_the_empty_column_when_chunks_do_not_fill_the_rotation():
    """s_fc_c320_k520: 20 chunks a filter set, 3 filter sets; the rotating column index is 20 % 16 = 4 ahead on the
    second set, so only chunks whose index agrees (t % 16 == (set·20 + t) % 16) are read; the rest read a zero."""
    row = next(r for r in _by_arch("ShapeShifter") if r["layer"] == "s_fc_c320_k520" and r["a_bits"] == 8)
    widths = fc_act_step_widths(_acts(row), row["out_ch"], signed=False)
    assert widths.size == 3 * 20
    assert (widths[20:][(np.arange(20, 60) % 16) != (np.arange(20, 60) % 20) % 16] == 1).all()
    assert pipelined_cycles(widths) == row["compute_cycles"]


def test_value_widths_follow_dnnsim():
    assert value_widths(np.array([0, 1, 2, 3, 4, 255, 32767]), signed=False).tolist() == [1, 1, 2, 2, 3, 8, 15]
    assert value_widths(np.array([0, 1, -1, 2, -2, -3, 127, -128]), signed=True).tolist() == [2, 2, 2, 3, 2, 3, 8, 8]
    assert pipelined_cycles(np.full(64, 16)) == 63 + 16  # one step a cycle, a column free again after 16
    assert pipelined_cycles(np.full(4, 256)) == 3 + 256  # fewer steps than columns: no overlap to gain
    with pytest.raises(ValueError, match="16-bit"):
        value_widths(np.array([1 << 15]), signed=False)


def project_dynamic_cycles(row: dict) -> float:
    """stripes_dynamic's compute cycles for ``row``'s activations as replay charges them: the export's effective
    bits (dfs_sim/model/precision.py ``needed_bits``: mean over groups of 16 channels at one position of the bit
    length of the group's largest level, at least 1; stored in eighths), the cost linear between whole bits
    (cost_models.pricing.effective_cost; analysis/replay_kernel.py interpolates between whole bits)."""
    acts = _acts(row).reshape(row["in_ch"], -1)
    acts = np.pad(acts, ((0, -row["in_ch"] % 16), (0, 0)))
    largest = acts.reshape(-1, 16, acts.shape[1]).max(axis=1)
    bits = round(float(np.maximum(np.frexp(largest.astype(np.float64))[1], 1).mean()) * 8) / 8
    option = Option(0, "q", row["w_bits"], row["a_bits"])
    low, high = math.floor(bits), math.ceil(bits)
    at = {b: effective_cost(_layer(row), "stripes_dynamic", option, b).compute_cycles for b in {low, high}}
    return at[low] + (bits - low) * (at[high] - at[low])


# Measured gaps, ours / DNNsim compute cycles: (min, geometric mean, max) over the rows of each group (docs/hardware.md
# "DNNsim reference"). Any change of the models or the data moves them.
MEASURED = {
    ("stripes_dynamic", "ShapeShifter", "synthetic", "conv"): (0.5396, 0.7804, 0.9452),
    ("stripes_dynamic", "ShapeShifter", "resnet38", "conv"): (0.4140, 0.8607, 1.0848),
    ("stripes_dynamic", "ShapeShifter", "synthetic", "fc"): (0.8421, 0.9541, 1.0000),
    ("stripes_dynamic", "ShapeShifter", "resnet38", "fc"): (0.2222, 0.3776, 0.6667),
    ("loom", "Loom", "synthetic", "conv"): (0.5199, 0.5550, 0.6087),
    ("loom", "Loom", "resnet38", "conv"): (0.5200, 0.6332, 1.2723),
    ("loom", "Loom", "synthetic", "fc"): (0.3401, 0.7853, 2.0482),
    ("loom", "Loom", "resnet38", "fc"): (0.0165, 0.0299, 0.0556),
    ("loom", "Loom_psb2", "synthetic", "conv"): (1.0047, 1.0392, 1.1200),
    ("loom", "Loom_psb2", "resnet38", "conv"): (1.0000, 1.1588, 2.2050),
    ("loom", "Loom_psb2", "synthetic", "fc"): (0.6287, 1.2905, 2.5373),
    ("loom", "Loom_psb2", "resnet38", "fc"): (0.0305, 0.0542, 0.0909),
    ("loom_paper", "Loom_psb2", "synthetic", "conv"): (1.0062, 1.2482, 2.6422),
    ("loom_paper", "Loom_psb2", "resnet38", "conv"): (1.0043, 1.2766, 3.7692),
    ("loom_paper", "Loom_psb2", "synthetic", "fc"): (2.3890, 4.9190, 9.7015),
    ("loom_paper", "Loom_psb2", "resnet38", "fc"): (0.0611, 0.1084, 0.1818),
}


def _ratios(preset: str, arch: str, source: str, kind: str) -> list[float]:
    rows = [r for r in _by_arch(arch) if r["source"] == source and r["kind"] == kind]
    ours = project_dynamic_cycles if preset == "stripes_dynamic" else (lambda row: project_cycles(preset, row))
    return [ours(row) / row["compute_cycles"] for row in rows]


@pytest.mark.parametrize("key", list(MEASURED), ids=["-".join(key) for key in MEASURED])
def test_measured_gap(key):
    """Ours / DNNsim where the models differ on purpose or are not yet updated (docs/hardware.md "DNNsim
    reference"): stripes_dynamic averages per-position groups, DNNsim's ShapeShifter waits for the widest of a
    step's 16 windows; loom charges ceil(a/2)·w per step, DNNsim's Loom trims each step to its widest activation
    (and its example streams 1 bit per cycle); loom_paper has 4 tiles; FC layers run the equal-peak twin here and
    DNNsim's pipelined columns there."""
    ratios = _ratios(*key)
    low, mean, high = MEASURED[key]
    geometric = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    assert (min(ratios), geometric, max(ratios)) == pytest.approx((low, mean, high), abs=5e-4)


# --- the dnnsim_* reference presets (issue #29 item 2): DNNsim's example configurations as presets

DNNSIM_PRESETS = {
    "DaDianNao": "dnnsim_dadiannao",
    "Stripes": "dnnsim_stripes",
    "ShapeShifter": "dnnsim_shapeshifter",
    "Loom": "dnnsim_loom",
    "Loom_psb2": "dnnsim_loom",  # at 2 activation bits per cycle (array.act_bits_per_cycle), DNNsim pe_serial_bits 2
    "DynLoom": "dnnsim_dynloom",
}
STATIC_PRESETS = ("dnnsim_dadiannao", "dnnsim_stripes")


def dnnsim_preset(arch: str) -> Preset:
    preset = load_preset(DNNSIM_PRESETS[arch])
    if arch == "Loom_psb2":
        return preset.replace(name="dnnsim_loom_psb2", array__act_bits_per_cycle=2)
    return preset


def step_widths(row: dict) -> tuple[np.ndarray, np.ndarray]:
    """(activation, weight) widths of every step of ``row``'s layer and sample, DNNsim's conventions
    (cost_models.step_widths; signedness from the data, as DNNsim)."""
    acts, wgts = _levels(row["source"], row["layer"], row["a_bits"], row["w_bits"])
    act = acts[row["sample"]]
    signed_act, signed_wgt = bool((act < 0).any()), bool((wgts < 0).any())
    if row["kind"] == "fc":
        return (
            fc_act_step_widths(act, row["out_ch"], signed=signed_act),
            fc_wgt_step_widths(wgts, signed=signed_wgt),
        )
    layer = LAYERS[(row["source"], row["layer"])]
    return (
        conv_act_step_widths(act, layer.kernel, layer.stride, layer.padding, signed=signed_act),
        conv_wgt_step_widths(wgts, signed=signed_wgt),
    )


def test_dnnsim_presets_are_reference_presets():
    names = set(DNNSIM_PRESETS.values())
    assert names <= set(list_presets(reference=True)) and not names & set(list_presets())
    for name in STATIC_PRESETS:
        assert not load_preset(name).dynamic_precision
    for name in names - set(STATIC_PRESETS):
        array = load_preset(name).array
        assert array.dynamic_precision and array.trim_group == "step" and array.fc_dataflow == "columns"
    assert load_preset("dnnsim_dynloom").array.dynamic_weights and not load_preset("dnnsim_loom").array.dynamic_weights


@pytest.mark.parametrize("arch", list(DNNSIM_PRESETS))
def test_dnnsim_preset_matches_every_row_exactly(arch):
    """The anchor: every row of the committed DNNsim table, conv and FC. Static presets (DaDianNao, Stripes):
    ``layer_cost``'s compute cycles, no data. Dynamic presets (ShapeShifter, Loom, Loom at 2 bits per cycle,
    DynLoom): ``stepwise_cost`` at the row's per-step widths. Every preset's static cost (the option's full widths)
    bounds DNNsim's from above."""
    preset = dnnsim_preset(arch)
    misses = []
    for row in _by_arch(arch):
        static = layer_cost(_layer(row), preset, row["w_bits"], row["a_bits"])
        act, wgt = step_widths(row)
        ours = stepwise_cost(_layer(row), preset, row["w_bits"], row["a_bits"], act, wgt)
        if preset.name in STATIC_PRESETS:
            assert ours == static  # the data does not matter
        if ours.compute_cycles != row["compute_cycles"] or static.compute_cycles < row["compute_cycles"]:
            misses.append((row["layer"], row["sample"], row["a_bits"], row["w_bits"], ours.compute_cycles, row))
    assert not misses
    assert len(_by_arch(arch)) == 119


@pytest.mark.parametrize("arch", ["ShapeShifter", "Loom_psb2", "DynLoom"])
def test_stepwise_cost_at_full_widths_is_the_static_cost(arch):
    """Steps that all need the option's bits cost what ``layer_cost`` charges, field by field (compute, SIP-cycles,
    energy, traffic); fewer bits only take compute cycles and SIP-cycles away."""
    preset = dnnsim_preset(arch)
    for row in _by_arch(arch):
        if row["sample"] or row["a_bits"] != row["w_bits"]:
            continue
        act, wgt = step_widths(row)
        full = stepwise_cost(
            _layer(row),
            preset,
            row["w_bits"],
            row["a_bits"],
            np.full(act.shape, row["a_bits"]),
            np.full(wgt.shape, row["w_bits"]),
        )
        assert full == layer_cost(_layer(row), preset, row["w_bits"], row["a_bits"]), row
        trimmed = stepwise_cost(_layer(row), preset, row["w_bits"], row["a_bits"], act, wgt)
        assert trimmed.active_unit_cycles <= full.active_unit_cycles <= full.unit_cycles
        assert trimmed.e_sram_pj == full.e_sram_pj and trimmed.dram_bits == full.dram_bits


def test_column_pipeline_closed_form_is_the_step_by_step_schedule():
    for steps in (1, 2, 15, 16, 17, 40, 63):
        for cycles in (1, 3, 15, 16, 17, 64, 256):
            assert column_pipeline_cycles(steps, cycles, 16) == pipelined_cycles(np.full(steps, cycles), 16)


def test_dnnsim_keys_leave_every_other_preset_as_it_was():
    """The new array keys default to today's behaviour and stay out of the content hash at their defaults (so cost
    tables cached before them stay valid); a non-default value is hashed. The dynamic references trim per step
    (issue #29 item 4) and are otherwise their static preset, value for value."""
    per_step = {"stripes_dynamic": "stripes", "loom_dynamic": "loom", "loom_paper_dynamic": "loom_paper"}
    for name in list_presets(reference=True):
        preset = load_preset(name)
        if preset.kind != "bitserial" or name.startswith("dnnsim_"):
            continue
        array = preset.array
        if name in per_step:
            base = load_preset(per_step[name])
            assert array == dataclasses.replace(base.array, dynamic_precision=True, trim_group="step")
            assert (preset.buffers, preset.dram, preset.energy, preset.policy, preset.freq_mhz) == (
                base.buffers,
                base.dram,
                base.energy,
                base.policy,
                base.freq_mhz,
            )
            continue
        assert (array.fc_dataflow, array.trim_group, array.dynamic_weights) == ("twin", "position", False)
        assert not {"fc_dataflow", "trim_group", "dynamic_weights"} & set(preset.to_dict()["array"])
        assert preset.replace(array__fc_dataflow="columns").content_hash() != preset.content_hash()
    position = load_preset("stripes").replace(array__dynamic_precision=True)
    with pytest.raises(ValueError, match="trim_group"):
        stepwise_cost(ConvLayer(16, 16, 8, 8, 3, 1, 1), position, 8, 8, np.ones((4, 9), dtype=int))


def test_bad_dnnsim_keys_raise(tmp_path):
    text = (REFERENCE_DIR / "dnnsim_stripes.toml").read_text()
    for old, new, key in (
        ('fc_dataflow = "columns"', 'fc_dataflow = "rows"', "fc_dataflow"),
        ('fc_dataflow = "columns"', 'fc_dataflow = "columns"\ndynamic_weights = true', "dynamic_weights"),
    ):
        path = tmp_path / "bad.toml"
        path.write_text(text.replace(old, new, 1))
        with pytest.raises(ConfigError, match=key):
            load_preset(path)
    row = next(r for r in _by_arch("Loom") if r["kind"] == "conv")
    act, _ = step_widths(row)
    with pytest.raises(ValueError, match=r"1\.\.a_bits"):
        stepwise_cost(_layer(row), "dnnsim_loom", row["w_bits"], row["a_bits"], act + row["a_bits"])
    with pytest.raises(ValueError, match="shape"):
        stepwise_cost(_layer(row), "dnnsim_loom", row["w_bits"], row["a_bits"], act[:, :-1])
    with pytest.raises(ValueError, match="wgt_widths"):
        stepwise_cost(_layer(row), "dnnsim_dynloom", row["w_bits"], row["a_bits"], act)


# ours / DNNsim total cycles (roofline memory vs DRAMSim2), (min, geometric mean, max) per source and kind
TOTALS = {
    ("resnet38", "conv"): (0.0630, 0.5320, 1.1506),
    ("resnet38", "fc"): (0.0270, 0.0940, 0.4490),
    ("synthetic", "conv"): (0.0790, 0.3980, 0.9990),
    ("synthetic", "fc"): (0.0290, 0.0650, 0.1310),
}


def test_total_cycles_gap():
    """Issue #29 item 5 (docs/hardware.md "DNNsim reference", Totals): the dnnsim_* presets' total cycles (exact
    compute + a roofline over DDR4-3200's peak) against DNNsim's (compute + DRAMSim2), every row; DNNsim's memory
    time does not depend on the precision (16-bit words)."""
    ratios: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in ROWS:
        preset = dnnsim_preset(row["arch"])
        if preset.dynamic_precision:
            act, wgt = step_widths(row)
            cost = stepwise_cost(
                _layer(row), preset, row["w_bits"], row["a_bits"], act, wgt if preset.array.dynamic_weights else None
            )
        else:
            cost = layer_cost(_layer(row), preset, row["w_bits"], row["a_bits"])
        assert cost.compute_cycles == row["compute_cycles"]
        ratios[(row["source"], row["kind"])].append(cost.cycles / row["cycles"])
    for key, values in ratios.items():
        geometric = math.exp(sum(math.log(r) for r in values) / len(values))
        assert (min(values), geometric, max(values)) == pytest.approx(TOTALS[key], abs=1e-3)
    dadiannao = {r["cycles"] for r in ROWS if r["arch"] == "DaDianNao" and r["layer"] == "s_conv3_c64_k64_16"}
    assert dadiannao == {38832}
