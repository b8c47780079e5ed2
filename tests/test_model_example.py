"""The bundled traces: real runs of every method, readable, small, with their seeds recorded.

``examples/traces/`` is the Fashion-MNIST example users replay; ``tests/data/digits_traces/`` is the small digits
example the golden frames are made from."""

import re
from pathlib import Path

import numpy as np
import pytest

from analysis.frames import wilson_interval
from dfs_sim.layer_table import cifar_resnet_layers
from dfs_sim.options import DFS_OPTIONS, SKIPNET_OPTIONS
from dfs_sim.traces import read_trace

ROOT = Path(__file__).resolve().parent.parent
FASHION = ROOT / "examples" / "traces"
DIGITS = ROOT / "tests" / "data" / "digits_traces"


def _runs(folder: Path):
    files = sorted(folder.glob("*.parquet"))
    assert files, f"{folder} is empty: regenerate it with python examples/make_traces.py"
    return [read_trace(path) for path in files]


def _static_name(run) -> str:
    """A static run's width: its name (traces since the quantizer choice) or its DFS code (traces before)."""
    option = run.meta["static_option"]
    return DFS_OPTIONS[option].name if isinstance(option, int) else option


def _check_early_exit(run) -> None:
    """An early-exit run: each input runs a prefix of the units (leaving early skips every later one), and the exit
    fractions it records are those its codes say."""
    assert run.method == "early_exit" and isinstance(run.meta["seed"], int)
    units_run = (run.codes != 0).astype(int)  # stage 2, the second exit, stage 3 with the last exit
    prefixes = np.array([[0, 0, 0], [1, 1, 0], [1, 1, 1]])  # leaving at exit 0, 1 or 2
    matches = (units_run[:, None, :] == prefixes[None, :, :]).all(axis=2)
    assert matches.any(axis=1).all()
    exits = matches.argmax(axis=1)
    fractions = np.bincount(exits, minlength=3) / run.num_inputs
    assert fractions.tolist() == pytest.approx(run.meta["exit_fractions"])


def _check_common(runs, dataset: str, inputs: int, input_size: int, in_channels: int) -> None:
    for run in runs:
        assert run.meta["model"]["dataset"] == dataset and run.num_inputs == inputs
        if run.meta["model"].get("arch") != "cifar_resnet":  # another network: examples/early_exit.py's
            _check_early_exit(run)
            continue
        depth = run.meta["model"]["depth"]
        options = SKIPNET_OPTIONS if run.method in ("skipnet", "dfs_binary") else DFS_OPTIONS
        if run.method == "static" or run.meta["train_config"].get("options"):  # its own widths, fp among them
            options = run.options
        assert run.meta["model"]["dataset"] == dataset and run.num_inputs == inputs
        assert run.meta["model"]["input_size"] == [in_channels, input_size, input_size]
        expected = cifar_resnet_layers(
            depth,
            options=options,
            gates=run.method != "static",
            gate_outputs=1 if run.method == "skipnet" else None,
            input_size=input_size,
            in_channels=in_channels,
        )
        assert run.meta["layers"] == expected.to_records()
        assert isinstance(run.meta["seed"], int) and "train_config" in run.meta and "split_seed" in run.meta
        assert run.accuracy == pytest.approx(run.meta["accuracy"])


def test_digits_traces_cover_every_method_and_stay_small():
    runs = _runs(DIGITS)
    budgets = {method: sorted(r.budget for r in runs if r.method == method) for method in ("dfs", "dfs_binary")}
    assert len(budgets["dfs"]) >= 3 and len(budgets["dfs_binary"]) >= 2
    static = sorted(r.meta["static_option"] for r in runs if r.method == "static")
    assert {1, 3, 5, 6} <= set(static)  # 8, 12, 16 bits and full precision
    assert sum(path.stat().st_size for path in DIGITS.iterdir()) < 5 * 1024 * 1024
    _check_common(runs, "digits", 360, 32, 3)


def test_fashion_mnist_traces_are_full_test_set_runs_of_the_real_geometry():
    runs = _runs(FASHION)
    _check_common(runs, "fashion-mnist", 10_000, 28, 1)
    labels = runs[0].label
    assert all(np.array_equal(run.label, labels) for run in runs)  # the test set's own labels, in one order
    assert np.bincount(labels, minlength=10).tolist() == [1000] * 10
    static = {_static_name(run): run for run in runs if run.method == "static" and run.meta["static_option"]}
    assert {"q2", "q3", "q4", "q5", "q6", "q7", "q8", "q10", "q12", "q16", "fp"} <= set(static)  # every width
    assert {"w8a4", "w4a8", "w6a4", "w4a6"} <= set(static)  # weights and activations apart
    assert static["fp"].accuracy >= 0.93
    for run in runs:
        if run.method == "dfs":  # within 2 points of the budget, on the basis it was set in (proxy or a preset)
            realised = run.meta.get("budget_pct", run.meta["computation_pct"])
            assert abs(realised - run.budget) <= 2.0, (run.name, run.budget, realised)
    files = [path for path in (ROOT / "examples").rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files) < 30 * 1024 * 1024


def test_fashion_mnist_example_spans_the_trade_off_with_every_method():
    runs = _runs(FASHION)
    by_method = {method: [run for run in runs if run.method == method] for method in ("dfs", "skipnet", "static")}
    by_method["dfs"] = [run for run in by_method["dfs"] if run.meta.get("cost_basis", "proxy") == "proxy"]
    assert len(runs) >= 15 and len(by_method["dfs"]) >= 6 and len(by_method["skipnet"]) >= 4
    assert min(run.budget for run in by_method["dfs"]) < 6.25  # below every block at 8 bits: blocks must be skipped
    for run in by_method["skipnet"]:  # the authors' two-phase training, with both computation definitions
        assert run.meta["train_config"]["stages"] == ["hrl"] and run.meta["alpha"] == run.meta["train_config"]["alpha"]
        executed = run.meta["computation_pct"] / 100 * run.num_blocks  # per input, on average
        expected = (executed + 1) / (run.num_blocks + 1) * 100  # SkipNet's definition counts the first block
        assert run.meta["skipnet_computation_pct"] == pytest.approx(expected)
    assert len({run.meta["alpha"] for run in by_method["skipnet"]}) == len(by_method["skipnet"])
    full = next(run for run in by_method["static"] if run.meta["static_option"] in (6, "fp"))
    paper_options = [option.name for option in DFS_OPTIONS]
    seven = [run for run in by_method["dfs"] if [option.name for option in run.options] == paper_options]
    lowest = min(seven, key=lambda run: run.budget)  # the paper's options: below 6.25% blocks must be skipped
    low, _ = wilson_interval(int(full.correct.sum()), full.num_inputs)
    _, high = wilson_interval(int(lowest.correct.sum()), lowest.num_inputs)
    assert high < low, "the curve is flat: the lowest budget is within the intervals of full precision"


def test_hardware_budget_runs_land_on_their_own_preset_by_replay_and_meet_the_proxy_front(tmp_path):
    """Issue 15's bundle: DFS with budgets in Bit Fusion energy (3 budgets, one with the native w != a options) and
    Stripes latency (3 budgets), each within 2 points of its budget as replay measures it on its own preset, and
    each compared with the proxy-trained front in bases.csv."""
    from analysis.pipeline import replay

    for path in FASHION.glob("dfs_r38_b*.parquet"):
        (tmp_path / path.name).symlink_to(path)
    result = replay(tmp_path, presets=["bitfusion_eyeriss", "stripes"], out=None, progress=False, per_input="none")
    hardware = result.per_run[result.per_run["cost_basis"] != "proxy"].drop_duplicates("run")
    assert (hardware["cost_basis"] == "bitfusion_eyeriss energy").sum() >= 3
    assert (hardware["cost_basis"] == "stripes latency").sum() >= 3
    assert (hardware["budget_pct"] - hardware["budget"]).abs().max() <= 2.0
    native = hardware[hardware["frac_w4a8"] > 0]
    assert len(native) == 1 and native.iloc[0]["frac_w4a8"] + native.iloc[0]["frac_w8a4"] > 0.5  # w != a in use
    own = result.bases[result.bases["own_basis"] & (result.bases["reference_basis"] == "proxy")]
    assert set(own["run"]) == set(hardware["run"])
    assert own["reference_accuracy_at_cost"].notna().all()  # every one inside the proxy front's span


def test_the_seed_table_in_the_example_readme_is_the_bundles():
    """examples/README.md's table of low-bit DFS seeds (accuracy at realised computation) is the traces'."""
    from dfs_sim.traces import open_trace

    text = (ROOT / "examples" / "README.md").read_text()
    rows = re.findall(r"^\| ([\d.]+)% \| (.+) \|$", text, flags=re.MULTILINE)
    assert len(rows) >= 3
    for budget, cells in rows:
        for seed, cell in enumerate(cells.split(" | ")):
            meta = open_trace(FASHION / f"dfs_r38_b{budget}-lowbit{f'-s{seed}' if seed else ''}.parquet").meta
            assert cell == f"{meta['accuracy'] * 100:.2f}% at {meta['computation_pct']:.1f}%", (budget, seed)
