import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from analysis.summary import computation_pct, run_summary
from dfs_sim.replay import main
from tests.factories import make_run, write_runs


def test_computation_pct_by_hand():
    # ResNet-8 has two gated blocks. Input 0: skip + q8; input 1: fp + q16; input 2: q12 + fp.
    codes = np.array([[0, 1], [6, 5], [3, 6]], dtype=np.uint8)
    run = make_run(codes=codes)
    by_hand = (0 + 1 / 16 + 1 + 1 / 4 + 9 / 64 + 1) / 6 * 100
    assert computation_pct(run) == pytest.approx(by_hand)
    skipnet = make_run("skipnet", codes=np.array([[0, 1], [1, 1]], dtype=np.uint8))
    assert computation_pct(skipnet) == pytest.approx(75.0)


def test_summary_rows_and_histogram():
    dfs = make_run("dfs", n=40, seed=1, name="dfs_a")
    skipnet = make_run("skipnet", n=30, seed=2, name="skip_a")
    frame = run_summary([dfs, skipnet])
    assert list(frame["run"]) == ["dfs_a", "skip_a"]
    assert list(frame["n"]) == [40, 30]
    assert frame.loc[0, "accuracy"] == pytest.approx(np.mean(dfs.label == dfs.pred))
    fractions = frame.filter(like="frac_")
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0)
    assert frame.loc[1, "frac_q8"] == 0.0
    assert frame.loc[1, "frac_skip"] == pytest.approx(np.mean(skipnet.codes == 0))


def _traces(folder, count=3):
    folder.mkdir()
    return write_runs(
        folder,
        {
            f"{method}_r8.parquet": make_run(method, n=20, seed=index, static_code=1 if method == "static" else None)
            for index, method in enumerate(["dfs", "skipnet", "static"][:count])
        },
    )


def test_cli_writes_summary_without_importing_torch(tmp_path):
    traces = _traces(tmp_path / "traces")
    out = tmp_path / "out"
    code = (
        "import sys; from dfs_sim.replay import main; "
        "rc = main([sys.argv[1], '--out', sys.argv[2], '--presets', 'bitparallel16', '--no-plots']); "
        "assert 'torch' not in sys.modules, 'replay imported torch'; sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(traces), str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(out / "per_run.csv")
    assert list(frame["run"]) == ["dfs_r8", "skipnet_r8", "static_r8"]
    assert frame.loc[2, "computation_pct"] == pytest.approx(100 / 16)
    assert (out / "manifest.json").is_file()
    assert {"per_input", "per_run.parquet", "per_block.parquet", "fronts.csv", "matched.csv"} <= {
        path.name for path in out.iterdir()
    }
    assert "Runs: accuracy" in done.stdout and "paired tests" in done.stdout


def test_bad_file_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    traces = _traces(tmp_path / "traces")
    (traces / "zz_broken.parquet").write_bytes(b"PAR1 not really")
    out = tmp_path / "out"
    assert main([str(traces), "--out", str(out), "--presets", "bitparallel16"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "zz_broken.parquet" in error
    assert not out.exists()


def test_existing_results_are_not_touched_by_bad_input(tmp_path, capsys):
    traces = _traces(tmp_path / "traces")
    out = tmp_path / "out"
    assert main([str(traces), "--out", str(out), "--presets", "bitparallel16", "--no-plots"]) == 0
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    (traces / "a_broken.parquet").write_bytes(b"")
    assert main([str(traces), "--out", str(out), "--presets", "bitparallel16", "--no-plots"]) == 2
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before


def test_empty_folder_and_output_file(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "no *.parquet" in capsys.readouterr().err
    traces = _traces(tmp_path / "traces", count=1)
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep me")
    assert main([str(traces), "--out", str(blocker)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert blocker.read_text() == "keep me"


def test_a_scheduler_nobody_answers_at_is_one_line_exit_2(tmp_path, capsys):
    import dask
    import distributed  # noqa: F401  # its defaults loaded first, or leaving the set() below would delete them

    folder = write_runs(tmp_path / "traces", {"dfs_a.parquet": make_run("dfs", n=10, seed=1)})
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code = main([str(folder), "--out", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9", "--quiet"])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1 and "tcp://127.0.0.1:9" in captured.err
    assert main([str(folder), "--out", str(tmp_path / "out2"), "--workers", "-1", "--quiet"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_a_run_stopped_by_bad_data_mid_stream_is_marked_failed(tmp_path, capsys):
    """A trace whose values do not match its content hash is found out only once it has been read: the replay then
    stops with one line, and the manifest says failed, with that line, instead of "running"."""
    import json

    import pyarrow.parquet as pq

    traces = _traces(tmp_path / "traces")
    path = traces / "static_r8.parquet"
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"dfs_sim"])
    meta["content_hash"] = "0" * len(meta["content_hash"])
    pq.write_table(table.replace_schema_metadata({b"dfs_sim": json.dumps(meta).encode()}), path)
    out = tmp_path / "out"
    assert main([str(traces), "--out", str(out), "--presets", "bitparallel16", "--no-plots"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "static_r8.parquet" in error
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "static_r8.parquet" in manifest["error"]


def test_terminal_output_fits_120_columns_at_any_number_of_runs(tmp_path, capsys):
    runs = {
        f"dfs_r8_b{index}-a-rather-long-name-that-a-user-might-choose-{index}.parquet": make_run(
            "dfs", n=10, seed=index
        )
        for index in range(40)
    }
    runs["static_r8.parquet"] = make_run("static", n=10, seed=99, static_code=1)
    folder = write_runs(tmp_path / "traces", runs)
    assert main([str(folder), "--out", str(tmp_path / "out"), "--no-plots", "--per-input", "none"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("wrote ")]  # a user's path
    assert len(lines) > 40 and max(len(line) for line in lines) <= 120, [line for line in lines if len(line) > 120]
    assert any("…" in line for line in lines)  # long names are cut in the middle; the files keep them whole
