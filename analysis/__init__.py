"""Analysis: replayed traces become tidy frames, Pareto fronts, matched comparisons and plots. Never imports torch.

    from analysis import replay, pareto_front, matched_comparison
    result = replay("examples/traces", presets=["bitfusion_eyeriss", "stripes"], out="results")
    result.per_run          # one row per run x preset

Names are imported on first use, so that a submodule (e.g. ``analysis.plots`` in a plotting worker) loads without
the cost models and Numba.
"""

import importlib

__all__ = [
    "ReplayResult",
    "basis_comparison",
    "computation_pct",
    "matched_comparison",
    "option_histogram",
    "pareto_front",
    "replay",
    "run_summary",
]

_HOMES = {
    "ReplayResult": "analysis.pipeline",
    "replay": "analysis.pipeline",
    "matched_comparison": "analysis.matched",
    "basis_comparison": "analysis.bases",
    "pareto_front": "analysis.pareto",
    "computation_pct": "analysis.summary",
    "option_histogram": "analysis.summary",
    "run_summary": "analysis.summary",
}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
