import numpy as np
import pandas as pd
import pytest

from analysis.bases import basis_comparison


def _frame():
    rows = [
        # proxy-trained: a front at energies 10, 20, 40 with accuracies .6, .8, .9, intervals ±.02
        ("p_low", "proxy", 10.0, 0.60),
        ("p_mid", "proxy", 20.0, 0.80),
        ("p_high", "proxy", 40.0, 0.90),
        # trained on the toy preset's energy: one inside the front, one far above it, one cheaper than all
        ("h_mid", "toy energy", 15.0, 0.71),
        ("h_better", "toy energy", 30.0, 0.95),
        ("h_cheap", "toy energy", 5.0, 0.55),
    ]
    frame = pd.DataFrame(rows, columns=["run", "cost_basis", "energy_pj_mean", "accuracy"])
    frame["method"] = "dfs"
    frame["budget"] = 10.0
    frame["accuracy_ci_low"] = frame["accuracy"] - 0.02
    frame["accuracy_ci_high"] = frame["accuracy"] + 0.02
    frame["latency_us_mean"] = frame["energy_pj_mean"] / 10
    static = frame.iloc[[0]].assign(run="static_q8", method="static", cost_basis="proxy", accuracy=0.99)
    both = pd.concat([frame, static], ignore_index=True)
    return pd.concat([both.assign(preset="toy"), both.assign(preset="other")], ignore_index=True)


def _row(table, run, reference="proxy", preset="toy", axis="energy_pj_mean"):
    query = "run == @run and reference_basis == @reference and preset == @preset and axis == @axis"
    selected = table.query(query)
    assert len(selected) == 1
    return selected.iloc[0]


def test_interpolation_and_intervals_by_hand():
    table = basis_comparison(_frame())
    row = _row(table, "h_mid")
    # halfway between (10, .60 ± .02) and (20, .80 ± .02)
    assert row["reference_accuracy_at_cost"] == pytest.approx(0.70)
    assert (row["reference_ci_low"], row["reference_ci_high"]) == pytest.approx((0.68, 0.72))
    assert row["accuracy_gain"] == pytest.approx(0.01)
    assert row["verdict"] == "within intervals"
    # the proxy front reaches .71 at 15.5: a cost ratio of 15.5 / 15
    assert row["reference_cost_at_accuracy"] == pytest.approx(15.5)
    assert row["cost_ratio"] == pytest.approx(15.5 / 15)
    assert row["dominated_by"] == ""


def test_verdicts_statuses_and_dominance():
    table = basis_comparison(_frame())
    better = _row(table, "h_better")
    assert better["reference_accuracy_at_cost"] == pytest.approx(0.85)
    assert better["verdict"] == "more accurate"
    assert better["status_at_accuracy"] == "more accurate than every reference run"
    assert np.isnan(better["cost_ratio"])
    cheap = _row(table, "h_cheap")
    assert cheap["status_at_cost"] == "cheaper than every reference run"
    assert cheap["verdict"] == ""
    # the reverse direction: a proxy run against the hardware-trained front
    proxy_mid = _row(table, "p_mid", reference="toy energy")
    assert proxy_mid["reference_accuracy_at_cost"] == pytest.approx(0.71 + (0.95 - 0.71) * 5 / 15)
    assert proxy_mid["verdict"] == "within intervals"
    assert _row(table, "p_high", reference="toy energy")["status_at_cost"] == "costlier than every reference run"
    assert _row(table, "p_low", reference="toy energy")["dominated_by"] == ""
    assert _row(table, "h_mid", reference="proxy", axis="latency_us_mean")["dominated_by"] == ""


def test_dominated_by_names_a_reference_run():
    frame = _frame()
    frame.loc[frame["run"] == "h_cheap", ["energy_pj_mean", "accuracy"]] = (12.0, 0.58)
    row = _row(basis_comparison(frame), "h_cheap")
    assert row["dominated_by"] == "p_low"
    assert row["reference_accuracy_at_cost"] == pytest.approx(0.64)
    assert row["verdict"] == "less accurate"


def test_own_basis_marks_the_training_preset_and_metric_and_baselines_are_left_out():
    table = basis_comparison(_frame())
    own = table[table["own_basis"]]
    assert set(own["preset"]) == {"toy"} and set(own["axis"]) == {"energy_pj_mean"}
    assert set(own["cost_basis"]) == {"toy energy"}
    assert "static_q8" not in set(table["run"])
    # 6 runs × 1 other basis × 2 presets × 2 axes
    assert len(table) == 24


def test_one_basis_gives_an_empty_frame_with_its_columns():
    frame = _frame()
    table = basis_comparison(frame[frame["cost_basis"] == "proxy"])
    assert table.empty and "verdict" in table.columns
