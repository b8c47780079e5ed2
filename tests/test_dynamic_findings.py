"""The README's dynamic-precision block is what analysis.dynamic_findings writes from the bundled measured traces."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.dynamic_findings import BEGIN, END, dynamic_markdown, main, precision_summary, preset_ratios
from analysis.findings import readme_block
from analysis.pipeline import replay
from dfs_sim.traces import PRECISION_STEPS
from tests.factories import make_run, write_runs

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "examples" / "traces_dynamic"
PRESETS = ["stripes", "stripes_dynamic", "loom", "loom_dynamic"]


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    out = tmp_path_factory.mktemp("dynamic")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*another preset's geometry")  # each -steps file on the other
        replay(BUNDLE, presets=PRESETS, out=out, per_input="none", plots=False, progress=False)
    return out


def test_the_readme_block_is_the_bundled_replays(bundled):
    written = dynamic_markdown(precision_summary(BUNDLE), preset_ratios(pd.read_csv(bundled / "per_run.csv")))
    assert readme_block(ROOT / "README.md", BEGIN, END) == written, (
        "README.md's dynamic-precision block differs from the bundled traces' replay: run the two commands of its "
        "'Data-dependent precision' section with --readme README.md"
    )


def _given(run) -> np.ndarray:
    """Each decision's activation bits (0: skipped or full precision, which are not measured)."""
    return np.array([0 if o.is_skip or o.float else o.a_bits for o in run.options], dtype=np.int64)[run.codes]


def _needed(run, rule) -> np.ndarray:
    """Each measured decision at ``rule(bits given)`` bits, in the trace's eighths."""
    given = _given(run)
    return np.where(given > 0, rule(given) * PRECISION_STEPS, 0).astype(np.uint8)


def test_bits_given_and_needed_are_the_means_over_measured_decisions(tmp_path):
    run = make_run("dfs", depth=8, n=40, seed=3)
    a_bits = _given(run)
    needed = _needed(run, lambda bits: np.maximum(bits - 2, 1))
    write_runs(tmp_path / "t", {"m.parquet": run.with_precision(needed), "plain.parquet": make_run("static", n=40)})
    (row,) = precision_summary(tmp_path / "t").to_dict("records")  # the trace without precisions is left out
    measured = a_bits > 0
    assert row["run"] == "m" and row["decisions"] == measured.sum()
    assert row["given_bits"] == pytest.approx(a_bits[measured].mean())
    assert row["needed_bits"] == pytest.approx(np.maximum(a_bits[measured] - 2, 1).mean())
    assert row["measurement"] == "16 channels, 1 position" and row["geometry"] == ""


def test_ratios_pair_each_dynamic_preset_with_its_namesake():
    per_run = pd.DataFrame(
        [
            {"run": "r", "preset": preset, "latency_us_mean": latency, "energy_pj_mean": energy}
            for preset, latency, energy in [("loom", 10.0, 4.0), ("loom_dynamic", 9.0, 3.0), ("x_dynamic", 1.0, 1.0)]
        ]
    )
    (ratio,) = preset_ratios(per_run).to_dict("records")  # x_dynamic has no namesake in the replay
    assert ratio == {"run": "r", "preset": "loom_dynamic", "latency": 0.9, "energy": 0.75}


def test_the_command(bundled, tmp_path, capsys):
    assert main([str(BUNDLE), str(bundled)]) == 0 and "bits given → needed" in capsys.readouterr().out
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{BEGIN}\nold\n{END}\ntail\n")
    assert main([str(BUNDLE), str(bundled), "--readme", str(readme)]) == 0
    assert "old" not in readme.read_text() and readme.read_text().endswith("tail\n")
    assert main([str(BUNDLE), str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "per_run.csv" in err
    assert main([str(ROOT / "examples" / "traces"), str(bundled)]) == 2  # no trace carries precisions
    assert "needs traces with effective precisions" in capsys.readouterr().err
    run = make_run("dfs", depth=8, n=20)
    write_runs(tmp_path / "other", {"other.parquet": run.with_precision(_needed(run, lambda bits: bits))})
    assert main([str(tmp_path / "other"), str(bundled)]) == 2  # results of other traces
    assert "not replayed from these traces" in capsys.readouterr().err


def test_a_results_folder_that_is_not_a_replays_is_named(tmp_path, capsys):
    (tmp_path / "per_run.csv").write_text("a,b\n1,2\n")
    assert main([str(BUNDLE), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "per_run.csv" in err and "no column" in err
