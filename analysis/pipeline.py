"""The replay pipeline as a Python API: trace folder in, frames, fronts, plots and a manifest out.

``replay()`` reads and validates every trace and every preset before it writes anything, then for each run × preset
builds (or loads the cached) cost table, replays every input through the Numba kernel, and writes the per-input part
atomically under ``OUT/parts/``. A rerun over the same inputs reuses finished parts, so an interrupted replay resumes.
The final frames are assembled from the parts and written atomically; ``manifest.json`` is written last.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from analysis._output import (
    MANIFEST,
    claim_output_folder,
    read_table_or_none,
    release_output_folder,
    write_manifest,
    write_table,
)
from analysis.bases import basis_comparison
from analysis.frames import per_block_frame, per_input_frame, per_run_frame
from analysis.matched import matched_comparison
from analysis.pareto import pareto_front
from analysis.plot_workers import FORMATS as PLOT_FORMATS, REPLAY_PLOTS, PlotWorkers, draw_replay_plots, plots_source
from analysis.replay_kernel import replay_costs
from analysis.summary import proxy_per_input
from cost_models import CostTable, build_cost_table, list_presets, load_preset
from cost_models.cost_table import MODEL_VERSION
from dfs_sim._atomic import atomic_write_text
from dfs_sim.errors import ConfigError
from dfs_sim.traces import TraceRun, read_traces

__all__ = ["ReplayResult", "replay", "PARTS_DIR", "MANIFEST"]

PARTS_DIR = "parts"
PLOTS_DIR = "plots"
# Bump when the per-input frame's columns or meaning change, so that old parts are not reused.
FRAME_VERSION = 1
PLOT_VERSION = 4  # bump when a plot changes, so that stored plots are drawn again
PLOTS_STAMP = ".frames.sha256"
FRONT_AXES = {"energy": "energy_pj_mean", "latency": "latency_us_mean"}


@dataclass(frozen=True)
class ReplayResult:
    runs: tuple[TraceRun, ...]
    presets: tuple
    per_input: pd.DataFrame
    per_run: pd.DataFrame
    per_block: pd.DataFrame
    fronts: pd.DataFrame
    matched: pd.DataFrame
    bases: pd.DataFrame
    out: Path | None
    timings: dict = field(default_factory=dict)
    reused_parts: int = 0


def replay(
    traces: str | os.PathLike | Sequence[TraceRun],
    *,
    presets: Sequence[str] | None = None,
    out: str | os.PathLike | None = None,
    force: bool = False,
    plots: bool = True,
    command: str = "",
    progress: bool | None = None,
    plot_workers: int | PlotWorkers | None = None,
) -> ReplayResult:
    """Replay every run on every preset (default: all shipped presets) and, if ``out`` is given, write the results.

    Raises a ``DfsSimError`` subclass for bad input (traces, presets, output folder) before anything is written.
    ``force`` allows writing into a folder that holds results of other inputs. ``progress=None`` shows a bar only on
    a terminal. The plots are drawn in this process unless ``plot_workers`` asks for more processes (2 halves the
    time on two cores; spawned processes import the caller's main module, so a script needs the usual
    ``if __name__ == "__main__":`` guard) or is a ``PlotWorkers`` the caller started earlier and closes itself (the
    command line starts them before it imports this module).
    """
    if plot_workers is None:
        plot_workers = 1
    clock = _Clock()
    runs = tuple(read_traces(traces)) if isinstance(traces, (str, os.PathLike)) else tuple(traces)
    loaded = tuple(load_preset(name) for name in (presets or list_presets()))
    _check_unique([preset.name for preset in loaded], "--presets")
    _check_unique([run.name for run in runs], "traces")
    fingerprint = _inputs_fingerprint(runs)
    out_dir = None
    if out is not None:
        out_dir = claim_output_folder(Path(out), fingerprint, force=force, subfolder=PARTS_DIR, command=command)
    clock.lap("read_s")
    try:
        stamp = _plots_stamp(fingerprint, loaded) if plots and out_dir is not None else None
        if stamp is not None and out_dir is not None and _plots_current(out_dir / PLOTS_DIR, stamp):
            stamp = None
        workers: AbstractContextManager[PlotWorkers | None]
        if isinstance(plot_workers, PlotWorkers):  # the caller's, which the caller closes
            workers = nullcontext(plot_workers)
        elif stamp is not None and plot_workers > 1:  # started now, so that matplotlib loads while the replay runs
            workers = PlotWorkers(plot_workers)
        else:
            workers = nullcontext()
        with workers as started:
            return _replay_into(runs, loaded, out_dir, fingerprint, stamp, started, command, progress, clock)
    finally:
        if out_dir is not None:
            release_output_folder(out_dir)


def _replay_into(
    runs,
    loaded,
    out_dir: Path | None,
    fingerprint: str,
    plot_stamp: str | None,
    workers: PlotWorkers | None,
    command: str,
    progress,
    clock: _Clock,
) -> ReplayResult:
    parts, reused = _replay_parts(runs, loaded, out_dir, progress)
    clock.lap("replay_s")

    # Parts computed now and parts read back are both Arrow tables with one schema, so the result does not depend
    # on which parts were reused.
    per_input_table = pa.concat_tables(parts)
    per_input = per_input_table.to_pandas()
    per_run = per_run_frame(per_input, runs)
    per_block = per_block_frame(runs)
    fronts = _fronts(per_run)
    matched = matched_comparison(per_run)
    bases = basis_comparison(per_run)
    clock.lap("frames_s")
    result = ReplayResult(
        runs, loaded, per_input, per_run, per_block, fronts, matched, bases, out_dir, clock.laps, reused
    )
    if out_dir is not None:
        write_table(per_input_table, out_dir / "per_input.parquet")
        _write_outputs(result, out_dir, plot_stamp, workers)
        clock.lap("write_s")
        _write_manifest(result, out_dir, fingerprint, command, clock)
    return result


def _replay_parts(runs, presets, out_dir: Path | None, progress) -> tuple[list[pa.Table], int]:
    """The per-input frame of every run × preset, as Arrow tables; finished parts under ``out_dir`` are reused."""
    parts, reused = [], 0
    tables: dict[tuple, CostTable] = {}
    proxies: dict[str, np.ndarray] = {}  # the proxy cost per input, the same on every preset
    pairs = [(run, preset) for run in runs for preset in presets]
    for run, preset in tqdm(pairs, desc="replay runs x presets", unit="pair", disable=_quiet(progress)):
        part_path = out_dir / PARTS_DIR / _part_name(run, preset) if out_dir else None
        part = read_table_or_none(part_path) if part_path is not None else None
        if part is None:
            table_key = (run.layers.content_hash(), run.options, preset.content_hash())
            if table_key not in tables:
                tables[table_key] = build_cost_table(run.layers, preset, options=run.options)
            costs = replay_costs(run.codes, tables[table_key], check_codes=False)  # checked when the run was made
            if run.name not in proxies:
                proxies[run.name] = proxy_per_input(run)
            frame = per_input_frame(
                run, preset.name, costs, us_per_cycle=float(preset.cycles_to_us(1.0)), proxy=proxies[run.name]
            )
            part = pa.Table.from_pandas(frame, preserve_index=False)
            if part_path is not None:
                write_table(part, part_path)
        else:
            reused += 1
        parts.append(part)
    return parts, reused


def _fronts(per_run: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``per_run`` on the (cost, accuracy) front of their preset and method, one block per cost axis."""
    frames = []
    for name, column in FRONT_AXES.items():
        mask = pareto_front(per_run, {column: "min", "accuracy": "max"}, by=["preset", "method"])
        on_front = per_run.loc[
            mask,
            ["preset", "method", "run", "budget", "accuracy", "energy_pj_mean", "latency_us_mean", "computation_pct"],
        ]
        frames.append(on_front.assign(front=name).sort_values(["preset", "method", column]))
    return pd.concat(frames, ignore_index=True)


def _write_outputs(result: ReplayResult, out: Path, plot_stamp: str | None, workers: PlotWorkers | None) -> None:
    write_table(result.per_run, out / "per_run.parquet")
    atomic_write_text(out / "per_run.csv", result.per_run.to_csv(index=False))
    write_table(result.per_block, out / "per_block.parquet")
    atomic_write_text(out / "fronts.csv", result.fronts.to_csv(index=False))
    atomic_write_text(out / "matched.csv", result.matched.to_csv(index=False))
    atomic_write_text(out / "bases.csv", result.bases.to_csv(index=False))
    if plot_stamp is not None:
        _write_plots(result, out / PLOTS_DIR, plot_stamp, workers)
    keep = {_part_name(run, preset) for run in result.runs for preset in result.presets}
    for stale in (out / PARTS_DIR).glob("*.parquet"):
        if stale.name not in keep:
            stale.unlink()


def _plots_stamp(fingerprint: str, presets) -> str:
    """What the plots are drawn from. The frames are determined by the inputs, the presets and the code that computes
    and draws them; hashing those is cheap, where hashing a per-input frame of millions of rows is not."""
    digest = hashlib.sha256(plots_source())
    digest.update(f"{PLOT_VERSION}:{FRAME_VERSION}:{MODEL_VERSION}:{fingerprint}".encode())
    for preset in presets:
        digest.update(preset.content_hash().encode())
    return digest.hexdigest()


def _plots_current(folder: Path, stamp: str) -> bool:
    """Whether ``folder`` holds every plot, drawn from what ``stamp`` describes."""
    recorded = folder / PLOTS_STAMP
    expected = [folder / f"{stem}{suffix}" for stem in REPLAY_PLOTS for suffix in PLOT_FORMATS]
    return recorded.is_file() and recorded.read_text() == stamp and all(path.is_file() for path in expected)


def _write_plots(result: ReplayResult, folder: Path, stamp: str, workers: PlotWorkers | None) -> None:
    frames = {"per_run": result.per_run, "per_block": result.per_block, "per_input": result.per_input}
    folder.mkdir(exist_ok=True)
    (folder / PLOTS_STAMP).unlink(missing_ok=True)
    draw_replay_plots(frames, folder, workers)
    atomic_write_text(folder / PLOTS_STAMP, stamp)


def _write_manifest(result: ReplayResult, out: Path, fingerprint: str, command: str, clock: _Clock) -> None:
    write_manifest(
        out,
        {
            "command": command,
            "inputs_fingerprint": fingerprint,
            "inputs": [_describe_input(run) for run in result.runs],
            "presets": [
                {"name": preset.name, "kind": preset.kind, "hash": preset.content_hash(), "source": preset.source}
                for preset in result.presets
            ],
            "reused_parts": result.reused_parts,
            "timings_s": {key: round(value, 3) for key, value in clock.laps.items()},
        },
    )


def _inputs_fingerprint(runs: Sequence[TraceRun]) -> str:
    digest = hashlib.sha256()
    for run in runs:
        digest.update(f"{run.name}:{run.content_hash()}:{run.layers.content_hash()};".encode())
    return digest.hexdigest()[:32]


def _part_name(run: TraceRun, preset) -> str:
    """The file of one run × preset under ``parts/``, keyed by everything its numbers depend on."""
    payload = (
        f"{FRAME_VERSION}:{MODEL_VERSION}:{run.content_hash()}:{run.layers.content_hash()}:{run.options}:"
        f"{preset.content_hash()}"
    )
    return f"{run.name}@{preset.name}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}.parquet"


def _describe_input(run: TraceRun) -> dict:
    entry = {
        "run": run.name,
        "method": run.method,
        "budget": run.budget,
        "n": run.num_inputs,
        "content_hash": run.content_hash(),
        "layers_hash": run.layers.content_hash(),
    }
    if run.path is not None:
        entry["file"] = str(run.path)
        entry["sha256"] = hashlib.sha256(run.path.read_bytes()).hexdigest()
    return entry


def _check_unique(names: list[str], source: str) -> None:
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(source, f"names must be unique, got {duplicates} more than once")


def _quiet(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


class _Clock:
    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self.last
        self.laps["total_s"] = now - self.start
        self.last = now
