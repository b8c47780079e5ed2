"""The replay pipeline as a Python API: trace folder in, frames, fronts, plots and a manifest out.

``replay()`` checks every trace's metadata and every preset before it writes anything, then streams each run through
the Numba kernel on all its presets at once, a chunk of inputs at a time (``analysis.streaming``), so that memory is
set by the chunk and the number of presets, not by the number of inputs. Each run × preset leaves a part under
``OUT/parts/``, written atomically once the run's data have been read whole and its content hash verified: its
per-run summary (JSON) and, as asked, its per-input rows. A rerun over the same inputs reuses finished parts, so an
interrupted replay resumes. The final frames are assembled from the parts and written atomically; ``manifest.json``
is written last.

Per-input rows (``per_input=``) go to one Parquet file per run × preset under ``per_input/``, streamed as the replay
goes (a writer thread encodes each chunk while the next is replayed), written once and never copied or gathered
into one frame: "full" (the default) with every column, "compact" with only the costs (run, preset, input_id,
cycles, latency, energy and its parts, DRAM bits; the trace holds the rest, joined on ``input_id``); "none" writes
none. ``pd.read_parquet("OUT/per_input")`` reads the files as one frame. Every aggregate, front, comparison and plot
is the same in all three.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from analysis._output import (
    MANIFEST,
    claim_output_folder,
    mark_failed,
    release_output_folder,
    write_manifest,
    write_table,
)
from analysis.bases import basis_comparison
from analysis.executor import run_tasks
from analysis.findings import findings_markdown, frames_from_folder
from analysis.frames import (
    fronts_frame,
    per_block_frame,
    per_run_and_boxes,
    run_family,
    run_quantizer,
    run_search_basis,
)
from analysis.matched import BASELINES, matched_comparison
from analysis.paired import (
    PerInputCosts,
    difficulty_frame,
    headroom_frame,
    oracle_front,
    paired_columns,
    per_input_costs,
    seed_group,
    seed_summary,
)
from analysis.parts import PARTS_DIR, PER_INPUT_DIR, PartStore, PartWriters
from analysis.plot_files import PLOTS_DIR, plots_current, plots_stamp, write_plots
from analysis.plot_workers import PlotWorkers
from analysis.report import write_report
from analysis.streaming import PER_INPUT_FORMS, RunTotals, replay_run
from cost_models import CostTable, build_cost_table, list_presets, load_preset
from cost_models.preset import SerialArray
from dfs_sim._atomic import atomic_write_text
from dfs_sim.errors import ConfigError
from dfs_sim.traces import CHUNK_INPUTS, TraceFile, TraceRun, open_traces

__all__ = ["ReplayResult", "replay", "PARTS_DIR", "MANIFEST", "run_family", "run_quantizer", "run_search_basis"]


@dataclass(frozen=True)
class ReplayResult:
    runs: tuple[TraceRun | TraceFile, ...]
    presets: tuple
    per_input_in_memory: pd.DataFrame | None  # kept only for a replay without an output folder
    per_input_rows: int
    per_run: pd.DataFrame
    boxes: pd.DataFrame  # per run × preset: energy quantiles (p1, p25, p50, p75, p99) and mean, for the box plot
    per_block: pd.DataFrame
    fronts: pd.DataFrame
    matched: pd.DataFrame
    bases: pd.DataFrame
    out: Path | None
    timings: dict = field(default_factory=dict)
    reused_parts: int = 0
    per_input_form: str = "full"
    seeds: pd.DataFrame = field(default_factory=pd.DataFrame)  # per seed group × preset (analysis.paired)
    oracle: pd.DataFrame = field(default_factory=pd.DataFrame)  # the oracle front over the static runs
    headroom: pd.DataFrame = field(default_factory=pd.DataFrame)  # what each adaptive run captures of it
    difficulty: pd.DataFrame = field(default_factory=pd.DataFrame)  # cost on right and wrong inputs
    others: pd.DataFrame = field(default_factory=pd.DataFrame)  # matched.csv's columns for methods not known here

    @property
    def per_input(self) -> pd.DataFrame:
        """The per-input frame: in memory without an output folder, else read from it (large: use with care)."""
        if self.per_input_in_memory is not None:
            return self.per_input_in_memory
        if self.out is None or self.per_input_form == "none":
            raise ValueError("this replay kept no per-input rows (per_input='none')")
        files = sorted((self.out / PER_INPUT_DIR).glob("*.parquet"))
        return pa.concat_tables([pq.read_table(path) for path in files]).to_pandas()


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
    per_input: str = "full",
    chunk_inputs: int = CHUNK_INPUTS,
    workers: int = 0,
    scheduler: str | None = None,
) -> ReplayResult:
    """Replay every run on every preset (default: all shipped presets) and, if ``out`` is given, write the results.

    Raises a ``DfsSimError`` subclass for bad input (traces, presets, output folder) before anything is written.
    ``force`` allows writing into a folder that holds results of other inputs. ``progress=None`` shows a bar only on
    a terminal. The plots are drawn in this process unless ``plot_workers`` asks for more processes (2 halves the
    time on two cores; spawned processes import the caller's main module, so a script needs the usual
    ``if __name__ == "__main__":`` guard) or is a ``PlotWorkers`` the caller started earlier and closes itself (the
    command line starts them before it imports this module). ``per_input`` is "full", "compact" or "none" (the
    module's docstring); ``chunk_inputs`` is how many inputs are replayed at a time. ``workers`` > 0 replays the runs
    on a local Dask cluster of that many processes, ``scheduler`` on an existing one (its workers must see the traces
    and ``out`` at the same paths); each run × preset part is written by the worker that made it, atomically, and a
    rerun reuses it as in this process. Either needs ``out``: the parts are how the results come back.
    """
    if per_input not in PER_INPUT_FORMS:
        raise ConfigError("--per-input", f"must be one of {', '.join(PER_INPUT_FORMS)}, got {per_input!r}")
    if chunk_inputs < 1:
        raise ConfigError("--chunk-inputs", f"must be a positive number of inputs, got {chunk_inputs}")
    if workers < 0:
        raise ConfigError("--workers", f"must be 0 or more, got {workers}")
    if (workers or scheduler) and out is None:
        raise ConfigError("--workers", "a replay on Dask writes its parts to an output folder: give out")
    if plot_workers is None:
        plot_workers = 1
    clock = _Clock()
    runs = tuple(open_traces(traces)) if isinstance(traces, (str, os.PathLike)) else tuple(traces)
    loaded = tuple(load_preset(name) for name in (presets or list_presets()))
    _check_unique([preset.name for preset in loaded], "--presets")
    _check_unique([run.name for run in runs], "traces")
    _warn_if_nothing_to_trim(runs, loaded)
    _warn_if_measured_on_another_geometry(runs, loaded)
    fingerprint = _inputs_fingerprint(runs)
    out_dir = None
    if out is not None:
        out_dir = claim_output_folder(Path(out), fingerprint, force=force, subfolder=PARTS_DIR, command=command)
    clock.lap("read_s")
    try:
        stamp = plots_stamp(fingerprint, loaded) if plots and out_dir is not None else None
        if stamp is not None and out_dir is not None and plots_current(out_dir / PLOTS_DIR, stamp):
            stamp = None
        drawing: AbstractContextManager[PlotWorkers | None]
        if isinstance(plot_workers, PlotWorkers):  # the caller's, which the caller closes
            drawing = nullcontext(plot_workers)
        elif stamp is not None and plot_workers > 1:  # started now, so that matplotlib loads while the replay runs
            drawing = PlotWorkers(plot_workers)
        else:
            drawing = nullcontext()
        with drawing as started:
            job = _Job(runs, loaded, PartStore(out_dir, per_input), chunk_inputs, progress, workers, scheduler)
            return _replay_into(job, fingerprint, stamp, started, command, clock)
    except BaseException as error:  # bad data found mid-stream, an interrupt, a crash: the manifest says so
        if out_dir is not None:
            mark_failed(out_dir, str(error) or type(error).__name__)
        raise
    finally:
        if out_dir is not None:
            release_output_folder(out_dir)


@dataclass(frozen=True)
class _Job:
    runs: tuple
    presets: tuple
    store: PartStore
    chunk_inputs: int
    progress: bool | None
    workers: int = 0
    scheduler: str | None = None


def _replay_into(
    job: _Job, fingerprint: str, plot_stamp: str | None, workers: PlotWorkers | None, command: str, clock: _Clock
) -> ReplayResult:
    """The replay in the order it happens: every run × preset replayed (or its part reused), the per-run frames,
    the comparisons between runs, then the files."""
    summaries, in_memory, reused = _replay_parts(job)
    clock.lap("replay_s")
    per_run, boxes, per_block = _run_frames(job.runs, summaries)
    compared = _comparisons(
        per_run, per_input_costs(job.runs, [p for p in job.presets if not p.dynamic_precision], _tables(job))
    )
    per_input = None
    if job.store.out is None and job.store.form != "none":
        tables = [table for run in job.runs for preset in job.presets for table in in_memory[run.name, preset.name]]
        per_input = pa.concat_tables(tables).to_pandas()
    clock.lap("frames_s")
    result = ReplayResult(
        job.runs,
        job.presets,
        per_input,
        int(per_run["n"].sum()) if job.store.form != "none" else 0,
        per_run,
        boxes,
        per_block,
        fronts_frame(per_run),
        compared["matched"],
        compared["bases"],
        job.store.out,
        clock.laps,
        reused,
        job.store.form,
        **{name: compared[name] for name in ("seeds", "oracle", "headroom", "others", "difficulty")},
    )
    if job.store.out is not None:
        _write_outputs(result, job.store, plot_stamp, workers)
        plots = job.store.out / PLOTS_DIR
        current = plots_current(plots, plots_stamp(fingerprint, job.presets))
        write_report(job.store.out, job.presets, command, plots if current else None)
        clock.lap("write_s")
        _write_manifest(result, job.store.out, fingerprint, command, clock)
    return result


def _run_frames(runs: Sequence, summaries: dict[str, RunTotals]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """per_run (with each run's family, seed group, quantizer and search basis), the energy boxes and per_block."""
    per_run, boxes = per_run_and_boxes([row for run in runs for row in summaries[run.name].rows])
    per_block = per_block_frame(runs, {run.name: summaries[run.name].block_counts for run in runs})
    per_run = per_run.assign(
        family=per_run["run"].map({run.name: run_family(run) for run in runs}),
        seed_group=per_run["run"].map(seed_group),
        quantizer=per_run["run"].map({run.name: run_quantizer(run) for run in runs}),
        search_basis=per_run["run"].map({run.name: run_search_basis(run) for run in runs}),
    )
    return per_run, boxes, per_block


def _comparisons(per_run: pd.DataFrame, paired: PerInputCosts) -> dict[str, pd.DataFrame]:
    """Every comparison between runs, paired on the same inputs where it can be (``analysis.paired``)."""
    matched = paired_columns(matched_comparison(per_run), per_run, paired)
    # methods the project does not know (early exits, channel gating, ...) against static and DFS, a test family apart
    other_methods = sorted(set(per_run["method"]) - {*BASELINES, "dfs"})
    others = paired_columns(
        matched_comparison(per_run, baselines=("static", "dfs"), adaptive=other_methods), per_run, paired
    )
    dfs = per_run[per_run["method"] == "dfs"]
    bases = paired_columns(
        basis_comparison(per_run),
        dfs,
        paired,
        reference="reference_basis",
        by="cost_basis",
        cost="cost",
        accuracy="accuracy",
    )
    oracle = oracle_front(per_run, paired)
    return {
        "matched": matched,
        "others": others,
        "bases": bases,
        "seeds": seed_summary(per_run),
        "oracle": oracle,
        "headroom": headroom_frame(per_run, oracle),
        "difficulty": difficulty_frame(per_run, paired),
    }


def _tables(job: _Job) -> dict[tuple[str, str], CostTable]:
    """The cost table of every run on every preset (from the on-disk cache the replay filled), each distinct table
    loaded once: runs of one network and option list share it."""
    loaded: dict[tuple, CostTable] = {}
    tables = {}
    for run in job.runs:
        for preset in job.presets:
            key = (run.layers.content_hash(), run.options, preset.content_hash())
            if key not in loaded:
                loaded[key] = build_cost_table(run.layers, preset, options=run.options)
            tables[run.name, preset.name] = loaded[key]
    return tables


def _replay_parts(job: _Job) -> tuple[dict[str, RunTotals], dict, int]:
    """Each run's totals on every preset; finished parts are reused, the rest replayed, a run at a time on all its
    unfinished presets at once (here, or as Dask tasks). Without an output folder the per-input tables are kept in
    memory."""
    in_memory: dict[tuple[str, str], list[pa.Table]] = {}
    found: dict[str, dict[str, dict]] = {run.name: {} for run in job.runs}
    work = []
    for run in job.runs:
        for preset in job.presets:
            part = job.store.read(run, preset)
            if part is not None:
                found[run.name][preset.name] = part
        missing = [preset for preset in job.presets if preset.name not in found[run.name]]
        if missing:
            work.append((run, missing))
    reused = len(job.runs) * len(job.presets) - sum(len(missing) for _, missing in work)
    total = sum(run.num_inputs for run, _ in work)
    with tqdm(total=total, desc="replay", unit="input", unit_scale=True, disable=_quiet(job.progress)) as bar:
        if (job.workers or job.scheduler) and work:

            def done(run, parts: dict) -> None:
                found[run.name].update(parts)
                bar.update(run.num_inputs)

            tasks = [(run, (job.store, job.chunk_inputs, run, missing)) for run, missing in work]
            run_tasks(_replay_task, tasks, done, workers=job.workers, scheduler=job.scheduler)
        else:
            tables: dict[tuple, CostTable] = {}  # runs of one network and option list share their tables
            for run, missing in work:
                run_tables = []
                for preset in missing:
                    key = (run.layers.content_hash(), run.options, preset.content_hash())
                    if key not in tables:
                        tables[key] = build_cost_table(run.layers, preset, options=run.options)
                    run_tables.append(tables[key])
                parts = _replay_missing(job.store, job.chunk_inputs, run, missing, run_tables, in_memory, bar.update)
                found[run.name].update(parts)
    summaries = {}
    for run in job.runs:
        parts = found[run.name]
        first = next(iter(parts.values()))
        summaries[run.name] = RunTotals(
            np.asarray(first["block_counts"], dtype=np.int64), [parts[preset.name]["row"] for preset in job.presets]
        )
    return summaries, in_memory, reused


def _replay_task(store: PartStore, chunk_inputs: int, run, presets: list) -> dict[str, dict]:
    """One Dask task: ``run`` on ``presets``, its cost tables built (or read from the cache) on the worker."""
    tables = [build_cost_table(run.layers, preset, options=run.options) for preset in presets]
    return _replay_missing(store, chunk_inputs, run, presets, tables, {}, None)


def _replay_missing(
    store: PartStore, chunk_inputs: int, run, presets: list, tables: list, in_memory: dict, progress
) -> dict[str, dict]:
    """Replay ``run`` on ``presets``; write (or keep) its per-input rows and its parts. Nothing of the run is left
    in the store unless the whole run was read and verified."""
    with PartWriters(store, run, presets, in_memory) as writers:
        totals = replay_run(
            run,
            presets,
            tables,
            write=writers.write if store.form != "none" else None,
            form=store.form if store.form != "none" else "full",
            chunk_inputs=chunk_inputs,
            progress=progress,
        )
    parts = {}
    for preset, row in zip(presets, totals.rows, strict=True):
        part = {"row": row, "block_counts": totals.block_counts.tolist()}
        store.write(run, preset, part)
        parts[preset.name] = part
    return parts


def _write_outputs(result: ReplayResult, store: PartStore, plot_stamp: str | None, workers: PlotWorkers | None) -> None:
    out = store.out
    assert out is not None
    write_table(result.per_run, out / "per_run.parquet")
    atomic_write_text(out / "per_run.csv", result.per_run.to_csv(index=False))
    write_table(result.per_block, out / "per_block.parquet")
    atomic_write_text(out / "fronts.csv", result.fronts.to_csv(index=False))
    atomic_write_text(out / "matched.csv", result.matched.to_csv(index=False))
    atomic_write_text(out / "bases.csv", result.bases.to_csv(index=False))
    for name in ("seeds", "oracle", "headroom", "difficulty", "others"):
        atomic_write_text(out / f"{name}.csv", getattr(result, name).to_csv(index=False))
    atomic_write_text(out / "findings.md", findings_markdown(frames_from_folder(out)))
    if plot_stamp is not None:
        frames = {"per_run": result.per_run, "per_block": result.per_block, "boxes": result.boxes}
        write_plots(frames, out / PLOTS_DIR, plot_stamp, workers)
    store.prune(result.runs, result.presets)


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


def _inputs_fingerprint(runs: Sequence) -> str:
    digest = hashlib.sha256()
    for run in runs:
        digest.update(f"{run.name}:{run.content_hash()}:{run.layers.content_hash()};".encode())
    return digest.hexdigest()[:32]


def _describe_input(run) -> dict:
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
        with run.path.open("rb") as handle:
            entry["sha256"] = hashlib.file_digest(handle, "sha256").hexdigest()
    return entry


def _warn_if_nothing_to_trim(runs: Sequence, presets: Sequence) -> None:
    """A dynamic-precision preset charges the effective precisions traces carry; with none, it replays as its static
    twin would, which is worth a word."""
    dynamic = [preset.name for preset in presets if preset.dynamic_precision]
    if dynamic and not any(run.has_precision for run in runs):
        warnings.warn(
            f"{', '.join(dynamic)}: no trace carries effective precisions (python -m dfs_sim.export "
            "--effective-precision), so these presets replay at each option's static precision",
            stacklevel=3,
        )


def _warn_if_measured_on_another_geometry(runs: Sequence, presets: Sequence) -> None:
    """A trace measured per step (``--precision-measure step``) holds the widths of one preset's steps: its windows,
    lanes, filter set and bits per cycle (Loom's two bits a cycle round each step up to even bits). Charged on a
    dynamic preset with another geometry they are only an approximation, which is worth a word per preset."""
    for preset in presets:
        array = preset.array
        if not preset.dynamic_precision or not isinstance(array, SerialArray) or array.trim_group != "step":
            continue
        geometry = array.step_geometry()
        others = sorted(
            run.name
            for run in runs
            if run.has_precision
            and (measured := run.meta.get("effective_precision") or {}).get("measurement") == "step"
            and any(measured.get(key) != value for key, value in geometry.items())
        )
        if others:
            warnings.warn(
                f"{preset.name}: {len(others)} trace(s) were measured per step on another preset's geometry "
                f"({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); their trimmed costs here are "
                f"approximate (export with --precision-measure step --precision-preset {preset.name})",
                stacklevel=3,
            )


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
