"""Design-space sweeps: a one-point sweep is the plain replay; Dask equals in-process; resume; bad specs."""

import numpy as np
import pandas as pd
import pytest

from analysis.pipeline import replay
from analysis.sweep import load_sweep_spec, run_sweep
from dfs_sim.errors import ConfigError
from dfs_sim.sweep import main
from tests.factories import make_run, write_runs


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    return write_runs(
        tmp_path_factory.mktemp("sweep_traces"),
        {
            "dfs_a.parquet": make_run("dfs", n=40, seed=1, budget=40.0),
            "dfs_b.parquet": make_run("dfs", n=40, seed=2, budget=70.0),
            "skipnet_a.parquet": make_run("skipnet", n=40, seed=3, budget=50.0),
            **{
                f"static_{code}.parquet": make_run("static", n=40, seed=4 + code, static_code=code)
                for code in (1, 3, 6)
            },
        },
    )


def _spec(folder, body: str, name="spec.toml"):
    path = folder / name
    path.write_text("schema_version = 1\n" + body)
    return path


def test_one_point_sweep_equals_plain_replay(traces, tmp_path):
    spec = _spec(tmp_path, 'base = "stripes"\n[axes]\n"dram.pj_per_bit" = [15.0]\n')
    swept = run_sweep(spec, traces, workers=0, progress=False).frame.set_index("run")
    plain = replay(traces, presets=["stripes"], progress=False).per_run.set_index("run")
    for column in (
        "energy_pj_mean",
        "e_compute_pj_mean",
        "e_sram_pj_mean",
        "e_dram_pj_mean",
        "latency_us_mean",
        "latency_us_p99",
        "accuracy",
        "dram_bits_mean",
    ):
        np.testing.assert_allclose(swept.loc[plain.index, column], plain[column], rtol=1e-9, err_msg=column)


def test_dask_cluster_equals_in_process_and_resume(traces, tmp_path):
    spec = _spec(
        tmp_path,
        'base = "bitparallel16"\npartition_size = 1\n[axes]\n'
        '"dram.pj_per_bit" = [5.0, 15.0]\n"array.tiles" = [8, 16]\n',
    )
    in_process = run_sweep(spec, traces, workers=0, progress=False).frame
    assert len(in_process) == 4 * 6 and set(in_process["point"]) == {0, 1, 2, 3}
    on_dask = run_sweep(spec, traces, workers=2, progress=False).frame
    pd.testing.assert_frame_equal(in_process, on_dask)
    # cheaper DRAM never raises a point's energy
    dfs = in_process[in_process["run"] == "dfs_a"].set_index(["axis:array.tiles", "axis:dram.pj_per_bit"])
    assert (dfs.xs(5.0, level=1)["energy_pj_mean"] < dfs.xs(15.0, level=1)["energy_pj_mean"]).all()

    out = tmp_path / "out"
    partial = run_sweep(spec, traces, out=out, workers=0, max_partitions=1, progress=False)
    assert partial.frame.empty and len(list((out / "partitions").glob("*.parquet"))) == 1
    resumed = run_sweep(spec, traces, out=out, workers=0, progress=False)
    assert resumed.reused_partitions == 1 and resumed.partitions == 4
    pd.testing.assert_frame_equal(resumed.frame, in_process)
    assert (out / "sweep.parquet").is_file() and (out / "plots" / "gain_heatmap.png").is_file()
    # a damaged partition is computed again, not trusted and not fatal
    damaged = sorted((out / "partitions").glob("*.parquet"))[1]
    damaged.write_bytes(damaged.read_bytes()[:-20])
    again = run_sweep(spec, traces, out=out, workers=0, progress=False)
    assert again.reused_partitions == 3
    pd.testing.assert_frame_equal(again.frame, in_process)


def test_sample_mode_is_seeded(tmp_path):
    body = (
        'base = "stripes"\nmode = "sample"\nsamples = 3\nseed = {seed}\n[axes]\n'
        '"array.tiles" = [4, 8, 16]\n"dram.bits_per_cycle" = [64, 256, 1024]\n'
    )
    first = load_sweep_spec(_spec(tmp_path, body.format(seed=1), "a.toml")).point_values()
    again = load_sweep_spec(_spec(tmp_path, body.format(seed=1), "b.toml")).point_values()
    other = load_sweep_spec(_spec(tmp_path, body.format(seed=2), "c.toml")).point_values()
    assert first == again and len(first) == 3 and first != other


@pytest.mark.parametrize(
    "body, message",
    [
        ('base = "stripes"\n[axes]\n"array.colour" = [1]\n', "array.colour"),
        ('base = "stripes"\n[axes]\n"array.tiles" = []\n', "non-empty list"),
        ('base = "stripes"\n[axes]\n"array.tiles" = [16, -4]\n', "array.tiles"),
        ('base = "stripes"\n[axes]\n"dram.pj_per_bit" = ["cheap"]\n', "dram.pj_per_bit"),
        ('base = "stripes"\nspeed = 3\n[axes]\n"array.tiles" = [4]\n', "unknown key 'speed'"),
        ('base = "no_such_preset"\n[axes]\n"array.tiles" = [4]\n', "base"),
        ('base = "stripes"\nmode = "sample"\n[axes]\n"array.tiles" = [4]\n', "samples"),
        ('base = "stripes"\n', "missing key 'axes'"),
    ],
)
def test_bad_specs(tmp_path, traces, body, message, capsys):
    path = _spec(tmp_path, body)
    with pytest.raises(ConfigError, match=message) as caught:
        load_sweep_spec(path)
    assert str(path) in str(caught.value)
    assert main([str(path), str(traces), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(path) in error
    assert not (tmp_path / "out").exists()


def test_shipped_example_specs_load():
    for name in ("bitfusion_memory", "stripes_sample"):
        spec = load_sweep_spec(f"examples/sweeps/{name}.toml")
        assert len(spec.point_documents()) >= 8


def test_small_sweeps_run_in_process_by_default():
    import os

    from analysis.sweep import IN_PROCESS_EVALUATIONS, default_workers

    assert default_workers(18, 9) == 0
    assert default_workers(IN_PROCESS_EVALUATIONS, 1) == 0
    assert default_workers(IN_PROCESS_EVALUATIONS + 1, 1) == min(2, os.cpu_count() or 1)


def test_gain_by_axis_counts_only_the_runs_a_baseline_reaches():
    from analysis.sweep_plots import gain_by_axis_figure

    rows = [
        {
            "run": run,
            "method": "dfs",
            "axis:dram.pj_per_bit": dram,
            "energy_ratio_vs_skipnet": skipnet,
            "energy_ratio_vs_static": 0.5,
            "energy_ratio_vs_dfs_binary": float("nan"),  # no binary run: no line
        }
        for run, skipnet in (("dfs_a", 3.0), ("dfs_b", float("nan")))
        for dram in (5.0, 15.0)
    ]
    figure = gain_by_axis_figure(pd.DataFrame(rows), ["dram.pj_per_bit"])
    labels = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    assert labels == [
        "vs SkipNet (median over 1 DFS runs; band: their range)",
        "vs static (median over 2 DFS runs; band: their range)",
    ]
