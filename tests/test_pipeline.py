"""The replay pipeline end to end on traces the tests make: numbers, files, resume and output safety."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings, strategies as st

from analysis.pipeline import replay
from analysis.plot_workers import REPLAY_PLOTS
from cost_models import METRICS, build_cost_table, load_preset
from dfs_sim.errors import ConfigError, OutputError
from dfs_sim.traces import read_trace, write_trace
from tests.factories import make_run, write_runs

PRESETS = ["bitparallel16", "stripes"]


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    return write_runs(
        tmp_path_factory.mktemp("traces"),
        {
            "dfs_r8_b50.parquet": make_run("dfs", n=30, seed=1, budget=50.0),
            "dfs_r8_b80.parquet": make_run("dfs", n=30, seed=2, budget=80.0),
            "skipnet_r8_b60.parquet": make_run("skipnet", n=25, seed=3, budget=60.0),
            **{
                f"static_r8_{name}.parquet": make_run("static", n=20, seed=4 + code, static_code=code)
                for code, name in ((1, "q8"), (6, "fp"))
            },
        },
    )


@pytest.fixture(scope="module")
def replayed(traces, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "results"
    return replay(traces, presets=PRESETS, out=out, command="test", progress=False)


def test_per_input_costs_match_an_independent_gather(replayed):
    run = read_trace(replayed.runs[0].path)  # the replay streamed it; read it whole here
    preset = load_preset("stripes")
    table = build_cost_table(run.layers, preset, options=run.options)
    expected = table.fixed[None, :] + sum(table.block[block, run.codes[:, block]] for block in range(run.num_blocks))
    rows = replayed.per_input.query("run == @run.name and preset == 'stripes'")
    np.testing.assert_allclose(rows["cycles"], expected[:, 0])
    np.testing.assert_allclose(rows["energy_pj"], expected[:, 1:4].sum(axis=1))
    np.testing.assert_allclose(rows["latency_us"], preset.cycles_to_us(expected[:, 0]))
    np.testing.assert_array_equal(rows["input_id"], run.input_id)


def test_per_run_values_are_aggregates_of_the_inputs(replayed):
    per_input, per_run = replayed.per_input, replayed.per_run
    assert len(per_run) == len(replayed.runs) * len(PRESETS)
    for _, row in per_run.iterrows():
        inputs = per_input[(per_input["run"] == row["run"]) & (per_input["preset"] == row["preset"])]
        assert row["n"] == len(inputs)
        assert row["energy_pj_mean"] * row["n"] == pytest.approx(inputs["energy_pj"].sum())
        assert row["accuracy"] == pytest.approx(inputs["correct"].mean())
        assert row["accuracy_ci_low"] <= row["accuracy"] <= row["accuracy_ci_high"]
        parts = row["e_compute_pj_mean"] + row["e_sram_pj_mean"] + row["e_dram_pj_mean"]
        assert parts == pytest.approx(row["energy_pj_mean"])
        assert row["energy_pj_p50"] <= row["energy_pj_p99"]


def test_static_full_precision_costs_more_than_static_q8_and_proxy_by_hand(replayed):
    per_run = replayed.per_run.set_index(["run", "preset"])
    for preset in PRESETS:
        assert (
            per_run.loc[("static_r8_fp", preset), "energy_pj_mean"]
            > per_run.loc[("static_r8_q8", preset), "energy_pj_mean"]
        )
        assert per_run.loc[("static_r8_q8", preset), "computation_pct"] == pytest.approx(100 / 16)
        assert per_run.loc[("static_r8_fp", preset), "computation_pct"] == pytest.approx(100.0)


def test_per_block_fractions(replayed):
    per_block = replayed.per_block
    sums = per_block.groupby(["run", "block"])["fraction"].sum()
    np.testing.assert_allclose(sums, 1.0)
    q8 = per_block.query("run == 'static_r8_q8' and option_name == 'q8'")
    assert (q8["fraction"] == 1.0).all()


def test_files_plots_and_manifest(replayed, traces):
    out = replayed.out
    for name in (
        "per_run.csv",
        "per_run.parquet",
        "per_block.parquet",
        "fronts.csv",
        "matched.csv",
        "bases.csv",
        "manifest.json",
    ):
        assert (out / name).is_file(), name
    for stem in (
        "energy_accuracy",
        "latency_accuracy",
        "cost_bases",
        "decision_maps",
        "energy_per_input",
        "energy_parts_matched",
    ):
        assert (out / "plots" / f"{stem}.png").stat().st_size > 5000
        assert (out / "plots" / f"{stem}.svg").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [preset["name"] for preset in manifest["presets"]] == PRESETS
    assert all(len(preset["hash"]) >= 8 for preset in manifest["presets"])
    assert len(manifest["inputs"]) == 5 and all(len(entry["sha256"]) == 64 for entry in manifest["inputs"])
    # the per-input rows: one file per run x preset, streamed as the replay went; read as one frame, they are the
    # rows an in-memory replay keeps
    assert len(list((out / "per_input").glob("*.parquet"))) == len(manifest["inputs"]) * len(PRESETS)
    assert not (out / "per_input.parquet").exists()
    frame = pd.read_parquet(out / "per_input").sort_values(["run", "preset", "input_id"], ignore_index=True)
    in_memory = replay(traces, presets=PRESETS, out=None, progress=False).per_input
    in_memory = in_memory.sort_values(["run", "preset", "input_id"], ignore_index=True)
    pd.testing.assert_frame_equal(frame, in_memory, check_dtype=False, check_categorical=False)
    assert not list(out.rglob("*.tmp"))


def test_rerun_reuses_parts_and_is_byte_identical(replayed, traces):
    out = replayed.out
    before = {
        path.relative_to(out): path.read_bytes()
        for path in out.rglob("*")
        if path.is_file() and path.name != "manifest.json"
    }
    again = replay(traces, presets=PRESETS, out=out, command="test", progress=False)
    assert again.reused_parts == len(replayed.runs) * len(PRESETS)
    after = {
        path.relative_to(out): path.read_bytes()
        for path in out.rglob("*")
        if path.is_file() and path.name != "manifest.json"
    }
    assert after.keys() == before.keys()
    assert [name for name in before if before[name] != after[name]] == []


def test_plots_drawn_by_workers_equal_those_of_this_process_and_a_missing_one_is_drawn_again(
    replayed, traces, tmp_path
):
    plots = replayed.out / "plots"
    workers = replay(traces, presets=PRESETS, out=tmp_path / "workers", progress=False, plot_workers=2)
    drawn = sorted(path.name for path in plots.iterdir())
    assert (
        drawn == sorted(path.name for path in (workers.out / "plots").iterdir())
        and len(drawn) == 2 * len(REPLAY_PLOTS) + 1
    )  # PNG and SVG each, and the stamp
    assert all((plots / name).read_bytes() == (workers.out / "plots" / name).read_bytes() for name in drawn)
    (workers.out / "plots" / "decision_maps.svg").unlink()
    replay(traces, presets=PRESETS, out=workers.out, progress=False, plot_workers=2)
    assert (workers.out / "plots" / "decision_maps.svg").read_bytes() == (plots / "decision_maps.svg").read_bytes()


def test_other_inputs_need_force(replayed, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    write_trace(other / "dfs.parquet", make_run("dfs", n=10, seed=9))
    manifest = (replayed.out / "manifest.json").read_bytes()
    with pytest.raises(OutputError, match="--force"):
        replay(other, presets=PRESETS, out=replayed.out, progress=False)
    assert (replayed.out / "manifest.json").read_bytes() == manifest


def test_unknown_and_duplicate_presets(traces, tmp_path):
    with pytest.raises(ConfigError):
        replay(traces, presets=["no_such_preset"], out=tmp_path / "x", progress=False)
    with pytest.raises(ConfigError, match="more than once"):
        replay(traces, presets=["stripes", "stripes"], out=tmp_path / "y", progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_wilson_interval_against_scipy():
    from scipy.stats import binomtest

    from analysis.frames import wilson_interval

    for successes, trials in ((0, 10), (7, 10), (355, 360), (360, 360), (1, 1)):
        expected = binomtest(successes, trials).proportion_ci(0.95, method="wilson")
        assert wilson_interval(successes, trials) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_parts_of_another_cost_model_version_are_not_reused(replayed, traces, monkeypatch):
    import analysis.parts

    monkeypatch.setattr(analysis.parts, "MODEL_VERSION", "a-later-cost-model")
    again = replay(traces, presets=PRESETS, out=replayed.out, command="test", progress=False, plots=False)
    assert again.reused_parts == 0


def test_a_replay_on_dask_writes_the_same_outputs(replayed, traces, tmp_path):
    """Each run on a Dask worker, its parts written there: every output byte-identical to the in-process replay."""
    on_dask = replay(traces, presets=PRESETS, out=tmp_path / "dask", progress=False, plots=False, workers=2)
    local = replay(traces, presets=PRESETS, out=tmp_path / "local", progress=False, plots=False)  # the same form
    names = ["per_run.csv", "matched.csv", "bases.csv", "fronts.csv", "per_block.parquet"]
    rows = sorted(f"per_input/{path.name}" for path in (local.out / "per_input").glob("*.parquet"))
    assert rows == sorted(f"per_input/{path.name}" for path in (on_dask.out / "per_input").glob("*.parquet"))
    for name in [*names, *rows]:
        assert (on_dask.out / name).read_bytes() == (local.out / name).read_bytes(), name
    again = replay(traces, presets=PRESETS, out=tmp_path / "dask", progress=False, plots=False, workers=2)
    assert again.reused_parts == len(replayed.runs) * len(PRESETS)
    with pytest.raises(ConfigError, match="output folder"):
        replay(traces, presets=PRESETS, out=None, workers=2)


def test_utilisation_is_active_over_all_unit_cycles_of_the_run(replayed):
    run = read_trace(replayed.runs[0].path)
    table = build_cost_table(run.layers, load_preset("stripes"), options=run.options)
    unit, active = METRICS.index("unit_cycles"), METRICS.index("active_unit_cycles")
    gathered = table.block[np.arange(run.num_blocks), run.codes]  # (inputs, blocks, metrics)
    totals = gathered.sum(axis=(0, 1)) + run.num_inputs * table.fixed
    row = replayed.per_run.query("run == @run.name and preset == 'stripes'").iloc[0]
    assert row["utilisation"] == pytest.approx(totals[active] / totals[unit], rel=1e-12)
    assert 0 < row["utilisation"] <= 1


def test_quantiles_from_further_passes_equal_those_of_kept_columns(replayed):
    """When the columns would not fit, they are binned and their quantiles' values gathered in one more (unverified)
    pass: the same rows, to the bit, as when they are kept whole."""
    from analysis.streaming import replay_run

    run = replayed.runs[0]
    presets = [load_preset(name) for name in PRESETS]
    tables = [build_cost_table(run.layers, preset, options=run.options) for preset in presets]
    kept = replay_run(run, presets, tables, chunk_inputs=7)
    passes = replay_run(run, presets, tables, chunk_inputs=7, keep_bytes=1)
    assert passes.rows == kept.rows
    exact_fit = replay_run(run, presets, tables, chunk_inputs=7, keep_bytes=2 * len(PRESETS) * 8 * run.num_inputs)
    assert exact_fit.rows == kept.rows


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.floats(-1e12, 1e12, allow_nan=False), st.sampled_from([0.0, 1.5, 1.5000001, 2.0**40])),
        min_size=1,
        max_size=400,
    ),
    counted=st.integers(1, 50),
    gathered=st.integers(1, 50),
)
# −0.0 and +0.0 are one value to np.unique; once they fell in two bins and the 1st percentile came out 0.98
@example(values=[0.0, 1.0, -0.0], counted=3, gathered=3)
def test_binned_quantiles_are_numpys_to_the_bit(values, counted, gathered):
    from analysis.streaming import QUANTILES, BinnedQuantiles

    column = np.array(values)
    binned = BinnedQuantiles(["column"], column.size)
    for start in range(0, column.size, counted):
        binned.count("column", column[start : start + counted])
    binned.plan()
    for start in range(0, column.size, gathered):
        binned.gather("column", column[start : start + gathered])
    assert binned.quantiles("column") == [float(value) for value in np.percentile(column, QUANTILES)]
