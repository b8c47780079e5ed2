import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from analysis.pareto import pareto_front


def _brute_force(df, objectives, by):
    """O(n²) reference: a row is on the front unless another row of its group dominates it."""
    result = pd.Series(False, index=df.index)
    groups = df.groupby(by).indices if by else {None: np.arange(len(df))}
    table = df[list(objectives)].to_numpy(dtype=float)
    senses = list(objectives.values())
    for positions in groups.values():
        for i in positions:
            if np.isnan(table[i]).any():
                continue
            dominated = False
            for j in positions:
                if j == i or np.isnan(table[j]).any():
                    continue
                pairs = list(zip(table[j], table[i], senses, strict=True))
                no_worse = all(a <= b if s == "min" else a >= b for a, b, s in pairs)
                better = any(a < b if s == "min" else a > b for a, b, s in pairs)
                dominated |= no_worse and better
            result.iloc[i] = not dominated
    return result


values = st.one_of(st.integers(0, 5).map(float), st.floats(0, 10, allow_nan=False), st.just(float("nan")))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_matches_brute_force(data):
    n = data.draw(st.integers(0, 25))
    three = data.draw(st.booleans())
    frame = pd.DataFrame(
        {
            "energy": data.draw(st.lists(values, min_size=n, max_size=n)),
            "accuracy": data.draw(st.lists(values, min_size=n, max_size=n)),
            "latency": data.draw(st.lists(values, min_size=n, max_size=n)),
            "preset": data.draw(st.lists(st.sampled_from("ab"), min_size=n, max_size=n)),
            "method": data.draw(st.lists(st.sampled_from(["dfs", "skipnet"]), min_size=n, max_size=n)),
        },
        index=np.random.default_rng(n).permutation(n) * 2 + 1,
    )
    objectives = {"energy": "min", "accuracy": "max"}
    if three:
        objectives["latency"] = "min"
    by = data.draw(st.sampled_from([None, "preset", ["preset", "method"]]))
    mask = pareto_front(frame, objectives, by=by)
    assert mask.index.equals(frame.index) and mask.dtype == bool
    pd.testing.assert_series_equal(mask, _brute_force(frame, objectives, by), check_names=False)


def test_a_dominating_run_is_on_the_front_and_the_other_is_not():
    frame = pd.DataFrame({"energy_pj_mean": [10.0, 12.0, 5.0], "accuracy": [0.9, 0.8, 0.5]}, index=["a", "b", "c"])
    mask = pareto_front(frame)
    assert mask.to_dict() == {"a": True, "b": False, "c": True}


def test_bad_objectives():
    frame = pd.DataFrame({"x": [1.0]})
    with pytest.raises(KeyError, match="not in the frame"):
        pareto_front(frame, {"y": "min"})
    with pytest.raises(ValueError, match="'min' or 'max'"):
        pareto_front(frame, {"x": "smallest"})
