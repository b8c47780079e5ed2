"""The benchmark sections run and report every figure the summary line uses (no timing is asserted here)."""

import math
import os
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from benchmarks import plain_replay
from benchmarks.__main__ import (
    bench_end_to_end,
    bench_read,
    bench_replay,
    bench_tables,
    measured_child,
    resampled_run,
    write_trace_alone,
)


def test_fast_sections_report_their_figures():
    replay = bench_replay(3000)
    assert replay["inputs"] == 3000 and replay["blocks"] == 35 and replay["presets"] >= 5
    read = bench_read(2000)
    tables = bench_tables()
    figures = {**replay, **read, **tables}
    for key in (
        "replay_gsums",
        "replay_checked_gsums",
        "replay_vs_bound",
        "replay_vs_numpy",
        "replay_vs_pandas",
        "read_mdecisions_per_s",
        "read_vs_bare_pyarrow",
        "tables_s",
        "search_speedup",
    ):
        assert math.isfinite(figures[key]) and figures[key] > 0, key
    assert tables["table_entries"] > 0


def test_training_section_reports_every_stage():
    from dfs_sim.model.benchmark import bench_training

    figures = bench_training(batch=4, model_name="dfs_resnet8", repeat=1)
    for stage in ("backbone", "gate", "joint"):
        for key in ("plain_s", "fast_s", "speedup", "channels_last_speedup"):
            value = figures[f"train_{stage}_{key}"]
            assert math.isfinite(value) and value > 0, (stage, key)


def test_end_to_end_section_reports_its_figures():
    figures = bench_end_to_end(20_000)
    assert figures["e2e_inputs"] == 20_000
    for key, value in figures.items():
        if key.startswith("e2e_none_") and math.isnan(value):  # a replay command without --per-input
            continue
        assert math.isfinite(value) and value > 0, key


def test_plain_replay_script_matches_the_pipeline(tmp_path):
    from analysis.pipeline import replay

    run = resampled_run(2000)
    trace = write_trace_alone(run, tmp_path / "trace")
    assert plain_replay.main([str(trace), str(tmp_path / "plain")]) == 0
    preset = "bitfusion_eyeriss"
    plain = pq.read_table(tmp_path / "plain" / f"{preset}.parquet").to_pandas()
    pipeline = replay(trace.parent, presets=[preset], out=None, plots=False, progress=False).per_input
    np.testing.assert_array_equal(plain["input_id"], pipeline["input_id"])
    for column in ("energy_pj", "cycles"):
        np.testing.assert_allclose(plain[column], pipeline[column], rtol=1e-12, err_msg=column)


def test_a_failing_child_raises_with_its_stderr():
    command = [sys.executable, "-c", "import sys; sys.exit('the child failed')"]
    with pytest.raises(RuntimeError, match=r"exited with code 1:\n.*the child failed"):
        measured_child(command, dict(os.environ))
