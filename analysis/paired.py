"""Statistics on the same inputs: paired tests between runs, seed groups, the oracle's headroom, cost by difficulty.

Every run of a bundle is evaluated on the same inputs, so two runs can be compared input by input:

- **Accuracy**: the exact McNemar test (McNemar 1947; the exact binomial form of Edwards 1948): of the inputs exactly
  one of the two runs classifies correctly, how many go each way; two-sided p-value of a fair coin. ``holm`` adjusts a
  family of p-values (Holm 1979), which controls the family-wise error rate without assuming independence.
- **Cost**: the mean per-input difference, with a percentile bootstrap interval (Efron 1979) over inputs, seeded.
- **Seeds**: runs whose names differ only by a trailing ``-sN`` are one configuration trained with other seeds
  (``seed_group``); ``seed_summary`` gives their mean, spread and a t interval of the mean.
- **Oracle**: per input, the cheapest static run (by the preset's cost) that classifies it correctly. It knows the
  labels, so it is an upper bound on what any input-adaptive policy choosing among those widths could reach, not a
  policy. Restricting it to the static runs that cost at most C traces its front; ``headroom`` says what fraction of
  the gap between the best static front and the oracle front an adaptive run captures at its own cost.
- **Difficulty**: each run's mean cost on the inputs it gets right and on those it gets wrong, and the rank
  correlation of cost with the softmax confidence.

Everything here reads whole runs into memory (correctness, and per-input costs replayed from the codes), so it is
computed only for runs of at most ``PAIRED_MAX_INPUTS`` inputs; larger replays leave these frames empty.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis.replay_kernel import replay_costs

__all__ = [
    "BOOTSTRAP_SAMPLES",
    "PAIRED_MAX_INPUTS",
    "PerInputCosts",
    "bootstrap_mean_interval",
    "bootstrap_mean_intervals",
    "difficulty_frame",
    "headroom_frame",
    "holm",
    "mcnemar_exact",
    "oracle_front",
    "per_input_costs",
    "seed_group",
    "seed_summary",
]

PAIRED_MAX_INPUTS = 1_000_000
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 20200105  # any fixed seed: the intervals are reproducible
BOOTSTRAP_MAX_INPUTS = 50_000  # above this, the normal interval of the mean (bootstrap_mean_intervals)
ALPHA = 0.05
AXES = {"energy_pj_mean": "energy_pj", "latency_us_mean": "latency_us"}
_SEED_SUFFIX = re.compile(r"-s\d+$")


def seed_group(name: str) -> str:
    """The configuration a run belongs to: its name without a trailing ``-sN`` (seed N)."""
    return _SEED_SUFFIX.sub("", name)


def mcnemar_exact(first_correct: np.ndarray, second_correct: np.ndarray) -> float:
    """Two-sided exact McNemar p-value for two runs' per-input correctness on the same inputs (1.0 when no input
    is discordant)."""
    first, second = np.asarray(first_correct, dtype=bool), np.asarray(second_correct, dtype=bool)
    only_first = int(np.sum(first & ~second))
    only_second = int(np.sum(~first & second))
    discordant = only_first + only_second
    if discordant == 0:
        return 1.0
    return float(stats.binomtest(only_first, discordant, 0.5).pvalue)


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of ``p_values`` (NaN stays NaN and is not counted in the family)."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def bootstrap_mean_interval(
    differences: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """The 95% percentile-bootstrap interval of the mean of ``differences`` (resampling inputs with replacement)."""
    low, high = bootstrap_mean_intervals(np.asarray(differences, dtype=np.float64)[:, None], samples, seed)
    return float(low[0]), float(high[0])


def bootstrap_mean_intervals(
    differences: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """``bootstrap_mean_interval`` of every column of ``differences`` (inputs × columns), all columns resampled with
    the same draws: the resamples are input counts (samples × inputs), so every interval is one matrix product.
    Above ``BOOTSTRAP_MAX_INPUTS`` inputs the count matrix would not fit, and the normal interval of the mean (which
    the bootstrap approaches there) is returned instead."""
    values = np.asarray(differences, dtype=np.float64)
    n, columns = values.shape
    if n == 0 or columns == 0:
        return np.full(columns, np.nan), np.full(columns, np.nan)
    if n > BOOTSTRAP_MAX_INPUTS:
        half = 1.959963984540054 * values.std(axis=0, ddof=1) / np.sqrt(n)
        return values.mean(axis=0) - half, values.mean(axis=0) + half
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(samples)]).astype(np.float64)
    means = counts @ values / n  # samples × columns
    low, high = np.percentile(means, [2.5, 97.5], axis=0)
    constant = np.all(values == values[:1], axis=0)  # no spread to resample: the interval is the value
    low[constant], high[constant] = values[0, constant], values[0, constant]
    return low, high


@dataclass(frozen=True)
class PerInputCosts:
    """What the paired statistics need of every run, on every preset: correctness, confidence and per-input costs
    (``costs[run, preset]``: a frame with columns ``energy_pj`` and ``latency_us``), all in the same input order."""

    correct: dict[str, np.ndarray]
    confidence: dict[str, np.ndarray]
    costs: dict[tuple[str, str], pd.DataFrame]

    @property
    def available(self) -> bool:
        return bool(self.correct)


def per_input_costs(runs: Sequence, presets: Sequence, tables: dict) -> PerInputCosts:
    """Correctness and per-input energy and latency of every run on every preset, replayed from the codes with the
    cost tables of the replay (``tables[run name, preset name]``), inputs ordered by ``input_id``. Empty when a run
    has more than ``PAIRED_MAX_INPUTS`` inputs, or when the runs do not share their inputs."""
    if not runs or any(run.num_inputs > PAIRED_MAX_INPUTS for run in runs):
        return PerInputCosts({}, {}, {})
    loaded = [_whole(run) for run in runs]
    ids = loaded[0][0]
    if any(len(other[0]) != len(ids) or not np.array_equal(other[0], ids) for other in loaded[1:]):
        return PerInputCosts({}, {}, {})
    correct, confidence, costs = {}, {}, {}
    for run, (_, codes, right, sure) in zip(runs, loaded, strict=True):
        correct[run.name], confidence[run.name] = right, sure
        for preset in presets:
            table = tables[run.name, preset.name]
            metrics = replay_costs(codes, table)
            costs[run.name, preset.name] = pd.DataFrame(
                {
                    "energy_pj": metrics[:, 1] + metrics[:, 2] + metrics[:, 3],
                    "latency_us": metrics[:, 0] * float(preset.cycles_to_us(1.0)),
                }
            )
    return PerInputCosts(correct, confidence, costs)


def _whole(run) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(input ids, codes, correct, confidence)`` of a run in input-id order."""
    parts = [run] if not hasattr(run, "chunks") else list(run.chunks(verify=False))
    ids = np.concatenate([part.input_id for part in parts])
    codes = np.concatenate([part.codes for part in parts]) if parts[0].codes.size else np.zeros((len(ids), 0), "u1")
    correct = np.concatenate([part.label == part.pred for part in parts])
    confidence = np.concatenate([part.confidence for part in parts])
    order = np.argsort(ids, kind="stable")
    return ids[order], np.ascontiguousarray(codes[order]), correct[order], confidence[order]


PAIRINGS = ("at_cost", "at_accuracy")


def paired_columns(
    matched: pd.DataFrame,
    per_run: pd.DataFrame,
    data: PerInputCosts,
    *,
    reference: str = "baseline",
    by: str = "method",
    cost: str = "dfs_cost",
    accuracy: str = "dfs_accuracy",
) -> pd.DataFrame:
    """``matched`` with two paired comparisons per row, each against one run of the baseline's Pareto front on the
    row's preset and axis (the baseline: the rows of ``per_run`` whose ``by`` column equals the row's ``reference``;
    ``bases.csv`` pairs with the runs trained on another cost basis, ``by="cost_basis"``,
    ``reference="reference_basis"``; ``cost`` and ``accuracy`` name the row's own columns):

    - ``at_cost``: the most accurate baseline run that costs no more than the DFS run (mean cost);
    - ``at_accuracy``: the cheapest baseline run that is at least as accurate as the DFS run.

    For each pairing ``P``: ``P_run``, ``P_accuracy``, ``P_p`` (exact McNemar, two-sided), ``P_p_holm`` (Holm over
    every McNemar test in the file), ``P_cost_difference`` (mean of DFS − baseline per input) and its 95% bootstrap
    interval ``P_cost_low`` / ``P_cost_high``. ``paired_verdict``: "worse" when a baseline run at no more cost is
    significantly more accurate or one at least as accurate is significantly cheaper; "better" when the DFS run is
    significantly more accurate than every baseline run at no more cost, or significantly cheaper than every one at
    least as accurate; "mixed" when both hold; "no difference" otherwise. ``correction`` states the family.
    """
    frame = matched.copy()
    fields = ("run", "accuracy", "p", "cost_difference", "cost_low", "cost_high")
    for pairing in PAIRINGS:
        for name in fields:
            frame[f"{pairing}_{name}"] = "" if name == "run" else np.nan
    if data.available and not frame.empty:
        fronts: dict[tuple[str, str, str], pd.DataFrame] = {}
        found, differences = [], []
        for index, row in frame.iterrows():
            key = (row["preset"], row[reference], row["axis"])
            if key not in fronts:
                candidates = per_run[(per_run["preset"] == row["preset"]) & (per_run[by] == row[reference])]
                fronts[key] = _front(candidates, row["axis"])
            front = fronts[key]
            if front.empty or (row["run"], row["preset"]) not in data.costs:
                continue
            column = AXES[row["axis"]]
            cheaper = front[front[row["axis"]] <= row[cost]]
            as_accurate = front[front["accuracy"] >= row[accuracy]]
            chosen = {
                "at_cost": cheaper.iloc[-1] if not cheaper.empty else None,  # the front rises: the last is the best
                "at_accuracy": as_accurate.iloc[0] if not as_accurate.empty else None,
            }
            for pairing, baseline in chosen.items():
                if baseline is None:
                    continue
                name = str(baseline["run"])
                differences.append(
                    data.costs[row["run"], row["preset"]][column].to_numpy()
                    - data.costs[name, row["preset"]][column].to_numpy()
                )
                p_value = mcnemar_exact(data.correct[row["run"]], data.correct[name])
                found.append((index, pairing, name, float(baseline["accuracy"]), p_value))
        if found:
            lows, highs = bootstrap_mean_intervals(np.stack(differences, axis=1))
            for (index, pairing, name, paired_accuracy, p_value), difference, low, high in zip(
                found, differences, lows, highs, strict=True
            ):
                columns = [f"{pairing}_{field}" for field in fields]
                frame.loc[index, columns] = [name, paired_accuracy, p_value, float(difference.mean()), low, high]
    p_values = np.concatenate([frame[f"{pairing}_p"].to_numpy(dtype=float) for pairing in PAIRINGS])
    adjusted = holm(p_values)
    for position, pairing in enumerate(PAIRINGS):
        frame[f"{pairing}_p_holm"] = adjusted[position * len(frame) : (position + 1) * len(frame)]
    tested = int(np.isfinite(p_values).sum())
    frame["correction"] = f"Holm over the {tested} McNemar tests of this file" if tested else ""
    frame["paired_verdict"] = [_verdict(row, accuracy) for _, row in frame.iterrows()]
    return frame


def _front(runs: pd.DataFrame, axis: str) -> pd.DataFrame:
    from analysis.matched import front_points

    return front_points(runs, axis, extra=["run"]) if not runs.empty else runs


def _verdict(row: pd.Series, accuracy: str = "dfs_accuracy") -> str:
    """The verdict of one row from its two pairings (``paired_columns``)."""
    at_cost, at_accuracy = row["at_cost_run"], row["at_accuracy_run"]
    if not at_cost and not at_accuracy:
        return ""
    cost_significant = at_cost and row["at_cost_p_holm"] < ALPHA
    worse = (cost_significant and row["at_cost_accuracy"] > row[accuracy]) or (
        at_accuracy and row["at_accuracy_cost_low"] > 0
    )
    better = (cost_significant and row[accuracy] > row["at_cost_accuracy"]) or (
        at_accuracy and row["at_accuracy_cost_high"] < 0
    )
    if worse and better:
        return "mixed"
    if worse:
        return "worse"
    if better:
        return "better"
    return "no difference"


def seed_summary(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per seed group (``seed_group``) and preset: how many seeds, and the mean, standard deviation, minimum and
    maximum of accuracy, mean energy, mean latency and (where ``per_run`` has it) the realised computation on the run's
    own basis (``budget_pct``), with a 95% t interval of the mean accuracy (NaN for one seed)."""
    if per_run.empty:
        return pd.DataFrame()
    frame = per_run.assign(group=per_run["run"].map(seed_group))
    rows = []
    for (group, preset), runs in frame.groupby(["group", "preset"], sort=False):
        n = len(runs)
        row = {"group": group, "preset": preset, "method": runs["method"].iloc[0], "seeds": n}
        row["runs"] = " ".join(sorted(runs["run"]))
        for column in (c for c in ("accuracy", "energy_pj_mean", "latency_us_mean", "budget_pct") if c in runs):
            values = runs[column].to_numpy(dtype=float)
            row[f"{column}_mean"] = float(values.mean())
            row[f"{column}_std"] = float(values.std(ddof=1)) if n > 1 else np.nan
            row[f"{column}_min"], row[f"{column}_max"] = float(values.min()), float(values.max())
        if n > 1:
            half = stats.t.ppf(0.975, n - 1) * row["accuracy_std"] / np.sqrt(n)
            row["accuracy_low"], row["accuracy_high"] = row["accuracy_mean"] - half, row["accuracy_mean"] + half
        else:
            row["accuracy_low"] = row["accuracy_high"] = np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def oracle_front(per_run: pd.DataFrame, data: PerInputCosts) -> pd.DataFrame:
    """Per preset and axis, the oracle over the static runs that cost at most C, for C each static run's cost: rows
    ``preset, axis, max_cost, cost, accuracy, runs``. It knows the labels: an upper bound, not a policy."""
    rows = []
    if not data.available:
        return pd.DataFrame(columns=["preset", "axis", "max_cost", "cost", "accuracy", "runs"])
    static = per_run[per_run["method"] == "static"]
    for (preset, axis), runs in ((key, static[static["preset"] == key[0]]) for key in _preset_axes(static)):
        runs = runs[runs["run"].isin(data.correct)].sort_values(axis)
        runs = runs[[(name, preset) in data.costs for name in runs["run"]]]  # dynamic presets are not paired
        if runs.empty:
            continue
        names = runs["run"].tolist()
        column = AXES[axis]
        costs = np.stack([data.costs[name, preset][column].to_numpy() for name in names])  # runs × inputs
        correct = np.stack([data.correct[name] for name in names])
        for count in range(1, len(names) + 1):
            allowed_cost, allowed_correct = costs[:count], correct[:count]
            priced = np.where(allowed_correct, allowed_cost, np.inf)
            cheapest_right = priced.min(axis=0)
            fallback = allowed_cost.min(axis=0)  # no allowed run is right: the cheapest, wrong anyway
            chosen = np.where(np.isfinite(cheapest_right), cheapest_right, fallback)
            rows.append(
                {
                    "preset": preset,
                    "axis": axis,
                    "max_cost": float(allowed_cost.max()),
                    "cost": float(chosen.mean()),
                    "accuracy": float(np.isfinite(cheapest_right).mean()),
                    "runs": " ".join(names[:count]),
                }
            )
    return pd.DataFrame(rows)


def _preset_axes(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return [(preset, axis) for preset in frame["preset"].unique() for axis in AXES if axis in frame.columns]


def _accuracy_at(front: pd.DataFrame, axis: str, cost: float) -> float:
    """A Pareto front's accuracy at ``cost``: interpolated inside its span, its best accuracy past its top (spending
    more can always buy the best point), NaN below its cheapest point."""
    if front.empty or cost < front[axis].iloc[0]:
        return float("nan")
    if cost >= front[axis].iloc[-1]:
        return float(front["accuracy"].iloc[-1])
    return float(np.interp(cost, front[axis].to_numpy(dtype=float), front["accuracy"].to_numpy(dtype=float)))


def headroom_frame(per_run: pd.DataFrame, oracle: pd.DataFrame, adaptive: Sequence[str] = ("dfs",)) -> pd.DataFrame:
    """Per adaptive run, preset and axis: the best static front's accuracy and the oracle front's at the run's cost
    (``_accuracy_at``), and ``captured`` = (run − static) / (oracle − static), the fraction of the headroom the run
    reaches (negative: below the static front)."""
    from analysis.matched import front_points

    columns = ["run", "method", "preset", "axis", "cost", "accuracy", "static", "oracle", "captured"]
    rows = []
    if oracle.empty:
        return pd.DataFrame(columns=columns)
    for key, points in oracle.groupby(["preset", "axis"], sort=False):
        preset, axis = str(key[0]), str(key[1])
        static_front = front_points(per_run[(per_run["preset"] == preset) & (per_run["method"] == "static")], axis)
        oracle_points = front_points(points.rename(columns={"cost": axis}), axis)
        for _, run in per_run[(per_run["preset"] == preset) & per_run["method"].isin(adaptive)].iterrows():
            cost, accuracy = float(run[axis]), float(run["accuracy"])
            static_accuracy = _accuracy_at(static_front, axis, cost)
            oracle_accuracy = _accuracy_at(oracle_points, axis, cost)
            gap = oracle_accuracy - static_accuracy
            captured = (accuracy - static_accuracy) / gap if gap > 0 else np.nan
            rows.append(
                dict(
                    zip(
                        columns,
                        [
                            run["run"],
                            run["method"],
                            preset,
                            axis,
                            cost,
                            accuracy,
                            static_accuracy,
                            oracle_accuracy,
                            captured,
                        ],
                        strict=True,
                    )
                )
            )
    return pd.DataFrame(rows, columns=columns)


def difficulty_frame(per_run: pd.DataFrame, data: PerInputCosts) -> pd.DataFrame:
    """Per run, preset and axis: mean cost on the inputs the run gets right and on those it gets wrong, their ratio,
    the coefficient of variation of the per-input cost, and Spearman's rank correlation of cost with confidence."""
    columns = ["run", "method", "preset", "axis", "cost_correct", "cost_wrong", "cost_cv", "spearman_cost_confidence"]
    rows = []
    for _, run in per_run.iterrows():
        name, preset = run["run"], run["preset"]
        if (name, preset) not in data.costs:
            continue
        right, sure = data.correct[name], data.confidence[name]
        for axis, column in AXES.items():
            cost = data.costs[name, preset][column].to_numpy()
            varies = np.ptp(cost) > 0 and np.ptp(sure) > 0
            rows.append(
                {
                    "run": name,
                    "method": run["method"],
                    "preset": preset,
                    "axis": axis,
                    "cost_correct": float(cost[right].mean()) if right.any() else np.nan,
                    "cost_wrong": float(cost[~right].mean()) if (~right).any() else np.nan,
                    "cost_cv": float(cost.std() / cost.mean()) if cost.mean() > 0 else np.nan,
                    "spearman_cost_confidence": float(stats.spearmanr(cost, sure).statistic) if varies else np.nan,
                }
            )
    frame = pd.DataFrame(rows, columns=columns)
    frame["wrong_over_correct"] = frame["cost_wrong"] / frame["cost_correct"]
    return frame
