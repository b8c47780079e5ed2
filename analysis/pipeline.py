"""The replay pipeline as a Python API: trace folder in, frames and files out. The CLI is a thin shell over this."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.summary import run_summary
from dfs_sim._atomic import atomic_write_text
from dfs_sim.errors import OutputError
from dfs_sim.provenance import git_commit, utc_now, versions
from dfs_sim.traces import TraceRun, read_traces

__all__ = ["ReplayResult", "replay"]


@dataclass(frozen=True)
class ReplayResult:
    runs: tuple[TraceRun, ...]
    per_run: pd.DataFrame
    out: Path | None


def replay(traces: str | os.PathLike | list[TraceRun], *, out: str | os.PathLike | None = None,
           command: str = "") -> ReplayResult:
    """Read and validate every trace, summarise each run, and (if ``out`` is given) write the results there.

    Every input is validated before anything is written, so bad input leaves ``out`` as it was.
    """
    started = time.perf_counter()
    runs = tuple(read_traces(traces)) if not isinstance(traces, list) else tuple(traces)
    out_dir = _check_output_folder(Path(out)) if out is not None else None
    per_run = run_summary(runs)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "per_run.csv", per_run.to_csv(index=False, float_format="%.6g"))
        manifest = {
            "command": command,
            "inputs": [_describe_input(run) for run in runs],
            "versions": versions(),
            "git_commit": git_commit(),
            "created": utc_now(),
            "seconds": round(time.perf_counter() - started, 3),
        }
        atomic_write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return ReplayResult(runs=runs, per_run=per_run, out=out_dir)


def _check_output_folder(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise OutputError(out, "the output path exists and is not a folder")
    existing = next((parent for parent in (out, *out.parents) if parent.exists()), Path("."))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(existing, "no permission to write here")
    return out


def _describe_input(run: TraceRun) -> dict:
    entry = {"run": run.name, "method": run.method, "budget": run.budget, "n": run.num_inputs,
             "content_hash": run.content_hash()}
    if run.path is not None:
        entry["file"] = str(run.path)
        entry["sha256"] = hashlib.sha256(run.path.read_bytes()).hexdigest()
    return entry
