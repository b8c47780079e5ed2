"""The bundled example traces: real runs of every method, readable, small, with their seeds recorded."""

from pathlib import Path

import pytest

from dfs_sim.layer_table import cifar_resnet_layers
from dfs_sim.options import DFS_OPTIONS, SKIPNET_OPTIONS
from dfs_sim.traces import read_trace

FOLDER = Path(__file__).resolve().parent.parent / "examples" / "traces"
FILES = sorted(FOLDER.glob("*.parquet"))


def test_bundled_traces_cover_every_method_and_stay_small():
    assert FILES, "examples/traces/ is empty: regenerate it with python examples/make_traces.py"
    runs = [read_trace(path) for path in FILES]
    budgets = {method: sorted(r.budget for r in runs if r.method == method) for method in ("dfs", "skipnet")}
    assert len(budgets["dfs"]) >= 3 and len(budgets["skipnet"]) >= 2
    static = sorted(r.meta["static_option"] for r in runs if r.method == "static")
    assert {1, 3, 5, 6} <= set(static)  # 8, 12, 16 bits and full precision
    assert sum(path.stat().st_size for path in FOLDER.iterdir()) < 5 * 1024 * 1024
    for run in runs:
        depth = run.meta["model"]["depth"]
        options = SKIPNET_OPTIONS if run.method == "skipnet" else DFS_OPTIONS
        assert run.meta["model"]["dataset"] == "digits" and run.num_inputs == 360
        expected = cifar_resnet_layers(depth, options=options, gates=run.method != "static")
        assert run.meta["layers"] == expected.to_records()
        assert isinstance(run.meta["seed"], int) and "train_config" in run.meta and "split_seed" in run.meta
        assert run.accuracy == pytest.approx(run.meta["accuracy"])
