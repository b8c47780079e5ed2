"""Tidy frames: per input (one row per run × preset × input), per block, and the per-run frame's shape (its
quantile columns, the energy boxes, each run's family, quantizer and search basis, the fronts); the per-run rows are
aggregated as the inputs stream by (``analysis.streaming``), so that the per-run mean energy is the mean of the
per-input energies.

Units live in the column names (``_pj``, ``_us``, ``_bits``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from analysis.pareto import pareto_front
from analysis.summary import block_fractions, proxy_per_input
from cost_models.pricing import METRICS
from dfs_sim.traces import TraceRun

__all__ = [
    "COST_METRIC_INDEX",
    "COST_METRICS",
    "ENERGY_PARTS",
    "FRONT_AXES",
    "PER_RUN_QUANTILES",
    "QUANTILES",
    "fronts_frame",
    "per_input_frame",
    "per_block_frame",
    "per_run_and_boxes",
    "run_family",
    "run_labels",
    "run_quantizer",
    "run_search_basis",
    "wilson_interval",
]

ENERGY_PARTS = ("e_compute_pj", "e_sram_pj", "e_dram_pj")
# the cost-table metrics replayed per input (the unit-cycles are summed per run from the decision counts instead)
COST_METRICS = ("cycles", *ENERGY_PARTS, "dram_bits")
COST_METRIC_INDEX = [METRICS.index(name) for name in COST_METRICS]  # where each sits in a cost table
Z_95 = 1.959963984540054  # the standard normal quantile at 0.975, for a two-sided 95% interval
QUANTILES = (1, 25, 50, 75, 99)  # of energy and latency per run: p50 and p99 go to per_run; all five draw the boxes
PER_RUN_QUANTILES = (50, 99)
FRONT_AXES = {"energy": "energy_pj_mean", "latency": "latency_us_mean"}


def run_labels(run: TraceRun) -> dict:
    return {"run": run.name, "method": run.method, "budget": run.budget}


def per_input_frame(
    run: TraceRun, preset_name: str, costs: np.ndarray, us_per_cycle: float, proxy: np.ndarray | None = None
) -> pd.DataFrame:
    """One row per input of ``run`` on one preset, from the replayed ``costs`` (inputs × ``COST_METRICS``).

    ``proxy`` is ``proxy_per_input(run)``, which a caller framing one run on many presets computes once."""
    if costs.shape != (run.num_inputs, len(COST_METRICS)):
        raise ValueError(f"costs have shape {costs.shape}, expected ({run.num_inputs}, {len(COST_METRICS)})")
    if proxy is None:
        proxy = proxy_per_input(run)
    frame = pd.DataFrame(
        {
            "run": pd.Series(run.name, index=range(run.num_inputs), dtype="string"),
            "method": run.method,
            "budget": np.float64(np.nan if run.budget is None else run.budget),
            "preset": preset_name,
            "input_id": run.input_id,
            "label": run.label,
            "pred": run.pred,
            "correct": run.label == run.pred,
            "confidence": run.confidence,
            "cycles": costs[:, 0],
            "latency_us": costs[:, 0] * us_per_cycle,
            "energy_pj": costs[:, 1] + costs[:, 2] + costs[:, 3],
            "e_compute_pj": costs[:, 1],
            "e_sram_pj": costs[:, 2],
            "e_dram_pj": costs[:, 3],
            "dram_bits": costs[:, 4],
            "proxy_cost": proxy,
        }
    )
    for column in ("method", "preset"):
        frame[column] = frame[column].astype("string")
    return frame


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson, JASA 1927); 95% by default.

    Unlike the normal approximation it stays inside [0, 1] and behaves at 0 and n successes, which matters for
    accuracies near 100% on small test sets.
    """
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def per_block_frame(runs: Iterable, block_counts: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """One row per run × gated block × option: the fraction of inputs that took the option at that block.

    ``block_counts`` (run name → (blocks, options) inputs per option, as a streamed replay counts them) stands in for
    the runs' codes, which need then not be in memory."""
    frames = []
    for run in runs:
        fractions = block_counts[run.name] / run.num_inputs if block_counts is not None else block_fractions(run)
        blocks, codes = np.meshgrid(np.arange(run.num_blocks), np.arange(len(run.options)), indexing="ij")
        frames.append(
            pd.DataFrame(
                {
                    **run_labels(run),
                    "block": blocks.ravel(),
                    "option": codes.ravel(),
                    "option_name": [run.options[code].name for code in codes.ravel()],
                    "fraction": fractions.ravel(),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame["budget"] = frame["budget"].astype("float64")
    return frame


def per_run_and_boxes(rows: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per_run frame (p50 and p99 only) and the energy boxes (every quantile and the mean), from the streamed
    rows of every run × preset."""
    frame = pd.DataFrame(rows)
    fractions = [column for column in frame.columns if column.startswith("frac_")]
    frame[fractions] = frame[fractions].fillna(0.0)
    box_columns = [f"energy_pj_p{q}" for q in QUANTILES]
    boxes = frame[["run", "method", "preset", "energy_pj_mean", *box_columns]].copy()
    dropped = [f"{name}_p{q}" for name in ("energy_pj", "latency_us") for q in QUANTILES if q not in PER_RUN_QUANTILES]
    return frame.drop(columns=dropped), boxes


def fronts_frame(per_run: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``per_run`` on the (cost, accuracy) front of their preset and method, one block per cost axis."""
    frames = []
    for name, column in FRONT_AXES.items():
        mask = pareto_front(per_run, {column: "min", "accuracy": "max"}, by=["preset", "method"])
        on_front = per_run.loc[
            mask,
            ["preset", "method", "run", "budget", "accuracy", "energy_pj_mean", "latency_us_mean", "computation_pct"],
        ]
        frames.append(on_front.assign(front=name).sort_values(["preset", "method", column]))
    return pd.concat(frames, ignore_index=True)


def run_family(run) -> str:
    """What kind of run it is, finer than its method: static runs are post-training ("static"), quantization-aware
    ("static QAT") or per-layer mixed precision ("mixed precision"); other runs are their method."""
    if run.method != "static":
        return run.method
    if "mixed_precision" in run.meta or len(set(run.meta.get("static_options") or [None])) > 1:
        return "mixed precision"
    return "static QAT" if run.meta.get("static_training") == "qat" else "static"


def run_search_basis(run) -> str:
    """What a mixed-precision run's widths were searched on ("bitfusion_eyeriss energy"), "" for other runs."""
    searched = run.meta.get("mixed_precision")
    basis = searched.get("cost_basis") if isinstance(searched, dict) else None
    if isinstance(basis, dict) and {"preset", "metric"} <= set(basis):
        return f"{basis['preset']} {basis['metric']}"
    return ""


def run_quantizer(run) -> str:
    """The quantizer a run's quantized options used ("" when it quantizes nothing; traces from before the choice of
    quantizer name none and used the authors' one, ``dfs_authors``)."""
    used = run.options
    static = run.meta.get("static_option") if run.method == "static" else None
    if isinstance(static, int) and not isinstance(static, bool) and 0 <= static < len(run.options):
        used = (run.options[static],)  # a static trace from before the choice lists every DFS option, runs one
    if all(option.is_skip or option.float for option in used):
        return ""
    return str(run.meta.get("quantizer", "dfs_authors"))
