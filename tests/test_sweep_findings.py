"""The README's sweep-findings block is what analysis.sweep_findings writes from the three bundled sweeps."""

from pathlib import Path

import pandas as pd
import pytest

from analysis.findings import readme_block
from analysis.sweep import run_sweep
from analysis.sweep_findings import BEGIN, END, SweepOutcome, main, read_sweep, sweep_markdown

ROOT = Path(__file__).resolve().parent.parent
SPECS = [
    "examples/sweeps/bitfusion_memory.toml",
    "examples/sweeps/bitfusion_prices.toml",
    "examples/sweeps/loom_prices.toml",
]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    folders = []
    for spec in SPECS:
        out = tmp_path_factory.mktemp(Path(spec).stem)
        run_sweep(ROOT / spec, ROOT / "examples" / "traces", out=out, workers=0, progress=False, command=spec)
        folders.append(out)
    return folders


def test_the_readme_block_is_the_bundled_sweeps(swept):
    outcomes = [read_sweep(folder) for folder in swept]
    outcomes = [SweepOutcome(spec, outcome.frame) for spec, outcome in zip(SPECS, outcomes, strict=True)]
    assert readme_block(ROOT / "README.md", BEGIN, END) == sweep_markdown(outcomes), (
        "README.md's sweep-findings block differs from the bundled sweeps: run the four commands under 'What the "
        "sweeps say' with --readme README.md"
    )


def _point(point: int, run: str, method: str, energy: float, skipnet: float, static: float) -> dict:
    return {
        "point": point,
        "axis:dram.pj_per_bit": [5.0, 40.0][point],
        "run": run,
        "method": method,
        "energy_pj_mean": energy,
        "e_compute_pj_mean": energy / 4,
        "energy_ratio_vs_skipnet": skipnet,
        "energy_ratio_vs_static": static,
    }


def test_the_sentences_follow_the_ratios():
    frame = pd.DataFrame(
        [
            _point(0, "dfs_a", "dfs", 10.0, 3.0, 0.5),
            _point(1, "dfs_a", "dfs", 10.0, 2.0, 1.5),  # static dearer here: the verdict is mixed
            _point(0, "dfs_b", "dfs", 10.0, float("nan"), 0.8),  # SkipNet never as accurate
            _point(1, "dfs_b", "dfs", 10.0, float("nan"), 0.9),
            _point(0, "static_r_q8", "static", 8.0, float("nan"), float("nan")),
            _point(1, "static_r_q8", "static", 8.0, float("nan"), float("nan")),
        ]
    )
    text = sweep_markdown([SweepOutcome("s.toml", frame)])
    assert "compute is 25% of the energy" in text
    assert "SkipNet needs 2.00–3.00× DFS's energy for the same accuracy (1 DFS runs it reaches" in text
    assert "`dram.pj_per_bit`: 3.00× at 5, 2.00× at 40" in text
    assert "more than DFS at every point for 0 of them and less at every point for 1." in text  # dfs_b only
    assert "SkipNet needs more energy than DFS" in text
    assert "the static front needs more for some runs or points, less for others" in text


def test_the_command(swept, tmp_path, capsys):
    assert main([str(folder) for folder in swept]) == 0 and "SkipNet needs" in capsys.readouterr().out
    assert main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "manifest.json" in err
    (tmp_path / "manifest.json").write_text('{"spec": "x.toml"}')
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "sweep.parquet")
    assert main([str(tmp_path)]) == 2
    assert "not a sweep's results" in capsys.readouterr().err
