"""Golden frames of the digits example: ``python -m tests.golden_frames`` regenerates them, on purpose only.

The test ``tests/test_golden.py`` replays the digits traces (``tests/data/digits_traces``, small and stable) on every
shipped preset and compares the per-run frame with the stored one, so that any change to a cost model, a preset or
the analysis that moves a number is seen in review and regenerated deliberately.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests" / "data" / "digits_traces"
GOLDEN = Path(__file__).resolve().parent / "golden" / "digits_per_run.csv"
COLUMNS = [
    "run",
    "method",
    "budget",
    "preset",
    "n",
    "accuracy",
    "energy_pj_mean",
    "energy_pj_p99",
    "latency_us_mean",
    "latency_us_p99",
    "e_compute_pj_mean",
    "e_sram_pj_mean",
    "e_dram_pj_mean",
    "dram_bits_mean",
    "computation_pct",
]


def current_frame() -> pd.DataFrame:
    from analysis.pipeline import replay

    per_run = replay(EXAMPLE, out=None, progress=False).per_run
    return per_run[COLUMNS + [column for column in per_run.columns if column.startswith("frac_")]]


def main() -> int:
    frame = current_frame()
    GOLDEN.parent.mkdir(exist_ok=True)
    frame.to_csv(GOLDEN, index=False, float_format="%.12g")
    print(f"wrote {GOLDEN} ({len(frame)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
