"""Hypothesis settings for the fuzz tests. ``DFS_SIM_FUZZ_SCALE`` multiplies the number of fuzzing cases (CI: 1;
locally e.g. 20)."""

import os

from hypothesis import HealthCheck, settings

FUZZ_SCALE = max(1, int(os.environ.get("DFS_SIM_FUZZ_SCALE", "1")))


def fuzz_examples(base: int) -> int:
    return base * FUZZ_SCALE


def fuzz(base: int) -> settings:
    """``base`` examples times ``FUZZ_SCALE``, reproducible (derandomized, no example database), no deadline."""
    return settings(max_examples=fuzz_examples(base), deadline=None, suppress_health_check=list(HealthCheck),
                    derandomize=True, database=None)
