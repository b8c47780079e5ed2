"""Analysis: replayed traces become tidy frames, summaries, fronts and plots. Never imports torch."""

from analysis.summary import option_histogram, run_summary

__all__ = ["option_histogram", "run_summary"]
