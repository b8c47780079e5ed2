"""docs/departures.md's quantizer table and its count of widths are examples/quantizer_validation.csv's."""

import re
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
QUANTIZERS = ["dfs_authors", "standard", "standard_mse"]


def _validation() -> pd.DataFrame:
    frame = pd.read_csv(ROOT / "examples" / "quantizer_validation.csv")
    quantized = frame[frame["quantizer"] != "none"]
    return quantized.pivot(index="option", columns="quantizer", values="validation_accuracy_pct")[QUANTIZERS]


def test_the_table_is_the_csv():
    text = (ROOT / "docs" / "departures.md").read_text()
    table = _validation()
    for option, row in table.iterrows():
        line = f"| {option} | " + " | ".join(f"{row[q]:.2f}" for q in QUANTIZERS) + " |"
        assert line in text, f"docs/departures.md: expected the row {line}"


def test_the_count_of_widths_where_the_default_is_most_accurate():
    table = _validation()
    best = table.max(axis=1)
    at_best = table["standard_mse"] == best
    tied = at_best & ((table.drop(columns="standard_mse").eq(best, axis=0)).any(axis=1))
    text = re.sub(r"\s+", " ", (ROOT / "docs" / "departures.md").read_text())
    claim = f"the most accurate at {int(at_best.sum())} of the {len(table)} widths ({int(tied.sum())} of them tied"
    assert claim in text
