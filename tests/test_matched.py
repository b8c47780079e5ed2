import numpy as np
import pandas as pd
import pytest

from analysis.matched import front_points, matched_comparison


def _frame():
    rows = [
        # static: a front at energies 10, 20, 40 with accuracies .6, .8, .9, and one dominated run
        ("static_q8", "static", 10.0, 0.60),
        ("static_q12", "static", 20.0, 0.80),
        ("static_fp", "static", 40.0, 0.90),
        ("static_bad", "static", 30.0, 0.70),
        # skipnet: two runs
        ("skip_a", "skipnet", 15.0, 0.50),
        ("skip_b", "skipnet", 25.0, 0.85),
        # dfs runs: inside both fronts, below them, above them
        ("dfs_mid", "dfs", 15.0, 0.84),
        ("dfs_low", "dfs", 5.0, 0.30),
        ("dfs_high", "dfs", 50.0, 0.95),
    ]
    frame = pd.DataFrame(rows, columns=["run", "method", "energy_pj_mean", "accuracy"])
    frame["preset"] = "toy"
    frame["latency_us_mean"] = frame["energy_pj_mean"] / 10
    frame["budget"] = 50.0
    return frame


def test_front_points_drop_dominated_runs_and_sort():
    front = front_points(_frame().query("method == 'static'"), "energy_pj_mean")
    assert front["energy_pj_mean"].tolist() == [10.0, 20.0, 40.0]
    assert front["accuracy"].tolist() == [0.6, 0.8, 0.9]


def test_interpolation_by_hand():
    table = matched_comparison(_frame())
    row = table.query("run == 'dfs_mid' and baseline == 'static' and axis == 'energy_pj_mean'").iloc[0]
    assert row["baseline_accuracy_at_cost"] == pytest.approx(0.70)  # halfway between (10, .6) and (20, .8)
    assert row["accuracy_gain"] == pytest.approx(0.14)
    assert row["baseline_cost_at_accuracy"] == pytest.approx(20 + 20 * 0.4)  # accuracy .84 between .8 and .9
    assert row["cost_ratio"] == pytest.approx(28 / 15)
    skip = table.query("run == 'dfs_mid' and baseline == 'skipnet' and axis == 'energy_pj_mean'").iloc[0]
    assert skip["baseline_accuracy_at_cost"] == pytest.approx(0.50)
    assert skip["baseline_cost_at_accuracy"] == pytest.approx(15 + 10 * (0.34 / 0.35))
    latency = table.query("run == 'dfs_mid' and baseline == 'static' and axis == 'latency_us_mean'").iloc[0]
    assert latency["baseline_cost_at_accuracy"] == pytest.approx(2.8)


def test_outside_the_front_is_not_extrapolated_and_says_which_side():
    table = matched_comparison(_frame()).query("baseline == 'static' and axis == 'energy_pj_mean'")
    low = table.query("run == 'dfs_low'").iloc[0]
    high = table.query("run == 'dfs_high'").iloc[0]
    for row in (low, high):
        assert np.isnan(row["baseline_accuracy_at_cost"]) and np.isnan(row["baseline_cost_at_accuracy"])
    assert low["status_at_cost"] == "cheaper than every baseline run"
    assert low["status_at_accuracy"] == "less accurate than every baseline run"
    assert high["status_at_cost"] == "costlier than every baseline run"
    assert high["status_at_accuracy"] == "more accurate than every baseline run"


def test_dominated_by_names_a_cheaper_and_more_accurate_baseline_run():
    frame = pd.concat(
        [_frame(), pd.DataFrame([("dfs_poor", "dfs", 22.0, 0.75, "toy", 2.2, 50.0)], columns=_frame().columns)]
    )
    table = matched_comparison(frame).query("axis == 'energy_pj_mean'").set_index(["run", "baseline"])
    assert table.loc[("dfs_poor", "static"), "dominated_by"] == "static_q12"  # 20 pJ and 80% beat 22 pJ and 75%
    assert table.loc[("dfs_poor", "skipnet"), "dominated_by"] == ""  # skip_b is more accurate but costlier
    assert table.loc[("dfs_mid", "static"), "dominated_by"] == ""
    assert table.loc[("dfs_low", "static"), "dominated_by"] == ""


def test_missing_baseline_says_no_runs():
    frame = _frame().query("method != 'skipnet'")
    table = matched_comparison(frame).query("baseline == 'skipnet'")
    assert set(table["status_at_cost"]) == {"no runs"}
    assert len(table) == 3 * 2  # three DFS runs × two axes


def test_another_method_is_compared_with_static_and_dfs_in_its_own_frame_and_findings(tmp_path):
    from analysis import replay
    from analysis.findings import findings_markdown, frames_from_folder
    from tests.factories import make_run

    runs = [make_run("early_exit", n=300, seed=1, name="early_exit_t0.9")]
    runs += [make_run("static", n=300, seed=2, static_code=code, name=f"static_c{code}") for code in (1, 3, 6)]
    runs += [make_run("dfs", n=300, seed=3, name="dfs_b50")]
    result = replay(runs, presets=["stripes"], out=tmp_path / "out", plots=False, progress=False, per_input="none")
    others = result.others
    assert set(others["run"]) == {"early_exit_t0.9"} and set(others["method"]) == {"early_exit"}
    assert set(others["baseline"]) == {"static", "dfs"}
    assert set(result.matched["method"]) == {"dfs"}  # DFS's own file and its Holm family are unchanged
    text = findings_markdown(frames_from_folder(tmp_path / "out"))
    assert "**`early_exit` against the best static baseline** (1 `early_exit` runs" in text
    assert "**`early_exit` against DFS**" in text
