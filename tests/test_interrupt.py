"""A replay killed with SIGKILL leaves no partial file under a final name; the rerun resumes and its outputs are
byte-identical to an uninterrupted run (timestamps live in manifest.json only)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analysis.pipeline import replay
from dfs_sim.errors import OutputError
from tests.factories import make_run, write_runs

PRESETS = ["bitparallel16", "stripes", "loom"]
ROOT = Path(__file__).resolve().parent.parent


def _files(folder: Path) -> dict:
    return {
        path.relative_to(folder): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != "manifest.json"
    }


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc; empty elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    methods = [("dfs", "skipnet")[index % 2] for index in range(10)]
    return write_runs(
        tmp_path_factory.mktemp("many"),
        {
            f"{method}_{index:02d}.parquet": make_run(method, depth=14, n=300, seed=index)
            for index, method in enumerate(methods)
        },
    )


@pytest.mark.slow
def test_sigkill_then_resume_is_byte_identical(traces, tmp_path):
    reference = tmp_path / "reference"
    replay(traces, presets=PRESETS, out=reference, progress=False)

    out = tmp_path / "interrupted"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "dfs_sim.replay", str(traces), "--out", str(out), "--presets", *PRESETS, "--quiet"],
        env=env,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len(list((out / "parts").glob("*.json"))) >= 2:
            break
        time.sleep(0.005)
    children = _children(process.pid)  # the plot workers (and multiprocessing's resource tracker)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the replay finished before it could be interrupted"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.05)
    assert not [pid for pid in children if _alive(pid)], "processes of the killed replay live on"
    for path in out.rglob("*"):
        if path.is_file() and path.suffix == ".parquet" and not path.name.startswith("."):
            pq.read_table(path)  # every file under a final name is complete
    finished_parts = len(list((out / "parts").glob("*.json")))  # a part is finished once its summary is written

    again = replay(traces, presets=PRESETS, out=out, progress=False)
    assert again.reused_parts == finished_parts
    assert _files(out) == _files(reference)
    assert not list(out.rglob("*.tmp"))


def test_replaying_twice_gives_identical_frames(traces, tmp_path):
    first = replay(traces, presets=["bitparallel16"], out=None, progress=False)
    second = replay(traces, presets=["bitparallel16"], out=None, progress=False)
    for name in ("per_input", "per_run", "per_block", "fronts", "matched"):
        assert getattr(first, name).equals(getattr(second, name)), name


def test_unwritable_output_locations(traces, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("keep")
    with pytest.raises(OutputError, match="not a folder"):
        replay(traces, presets=["bitparallel16"], out=blocker, progress=False)
    assert blocker.read_text() == "keep"
    # /proc refuses new folders even to root, so this works where chmod-based checks do not
    with pytest.raises(OutputError):
        replay(traces, presets=["bitparallel16"], out=Path("/proc/dfs_sim_results"), progress=False)


def test_a_second_run_into_a_busy_folder_is_refused(traces, tmp_path):
    out = tmp_path / "busy"
    replay(traces, presets=["bitparallel16"], out=out, plots=False, progress=False)
    assert not (out / ".lock").exists()  # released at the end
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(str(sleeper.pid))  # as if that process were replaying here
        with pytest.raises(OutputError, match="another run"):
            replay(traces, presets=["bitparallel16"], out=out, plots=False, progress=False)
    finally:
        sleeper.kill()
        sleeper.wait()
    # the lock of a process that is gone is taken over
    again = replay(traces, presets=["bitparallel16"], out=out, plots=False, progress=False)
    assert again.reused_parts == len(again.runs)


def test_sigterm_unwinds_the_command(traces, tmp_path):
    """SIGTERM (a CI timeout, ``kill``) exits 143 with the output folder's lock released and no process left."""
    out = tmp_path / "terminated"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "dfs_sim.replay", str(traces), "--out", str(out), "--presets", *PRESETS, "--quiet"],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and not list((out / "per_input").glob("*.parquet")):
        time.sleep(0.005)
    children = _children(process.pid)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM, process.stderr.read()
    assert not (out / ".lock").exists()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.05)
    assert not [pid for pid in children if _alive(pid)]
