"""The benchmark sections run and report every figure the summary line uses (no timing is asserted here)."""

import math

from benchmarks.__main__ import bench_read, bench_replay, bench_tables


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
