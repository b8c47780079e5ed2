"""Data-dependent precision: what the export measures, how traces carry it, what dynamic presets charge for it.

The needed bits of hand-made activations are known by construction; the costs are checked against the closed forms
of the bit-serial arrays (Stripes: a step streams the needed bits, one per cycle; Loom: ceil(bits / 2) · w).
"""

import numpy as np
import pyarrow as pa
import pytest
import torch

from analysis.replay_kernel import precision_deltas, precision_deltas_reference
from analysis.streaming import replay_run
from cost_models import build_cost_table, layer_cost, load_preset, option_cost
from cost_models.pricing import effective_cost
from dfs_sim.layer_table import ConvLayer
from dfs_sim.model.blocks import GatedBasicBlock
from dfs_sim.model.precision import PrecisionMeter, needed_bits
from dfs_sim.model.quantize import ActivationQuantizer
from dfs_sim.model.registry import create_model
from dfs_sim.options import DFS_OPTIONS
from dfs_sim.traces import (
    PRECISION_STEPS,
    TraceFormatError,
    TraceRun,
    open_trace,
    precision_column,
    read_trace,
    write_trace,
)
from tests.factories import make_run, raw_columns, write_raw

FILLING = ConvLayer(64, 256, 16, 16, 3, 1, 1, fixed_option=6)  # fills the DaDianNao tiles (module test_cost_models)
Q8 = DFS_OPTIONS[1]


# ------------------------------------------------------------------------------------------------ what is measured
def test_needed_bits_of_hand_made_groups():
    levels = torch.zeros(2, 32, 1, 2)
    levels[0, 3, 0, 0] = 5  # group (channels 0-15, position 0): 3 bits
    levels[0, 20, 0, 0] = 255  # group (16-31, position 0): 8 bits
    levels[0, 0, 0, 1] = 1  # group (0-15, position 1): 1 bit; group (16-31, position 1): all zero, 1 bit
    assert needed_bits(levels).tolist() == [pytest.approx((3 + 8 + 1 + 1) / 4), 1.0]
    # 20 channels: the last group holds 4 real channels and 12 zeros
    odd = torch.zeros(1, 20, 1, 1)
    odd[0, 19] = 1000  # 10 bits
    assert needed_bits(odd).tolist() == [pytest.approx((1 + 10) / 2)]


def test_groups_spanning_positions_take_their_largest_member():
    levels = torch.zeros(1, 16, 2, 17)  # 34 positions: two full groups of 16 and one of 2 (padded with zeros)
    levels[0, 5, 0, 3] = 7  # 3 bits in the first group of positions
    levels[0, 9, 1, 16] = 300  # 9 bits in the last (partial) group
    assert needed_bits(levels, positions=16).tolist() == [pytest.approx((3 + 1 + 9) / 3)]
    assert needed_bits(levels, positions=1).tolist() == [pytest.approx((3 + 9 + 32) / 34)]
    with pytest.raises(ValueError, match="positions"):
        PrecisionMeter(positions=4)


def test_quantizer_levels_are_the_grid_forward_maps_to():
    quantizer = ActivationQuantizer().eval()
    quantizer.running_min.fill_(0.0)
    quantizer.running_max.fill_(3.0)
    x = torch.linspace(-1, 4, 101)
    for bits in (2, 8, 12):
        levels = quantizer.levels(x, bits)
        assert levels.min() == 0 and levels.max() == 2**bits - 1 and torch.equal(levels, levels.round())
        scale = 3.0 / (2**bits - 1)
        torch.testing.assert_close(levels * scale, quantizer(x, bits))


def test_a_block_reports_the_mac_weighted_mean_of_its_convolutions():
    torch.manual_seed(0)
    block = GatedBasicBlock(16, 32, stride=2).eval()
    for conv in (block.conv1, block.conv2):
        conv.input_quantizer.running_max.fill_(2.0)
        conv.input_quantizer.initialized.fill_(True)
    x = torch.rand(3, 16, 8, 8)
    meter = PrecisionMeter()
    out = block(x, DFS_OPTIONS[2], meter)  # q10
    torch.testing.assert_close(out, block(x, DFS_OPTIONS[2]))  # measuring changes nothing
    (first, macs1), (second, macs2) = meter.parts
    assert macs1 == 32 * 4 * 4 * 16 * 9 and macs2 == 32 * 4 * 4 * 32 * 9
    assert torch.all((first >= 1) & (first <= 10)) and torch.all((second >= 1) & (second <= 10))
    torch.testing.assert_close(meter.block_bits(), (first * macs1 + second * macs2) / (macs1 + macs2))
    skipped = PrecisionMeter()
    block(x, DFS_OPTIONS[0], skipped)
    assert skipped.block_bits() is None


def test_measuring_changes_no_decision_and_fills_quantized_decisions_only():
    torch.manual_seed(1)
    model = create_model("dfs_resnet8").eval()
    images = torch.rand(6, 3, 32, 32)
    with torch.no_grad():
        plain = model.forward_grouped(images)
        measured = model.forward_grouped(images, measure_precision=True)
        static = model.forward_grouped(images, fixed_code=3, measure_precision=True)
    assert plain.precision is None and torch.equal(plain.codes, measured.codes)
    torch.testing.assert_close(plain.logits, measured.logits)
    bits = measured.precision
    a_bits = torch.tensor([0 if o.is_skip or o.float else o.a_bits for o in model.options], dtype=torch.float64)
    chosen = a_bits[measured.codes]
    assert torch.all((bits == 0) == (chosen == 0))
    assert torch.all(bits <= chosen) and torch.all(bits[chosen > 0] >= 1)
    assert static.precision.shape == (6, model.num_gated) and torch.all(
        (static.precision >= 1) & (static.precision <= 12)
    )


# ------------------------------------------------------------------------------------------------ how it is stored
def _full_precision_of(run: TraceRun, fraction: float = 1.0) -> np.ndarray:
    """Every quantized decision at ``fraction`` of its option's bits (at least one), in eighths."""
    bits = np.array([0 if o.is_skip or o.float else o.a_bits for o in run.options], dtype=np.float64)[run.codes]
    eighths = np.where(bits > 0, np.maximum(np.round(bits * fraction * PRECISION_STEPS), PRECISION_STEPS), 0)
    return eighths.astype(np.uint8)


def test_precision_round_trips_streams_and_is_hashed(tmp_path):
    run = make_run("dfs", depth=14, n=300, seed=5)
    dynamic = run.with_precision(_full_precision_of(run, 0.6))
    assert dynamic.content_hash() != run.content_hash()
    path = write_trace(tmp_path / "dyn.parquet", dynamic)
    read = read_trace(path)
    np.testing.assert_array_equal(read.precision, dynamic.precision)
    assert read.meta["content_hash"] == dynamic.content_hash()
    opened = open_trace(path)
    assert opened.has_precision
    chunks = list(opened.chunks(64))
    np.testing.assert_array_equal(np.concatenate([c.precision for c in chunks]), dynamic.precision)
    plain = read_trace(write_trace(tmp_path / "plain.parquet", run))
    assert plain.precision is None and not open_trace(tmp_path / "plain.parquet").has_precision
    # a flipped precision is a hash mismatch, on both read paths
    columns = raw_columns(dynamic)
    flipped = dynamic.precision[:, 0].copy()
    flipped[flipped > 8] -= 1
    columns[precision_column(0)] = pa.array(flipped, pa.uint8())
    write_raw(tmp_path / "bad.parquet", columns, dict(dynamic.meta, content_hash=dynamic.content_hash()))
    with pytest.raises(TraceFormatError, match="content hash"):
        read_trace(tmp_path / "bad.parquet")
    with pytest.raises(TraceFormatError, match="content hash"):
        list(open_trace(tmp_path / "bad.parquet").chunks(64))


def test_bad_precisions_are_named(tmp_path):
    run = make_run("dfs", depth=8, n=20, static_code=1)  # q8 everywhere
    with pytest.raises(TraceFormatError, match=r"holds 9 bits at option q8"):
        run.with_precision(np.full(run.codes.shape, 9 * PRECISION_STEPS, np.uint8))
    with pytest.raises(TraceFormatError, match=r"0.5 bits"):
        run.with_precision(np.full(run.codes.shape, 4, np.uint8))
    skipped = make_run("dfs", depth=8, n=20, static_code=0)
    with pytest.raises(TraceFormatError, match="which has none"):
        skipped.with_precision(np.full(run.codes.shape, 8, np.uint8))
    columns = raw_columns(run.with_precision(_full_precision_of(run)))
    del columns[precision_column(1)]
    with pytest.raises(TraceFormatError, match=r"precision columns: missing \['precision_01'\]"):
        write_raw(tmp_path / "partial.parquet", columns, dict(run.meta, content_hash="x"))
        read_trace(tmp_path / "partial.parquet")


# --------------------------------------------------------------------------------------------- what it is charged
@pytest.mark.parametrize("bits", [1, 3, 5, 8])
def test_dynamic_stripes_streams_the_needed_bits(bits):
    preset = load_preset("stripes_dynamic")
    cost = effective_cost(FILLING, preset, Q8, bits)
    static = option_cost(FILLING, preset, Q8)
    # docs/hardware.md §2.2: ceil(PQ/16) · ceil(K/256) · RS · ceil(C/16) steps of `bits` cycles
    assert cost.compute_cycles == 16 * 1 * 9 * 4 * bits
    assert (cost.dram_bits, cost.ibuf_read_bits, cost.wbuf_read_bits) == (
        static.dram_bits,
        static.ibuf_read_bits,
        static.wbuf_read_bits,
    )  # storage and traffic stay at the option's 8 bits
    assert cost.energy_pj <= static.energy_pj


@pytest.mark.parametrize("bits, cycles_per_step", [(1, 1 * 8), (2, 1 * 8), (3, 1.5 * 8), (4, 2 * 8), (8, 4 * 8)])
def test_dynamic_loom_streams_two_needed_bits_a_cycle(bits, cycles_per_step):
    """``bits`` is the mean streamed width per step: each step streams a multiple of 2 bits (ceil(width/2) passes,
    the export's step measurement rounds each step up), so 3 is a mean of 1.5 passes; below 2 a step still takes
    one pass."""
    preset = load_preset("loom").replace(array__dynamic_precision=True)
    assert effective_cost(FILLING, preset, Q8, bits).compute_cycles == 16 * 1 * 9 * 4 * cycles_per_step


def test_effective_cost_needs_a_dynamic_preset_and_leaves_untrimmable_options_alone():
    with pytest.raises(ValueError, match="dynamic precision"):
        effective_cost(FILLING, "stripes", Q8, 4)
    preset = load_preset("stripes_dynamic")
    for option in (DFS_OPTIONS[0], DFS_OPTIONS[-1]):  # skip, full precision
        assert effective_cost(FILLING, preset, option, 4) == option_cost(FILLING, preset, option)
    assert effective_cost(FILLING, preset, Q8, 12) == option_cost(FILLING, preset, Q8)
    assert layer_cost(FILLING, preset, 8, 8) == layer_cost(FILLING, "stripes", 8, 8)  # static costs unchanged


def test_precision_kernel_equals_its_numpy_twin():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 7, size=(500, 9)).astype(np.uint8)
    precision = rng.integers(0, 256, size=(500, 9)).astype(np.uint8)
    deltas = rng.normal(size=(9, 7, 256, 7))
    deltas[:, :, 0] = 0
    out = np.empty((500, 7))
    precision_deltas(codes, precision, deltas, out)
    np.testing.assert_allclose(out, precision_deltas_reference(codes, precision, deltas), rtol=1e-12)


def test_replay_charges_the_recorded_precisions():
    run = make_run("dfs", depth=14, n=200, seed=11)
    static_preset, dynamic_preset = load_preset("stripes"), load_preset("stripes_dynamic")
    tables = [
        build_cost_table(run.layers, preset, run.options, use_cache=False) for preset in (static_preset, dynamic_preset)
    ]
    presets = [static_preset, dynamic_preset]
    rows = {
        name: replay_run(r, presets, tables).rows
        for name, r in (
            ("none", run),
            ("full", run.with_precision(_full_precision_of(run))),
            ("half", run.with_precision(_full_precision_of(run, 0.5))),
        )
    }
    baseline = rows["none"][0]
    for name in ("none", "full"):  # nothing measured, or every decision needing all its bits: the static costs
        for row in rows[name]:
            assert row["cycles_mean"] == pytest.approx(baseline["cycles_mean"], rel=1e-12)
            assert row["energy_pj_mean"] == pytest.approx(baseline["energy_pj_mean"], rel=1e-12)
    half_static, half_dynamic = rows["half"]
    assert half_static["cycles_mean"] == pytest.approx(baseline["cycles_mean"], rel=1e-12)  # a static preset ignores it
    # by hand: each quantized decision costs the effective table at half its bits (whole bits here: 4, 5, 6, 7, 8)
    table = tables[1]
    half = _full_precision_of(run, 0.5) // PRECISION_STEPS
    cycles = table.metrics.index("cycles")
    blocks = np.arange(run.num_blocks)
    expected = table.fixed[cycles] + np.mean(
        [table.effective[blocks, codes, bits, cycles].sum() for codes, bits in zip(run.codes, half, strict=True)]
    )
    assert half_dynamic["cycles_mean"] == pytest.approx(expected, rel=1e-12)
    assert half_dynamic["cycles_mean"] < baseline["cycles_mean"]
    assert 0 < half_dynamic["utilisation"] <= 1


def test_a_sweep_point_on_a_dynamic_preset_charges_the_precisions_as_replay_does():
    from analysis.sweep import evaluate_points
    from cost_models.preset import REFERENCE_DIR
    from dfs_sim._toml import read_toml

    run = make_run("dfs", depth=8, n=120, seed=4, name="static_run")
    dynamic = make_run("dfs", depth=8, n=120, seed=4, name="measured").with_precision(_full_precision_of(run, 0.5))
    document = read_toml(REFERENCE_DIR / "stripes_dynamic.toml")
    frame = evaluate_points([(0, {}, document)], [run, dynamic])
    static_row, dynamic_row = frame.to_dict("records")
    preset = load_preset("stripes_dynamic")
    replayed = replay_run(dynamic, [preset], [build_cost_table(run.layers, preset, run.options, use_cache=False)])
    assert dynamic_row["cycles_mean"] == pytest.approx(replayed.rows[0]["cycles_mean"], rel=1e-12)
    assert dynamic_row["energy_pj_mean"] == pytest.approx(replayed.rows[0]["energy_pj_mean"], rel=1e-12)
    assert dynamic_row["cycles_mean"] < static_row["cycles_mean"]


def test_the_bundled_measured_traces_replay_faster_on_dynamic_stripes():
    """examples/traces_dynamic: three Fashion-MNIST runs exported with --effective-precision (README)."""
    from pathlib import Path

    from dfs_sim.traces import read_traces

    runs = read_traces(Path(__file__).parents[1] / "examples" / "traces_dynamic")
    presets = [load_preset("stripes"), load_preset("stripes_dynamic")]
    for run in runs:
        assert run.precision is not None
        tables = [build_cost_table(run.layers, preset, run.options) for preset in presets]
        static, dynamic = replay_run(run, presets, tables, form="full").rows
        assert static["accuracy"] == dynamic["accuracy"]
        assert 0.85 < dynamic["latency_us_mean"] / static["latency_us_mean"] < 1.0
        assert dynamic["energy_pj_mean"] < static["energy_pj_mean"]


def test_a_dynamic_preset_without_measured_traces_says_so(tmp_path):
    import warnings

    from dfs_sim.replay import _one_line_warnings, main
    from tests.factories import write_runs

    folder = write_runs(tmp_path / "traces", {"plain.parquet": make_run("dfs", depth=8, n=20)})
    args = ["--presets", "stripes_dynamic", "--no-plots", "--quiet"]
    with pytest.warns(UserWarning, match="stripes_dynamic: no trace carries effective precisions") as caught:
        assert main([str(folder), *args, "--out", str(tmp_path / "out")]) == 0
    with _one_line_warnings():  # how the command shows it
        shown = warnings.formatwarning(caught[0].message, UserWarning, "file.py", 1)
    assert shown.startswith("warning: stripes_dynamic") and shown.count("\n") == 1
    run = make_run("dfs", depth=8, n=20)
    write_runs(tmp_path / "measured", {"measured.parquet": run.with_precision(_full_precision_of(run))})
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*effective precisions")  # not this time
        assert main([str(tmp_path / "measured"), *args, "--out", str(tmp_path / "o2")]) == 0


def test_the_table_command_prices_a_needed_width(capsys):
    import io

    import pandas as pd

    from cost_models.table import main

    assert main(["--preset", "stripes_dynamic", "--arch", "resnet8", "--effective-bits", "5"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert main(["--preset", "stripes_dynamic", "--arch", "resnet8"]) == 0
    static = pd.read_csv(io.StringIO(capsys.readouterr().out))
    q8 = (frame["option_name"] == "q8") & (frame["kind"] == "conv")
    assert (frame.loc[q8, "effective_bits"] == 5).all()
    assert (frame.loc[frame["option_name"] == "fp", "effective_bits"] == 32).all()
    # Stripes: compute cycles are proportional to the streamed bits, 5 instead of 8 on every convolution at q8
    assert (frame.loc[q8, "compute_cycles"] * 8 == static.loc[q8, "compute_cycles"] * 5).all()
    for extra in (["--preset", "stripes"], ["--preset", "stripes_dynamic", "--policy", "x.toml"]):
        assert main([*extra, "--effective-bits", "5"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--effective-bits" in err


def test_a_replay_beside_a_dynamic_preset_pairs_only_the_static_presets():
    """The README's dynamic-precision replay: the paired statistics (oracle included) leave the dynamic preset out,
    whose per-input costs depend on each input's recorded widths, instead of failing on it."""
    from pathlib import Path

    from analysis import replay

    folder = Path(__file__).resolve().parent.parent / "examples" / "traces_dynamic"
    # the bundle's Loom-step traces are approximate on Stripes' geometry, and the replay says so
    with pytest.warns(UserWarning, match="measured per step on another preset's geometry"):
        result = replay(folder, presets=["stripes", "stripes_dynamic"], out=None, plots=False, per_input="none")
    assert set(result.per_run["preset"]) == {"stripes", "stripes_dynamic"}
    assert set(result.oracle["preset"]) == {"stripes"}


def test_a_trace_measured_on_another_steps_geometry_says_so(tmp_path):
    import dataclasses
    import warnings

    from dfs_sim.replay import main
    from tests.factories import write_runs

    run = make_run("dfs", depth=8, n=20)
    stripes_steps = {"measurement": "step", "preset": "stripes_dynamic", "windows": 16, "lanes": 16}
    stripes_steps |= {"filters_per_set": 256, "bits_per_cycle": 1, "steps_per_bit": 8, "weights": "steps"}
    measured = run.with_precision(_full_precision_of(run))
    measured = dataclasses.replace(measured, meta={**measured.meta, "effective_precision": stripes_steps})
    folder = write_runs(tmp_path / "traces", {"steps.parquet": measured})
    args = ["--no-plots", "--quiet"]
    with pytest.warns(UserWarning, match="loom_dynamic: 1 trace.* another preset's geometry"):
        assert main([str(folder), "--presets", "loom_dynamic", *args, "--out", str(tmp_path / "loom")]) == 0
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*geometry")  # its own geometry: nothing to say
        assert main([str(folder), "--presets", "stripes_dynamic", *args, "--out", str(tmp_path / "stripes")]) == 0
