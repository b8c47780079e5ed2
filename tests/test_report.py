"""The replay's HTML report: self-contained, it renders in headless Chromium with no console error and every image
loads (Debian's chromium, which .ci/run installs)."""

import shutil
import subprocess

import pytest

from dfs_sim.replay import main
from tests.factories import make_run, write_runs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    runs = {
        "dfs_r8_b20.parquet": make_run("dfs", n=60, seed=1),
        "dfs_r8_b40-s1.parquet": make_run("dfs", n=60, seed=2),
        "skipnet_r8.parquet": make_run("skipnet", n=60, seed=3),
        "static_r8_q8.parquet": make_run("static", n=60, seed=4, static_code=1),
    }
    traces = write_runs(folder / "traces", runs)
    assert main([str(traces), "--out", str(folder / "out"), "--presets", "bitparallel16", "stripes", "--quiet"]) == 0
    return folder / "out" / "report.html"


def test_the_report_is_self_contained_and_holds_every_part(report):
    text = report.read_text()
    for part in ("Findings", "Runs", "paired tests", "Plots", "Presets", "Provenance", "energy per input (µJ)"):
        assert part in text, part
    assert text.count('src="data:image/png;base64,') >= 5  # every plot inline
    assert "http://" not in text and "https://" not in text  # nothing fetched from elsewhere
    assert 'class="dataframe sortable"' in text and "bitparallel16" in text


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_report_renders_in_headless_chromium(report, tmp_path):
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    assert 'data-images="ok"' in done.stdout  # the page's own check: every image decoded
    assert "<table" in done.stdout
