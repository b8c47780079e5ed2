"""Paired statistics on the same inputs (analysis.paired): McNemar, Holm, the bootstrap, seeds, the oracle."""

import numpy as np
import pandas as pd
import pytest

from analysis.paired import (
    PerInputCosts,
    bootstrap_mean_interval,
    bootstrap_mean_intervals,
    headroom_frame,
    holm,
    mcnemar_exact,
    oracle_front,
    paired_columns,
    seed_group,
    seed_summary,
)


def _pairs(only_first: int, only_second: int, both: int = 5) -> tuple[np.ndarray, np.ndarray]:
    first = np.r_[np.ones(only_first), np.zeros(only_second), np.ones(both)].astype(bool)
    second = np.r_[np.zeros(only_first), np.ones(only_second), np.ones(both)].astype(bool)
    return first, second


def test_mcnemar_exact_is_the_two_sided_binomial_of_the_discordant_inputs():
    # 10 inputs only the first run gets right, 2 only the second: 2 · P(X <= 2 | 12, 1/2) = 2 · 79 / 4096
    assert mcnemar_exact(*_pairs(10, 2)) == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert mcnemar_exact(*_pairs(3, 3)) == pytest.approx(1.0)
    assert mcnemar_exact(*_pairs(0, 0)) == 1.0  # nothing discordant: no evidence either way
    assert mcnemar_exact(*_pairs(7, 0)) == pytest.approx(2 / 2**7)


def test_holm_steps_down_and_keeps_nan_out_of_the_family():
    adjusted = holm([0.01, 0.04, np.nan, 0.03])
    # sorted 0.01, 0.03, 0.04 with m = 3: 0.03, max(0.03, 0.06), max(0.06, 0.04) -> 0.03, 0.06, 0.06
    assert adjusted[0] == pytest.approx(0.03) and adjusted[3] == pytest.approx(0.06)
    assert adjusted[1] == pytest.approx(0.06) and np.isnan(adjusted[2])
    assert holm([0.9, 0.8]).max() == 1.0


def test_bootstrap_interval_matches_the_normal_one_and_is_seeded():
    values = np.random.default_rng(3).normal(5.0, 2.0, 4000)
    low, high = bootstrap_mean_interval(values)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert low == pytest.approx(values.mean() - half, abs=0.15 * half)
    assert high == pytest.approx(values.mean() + half, abs=0.15 * half)
    assert bootstrap_mean_interval(values) == (low, high)
    assert bootstrap_mean_interval(np.full(10, 3.0)) == (3.0, 3.0)  # a static pair: no spread at all
    lows, highs = bootstrap_mean_intervals(np.stack([values, np.full(4000, 1.0)], axis=1))
    assert (lows[0], highs[0]) == pytest.approx((low, high), rel=1e-12) and lows[1] == highs[1] == 1.0


def test_seed_groups_and_their_summary():
    assert seed_group("dfs_r38_b2.5-lowbit-s2") == "dfs_r38_b2.5-lowbit"
    assert seed_group("qat_r38_q4") == "qat_r38_q4" and seed_group("dfs-s1x") == "dfs-s1x"
    per_run = pd.DataFrame(
        {
            "run": ["a", "a-s1", "a-s2", "b"],
            "preset": "p",
            "method": "dfs",
            "accuracy": [0.90, 0.92, 0.94, 0.5],
            "energy_pj_mean": [1.0, 2.0, 3.0, 4.0],
            "latency_us_mean": [1.0, 1.0, 1.0, 1.0],
            "budget_pct": [1.5, 1.6, 100.0, 3.0],  # one seed never left full execution
        }
    )
    summary = seed_summary(per_run).set_index("group")
    assert summary.loc["a", "budget_pct_min"] == 1.5 and summary.loc["a", "budget_pct_max"] == 100.0
    assert summary.loc["a", "seeds"] == 3 and summary.loc["a", "accuracy_mean"] == pytest.approx(0.92)
    assert summary.loc["a", "accuracy_std"] == pytest.approx(0.02)
    half = 4.302652729911275 * 0.02 / np.sqrt(3)  # t(0.975, 2)
    assert summary.loc["a", "accuracy_low"] == pytest.approx(0.92 - half)
    assert summary.loc["b", "seeds"] == 1 and np.isnan(summary.loc["b", "accuracy_std"])


def test_the_oracle_takes_the_cheapest_right_run_per_input_and_bounds_the_adaptive_runs():
    # three inputs; q4 (cost 1) gets input 0 right, q8 (cost 2) inputs 0 and 1; nothing gets input 2
    correct = {"q4": np.array([1, 0, 0], bool), "q8": np.array([1, 1, 0], bool), "dfs": np.array([1, 1, 0], bool)}
    costs = {
        ("q4", "p"): pd.DataFrame({"energy_pj": [1.0] * 3, "latency_us": [1.0] * 3}),
        ("q8", "p"): pd.DataFrame({"energy_pj": [2.0] * 3, "latency_us": [2.0] * 3}),
    }
    data = PerInputCosts(correct, {k: np.ones(3) for k in correct}, costs)
    per_run = pd.DataFrame(
        {
            "run": ["q4", "q8", "dfs"],
            "method": ["static", "static", "dfs"],
            "preset": "p",
            "accuracy": [1 / 3, 2 / 3, 0.6],
            "energy_pj_mean": [1.0, 2.0, 1.5],
            "latency_us_mean": [1.0, 2.0, 1.5],
        }
    )
    oracle = oracle_front(per_run, data)
    energy = oracle[oracle["axis"] == "energy_pj_mean"].reset_index(drop=True)
    assert energy["accuracy"].tolist() == pytest.approx([1 / 3, 2 / 3])
    # with both runs: input 0 at q4 (1), input 1 at q8 (2), input 2 wrong at the cheapest (1)
    assert energy["cost"].tolist() == pytest.approx([1.0, 4 / 3])
    room = headroom_frame(per_run, oracle).set_index("axis").loc["energy_pj_mean"]
    # at cost 1.5: static front 1/3 + 0.5 · 1/3 = 0.5; the oracle front (1, 1/3) .. (4/3, 2/3) is past its top: 2/3
    assert room["static"] == pytest.approx(0.5) and room["oracle"] == pytest.approx(2 / 3)
    assert room["captured"] == pytest.approx((0.6 - 0.5) / (2 / 3 - 0.5))


def _matched_row(run: str, cost: float, accuracy: float) -> dict:
    return {
        "run": run,
        "preset": "p",
        "baseline": "static",
        "axis": "energy_pj_mean",
        "dfs_cost": cost,
        "dfs_accuracy": accuracy,
    }


def test_paired_verdicts_pair_at_matched_cost_and_at_matched_accuracy():
    n = 2000
    rng = np.random.default_rng(0)
    right = {
        name: rng.random(n) < accuracy
        for name, accuracy in {"q4": 0.80, "q8": 0.95, "cheap_good": 0.95, "dear_bad": 0.80, "same": 0.80}.items()
    }
    right["same"], right["cheap_good"] = right["q4"].copy(), right["q8"].copy()
    flat = {("q4", "p"): 1.0, ("q8", "p"): 2.0, ("cheap_good", "p"): 1.5, ("dear_bad", "p"): 2.5, ("same", "p"): 1.0}
    costs = {
        key: pd.DataFrame({"energy_pj": np.full(n, value), "latency_us": np.full(n, value)})
        for key, value in flat.items()
    }
    data = PerInputCosts(right, {k: np.ones(n) for k in right}, costs)
    per_run = pd.DataFrame(
        {
            "run": ["q4", "q8", "cheap_good", "dear_bad", "same"],
            "method": ["static", "static", "dfs", "dfs", "dfs"],
            "preset": "p",
            "accuracy": [right[k].mean() for k in ("q4", "q8", "cheap_good", "dear_bad", "same")],
            "energy_pj_mean": [1.0, 2.0, 1.5, 2.5, 1.0],
            "latency_us_mean": [1.0, 2.0, 1.5, 2.5, 1.0],
        }
    )
    matched = pd.DataFrame(
        [_matched_row(r.run, r.energy_pj_mean, r.accuracy) for r in per_run[per_run["method"] == "dfs"].itertuples()]
    )
    out = paired_columns(matched, per_run, data).set_index("run")
    # as accurate as q8 at less cost: q8 is the cheapest static run at least as accurate, and dearer
    assert out.loc["cheap_good", "at_accuracy_run"] == "q8" and out.loc["cheap_good", "paired_verdict"] == "better"
    # costlier than q8 and less accurate: q8 is the best static run at no more cost, significantly more accurate
    assert out.loc["dear_bad", "at_cost_run"] == "q8" and out.loc["dear_bad", "paired_verdict"] == "worse"
    # the same inputs right at the same cost as q4: nothing to tell them apart
    assert out.loc["same", "at_cost_p"] == 1.0 and out.loc["same", "paired_verdict"] == "no difference"
    assert out["correction"].iloc[0].startswith("Holm over the")
