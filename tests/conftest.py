"""Shared test settings. ``DFS_SIM_FUZZ_SCALE`` multiplies the number of fuzzing cases (CI: 1; locally e.g. 20)."""

import os

FUZZ_SCALE = max(1, int(os.environ.get("DFS_SIM_FUZZ_SCALE", "1")))


def fuzz_examples(base: int) -> int:
    return base * FUZZ_SCALE
