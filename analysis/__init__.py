"""Analysis: replayed traces become tidy frames, Pareto fronts, matched comparisons and plots. Never imports torch.

    from analysis import replay, pareto_front, matched_comparison
    result = replay("examples/traces", presets=["bitfusion_eyeriss", "stripes"], out="results")
    result.per_run          # one row per run x preset
"""

from analysis.matched import matched_comparison
from analysis.pareto import pareto_front
from analysis.pipeline import ReplayResult, replay
from analysis.summary import computation_pct, option_histogram, run_summary

__all__ = ["ReplayResult", "computation_pct", "matched_comparison", "option_histogram", "pareto_front", "replay",
           "run_summary"]
