"""docs/hardware.md §2.4.1 and the README state each bit-serial preset's speed-up and energy efficiency over its
equal-peak twin on ResNet-38; these are the numbers the cost models give today."""

import re
from pathlib import Path

import pytest

from cost_models import build_cost_table, load_preset
from cost_models.pricing import METRICS
from dfs_sim.traces import open_trace

ROOT = Path(__file__).resolve().parent.parent
PAIRS = [
    ("stripes", "bitparallel16"),
    ("stripes_small", "bitparallel16_small"),
    ("loom_paper", "loom_paper_twin"),
    ("loom", "loom_twin"),
]
CYCLES = METRICS.index("cycles")
ENERGY = [METRICS.index(name) for name in ("e_compute_pj", "e_sram_pj", "e_dram_pj")]


@pytest.fixture(scope="module")
def ratios():
    """``{(serial, option): (speed-up, efficiency, whole-network speed-up, whole-network efficiency)}``, every gated
    block at one option; the always-run layers (stem, first block, classifier) at full precision as DFS runs them."""
    run = open_trace(ROOT / "examples" / "traces" / "dfs_r38_b5.parquet")
    codes = {option.name: option.code for option in run.options}
    out = {}
    for serial, twin in PAIRS:
        tables = [build_cost_table(run.layers, load_preset(name), run.options) for name in (serial, twin)]
        for option in ("q8", "q12", "q16"):
            sums = []
            for table in tables:
                block = table.block[:, codes[option], :]
                gated = block[:, CYCLES].sum(), block[:, ENERGY].sum()
                sums.append((*gated, gated[0] + table.fixed[CYCLES], gated[1] + table.fixed[ENERGY].sum()))
            (serial_sums, twin_sums) = sums
            out[serial, option] = tuple(t / s for s, t in zip(serial_sums, twin_sums, strict=True))
    return out


def test_the_twin_table_in_hardware_md(ratios):
    text = (ROOT / "docs" / "hardware.md").read_text()
    for serial, twin in PAIRS:
        speed, energy, whole_speed, whole_energy = ratios[serial, "q8"]
        cells = [f"{speed:.2f}× ({whole_speed:.2f}×), {energy:.2f}× ({whole_energy:.2f}×)"]
        cells += [f"{ratios[serial, o][0]:.2f}×, {ratios[serial, o][1]:.2f}×" for o in ("q12", "q16")]
        row = f"| `{serial}` / `{twin}` | {' | '.join(cells)} |"
        assert row in text, f"docs/hardware.md §2.4.1: expected the row {row}"


def test_the_readme_states_loom_papers_ratios(ratios):
    speed, energy, whole_speed, _ = ratios["loom_paper", "q8"]
    readme = re.sub(r"\s+", " ", (ROOT / "README.md").read_text())
    assert (
        f"`loom_paper` is {speed:.2f}× faster and {energy:.2f}× more energy efficient than its twin. "
        f"Its full-precision stem and classifier make the whole network {whole_speed:.2f}× as fast"
    ) in readme
