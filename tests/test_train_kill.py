"""Training killed with SIGKILL and resumed from its last checkpoint ends with the parameters of an uninterrupted
run of the same seed; exporting the same checkpoint twice gives identical traces."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dfs_sim.model.checkpoint import load_checkpoint
from dfs_sim.model.export import export
from dfs_sim.traces import read_trace

ROOT = Path(__file__).resolve().parent.parent
TINY = [
    "--model",
    "dfs_resnet8",
    "--dataset",
    "digits",
    "--batch-size",
    "16",
    "--device",
    "cpu",
    "--stages",
    "backbone,gate,joint",
    "--set",
    "backbone.iterations=30",
    "--set",
    "gate.iterations=10",
    "--set",
    "joint.iterations=4",
    "--set",
    "augment=none",
    "--checkpoint-every",
    "4",
    "--no-progress",
]


def _train(*arguments: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "dfs_sim.train", *arguments],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    full = _train(*TINY, "--out-dir", str(tmp_path / "full"))
    killed = _train(*TINY, "--out-dir", str(tmp_path / "killed"))
    last = tmp_path / "killed" / "last.pt"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and killed.poll() is None:
        if last.is_file() and load_checkpoint(last)["iteration"] >= 8 and load_checkpoint(last)["stage"] == "backbone":
            break
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL, "training finished before it could be interrupted"
    stopped_at = load_checkpoint(last)["iteration"]
    assert full.wait() == 0, full.stderr.read().decode()
    resumed = _train("--resume", str(last), "--no-progress")  # a resumed run takes its checkpoint's config
    assert resumed.wait() == 0, resumed.stderr.read().decode()

    expected = load_checkpoint(tmp_path / "full" / "joint.pt")["model"]
    actual = load_checkpoint(tmp_path / "killed" / "joint.pt")["model"]
    assert stopped_at < 30
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name

    first = read_trace(export(tmp_path / "full" / "joint.pt", tmp_path / "a.parquet").path)
    second = read_trace(export(tmp_path / "full" / "joint.pt", tmp_path / "b.parquet").path)
    for name in ("codes", "input_id", "label", "pred", "confidence"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name
    volatile = {"created", "content_hash", "command"}
    assert {k: v for k, v in first.meta.items() if k not in volatile} == {
        k: v for k, v in second.meta.items() if k not in volatile
    }
