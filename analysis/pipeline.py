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
import json
import os
import time
import warnings
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
from analysis.findings import findings_markdown, frames_from_folder
from analysis.frames import per_block_frame
from analysis.matched import BASELINES, matched_comparison
from analysis.paired import (
    difficulty_frame,
    headroom_frame,
    oracle_front,
    paired_columns,
    per_input_costs,
    seed_group,
    seed_summary,
)
from analysis.pareto import pareto_front
from analysis.plot_workers import FORMATS as PLOT_FORMATS, REPLAY_PLOTS, PlotWorkers, draw_replay_plots, plots_source
from analysis.report import write_report
from analysis.streaming import PER_INPUT_FORMS, QUANTILES, RunTotals, replay_run
from cost_models import CostTable, build_cost_table, list_presets, load_preset
from cost_models.cost_table import MODEL_VERSION
from dfs_sim._atomic import atomic_write_text
from dfs_sim.errors import ConfigError
from dfs_sim.traces import CHUNK_INPUTS, TraceFile, TraceRun, open_traces

__all__ = ["ReplayResult", "replay", "PARTS_DIR", "MANIFEST"]

PARTS_DIR = "parts"
PLOTS_DIR = "plots"
PER_INPUT_DIR = "per_input"  # the per-input rows: one file per run × preset
# Bump when the per-input frame's columns or meaning change, so that old parts are not reused.
FRAME_VERSION = 2
PLOT_VERSION = 9  # bump when a plot changes, so that stored plots are drawn again
# quantiles that per_run reports; the others only draw the per-input energy boxes (the ``boxes`` frame)
PER_RUN_QUANTILES = (50, 99)
PLOTS_STAMP = ".frames.sha256"
FRONT_AXES = {"energy": "energy_pj_mean", "latency": "latency_us_mean"}


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
    fingerprint = _inputs_fingerprint(runs)
    out_dir = None
    if out is not None:
        out_dir = claim_output_folder(Path(out), fingerprint, force=force, subfolder=PARTS_DIR, command=command)
    clock.lap("read_s")
    try:
        stamp = _plots_stamp(fingerprint, loaded) if plots and out_dir is not None else None
        if stamp is not None and out_dir is not None and _plots_current(out_dir / PLOTS_DIR, stamp):
            stamp = None
        drawing: AbstractContextManager[PlotWorkers | None]
        if isinstance(plot_workers, PlotWorkers):  # the caller's, which the caller closes
            drawing = nullcontext(plot_workers)
        elif stamp is not None and plot_workers > 1:  # started now, so that matplotlib loads while the replay runs
            drawing = PlotWorkers(plot_workers)
        else:
            drawing = nullcontext()
        with drawing as started:
            job = _Job(runs, loaded, out_dir, per_input, chunk_inputs, progress, workers, scheduler)
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
    out: Path | None
    form: str
    chunk_inputs: int
    progress: bool | None
    workers: int = 0
    scheduler: str | None = None


def _replay_into(
    job: _Job, fingerprint: str, plot_stamp: str | None, workers: PlotWorkers | None, command: str, clock: _Clock
) -> ReplayResult:
    summaries, in_memory, reused = _replay_parts(job)
    clock.lap("replay_s")
    rows = [row for run in job.runs for row in summaries[run.name].rows]
    per_run, boxes = _per_run_and_boxes(rows)
    per_block = per_block_frame(job.runs, {run.name: summaries[run.name].block_counts for run in job.runs})
    per_run = per_run.assign(
        family=per_run["run"].map({run.name: run_family(run) for run in job.runs}),
        seed_group=per_run["run"].map(seed_group),
        quantizer=per_run["run"].map({run.name: run_quantizer(run) for run in job.runs}),
        search_basis=per_run["run"].map({run.name: run_search_basis(run) for run in job.runs}),
    )
    fronts = _fronts(per_run)
    paired = per_input_costs(job.runs, [p for p in job.presets if not p.dynamic_precision], _tables(job))
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
    per_input = None
    if job.out is None and job.form != "none":
        tables = [table for run in job.runs for preset in job.presets for table in in_memory[run.name, preset.name]]
        per_input = pa.concat_tables(tables).to_pandas()
    clock.lap("frames_s")
    result = ReplayResult(
        job.runs,
        job.presets,
        per_input,
        int(per_run["n"].sum()) if job.form != "none" else 0,
        per_run,
        boxes,
        per_block,
        fronts,
        matched,
        bases,
        job.out,
        clock.laps,
        reused,
        job.form,
        seeds=seed_summary(per_run),
        oracle=oracle,
        headroom=headroom_frame(per_run, oracle),
        others=others,
        difficulty=difficulty_frame(per_run, paired),
    )
    if job.out is not None:
        _write_outputs(result, job.out, plot_stamp, workers)
        plots = job.out / PLOTS_DIR
        current = _plots_current(plots, _plots_stamp(fingerprint, job.presets))
        write_report(job.out, job.presets, command, plots if current else None)
        clock.lap("write_s")
        _write_manifest(result, job.out, fingerprint, command, clock)
    return result


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


def run_family(run) -> str:
    """What kind of run it is, finer than its method: static runs are post-training ("static"), quantization-aware
    ("static QAT") or per-layer mixed precision ("mixed precision"); other runs are their method."""
    if run.method != "static":
        return run.method
    if "mixed_precision" in run.meta or len(set(run.meta.get("static_options") or [None])) > 1:
        return "mixed precision"
    return "static QAT" if run.meta.get("static_training") == "qat" else "static"


def run_search_basis(run) -> str:
    """What a mixed-precision run's widths were searched on ("bitfusion_eyeriss energy"), "" for other runs."""
    searched = run.meta.get("mixed_precision")
    basis = searched.get("cost_basis") if isinstance(searched, dict) else None
    if isinstance(basis, dict) and {"preset", "metric"} <= set(basis):
        return f"{basis['preset']} {basis['metric']}"
    return ""


def run_quantizer(run) -> str:
    """The quantizer a run's quantized options used ("" when it quantizes nothing; traces from before the choice of
    quantizer name none and used the authors' one, ``dfs_authors``)."""
    used = run.options
    static = run.meta.get("static_option") if run.method == "static" else None
    if isinstance(static, int) and not isinstance(static, bool) and 0 <= static < len(run.options):
        used = (run.options[static],)  # a static trace from before the choice lists every DFS option, runs one
    if all(option.is_skip or option.float for option in used):
        return ""
    return str(run.meta.get("quantizer", "dfs_authors"))


def _per_run_and_boxes(rows: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per_run frame (p50 and p99 only) and the energy boxes (every quantile and the mean)."""
    frame = pd.DataFrame(rows)
    fractions = [column for column in frame.columns if column.startswith("frac_")]
    frame[fractions] = frame[fractions].fillna(0.0)
    box_columns = [f"energy_pj_p{q}" for q in QUANTILES]
    boxes = frame[["run", "method", "preset", "energy_pj_mean", *box_columns]].copy()
    dropped = [f"{name}_p{q}" for name in ("energy_pj", "latency_us") for q in QUANTILES if q not in PER_RUN_QUANTILES]
    return frame.drop(columns=dropped), boxes


def _replay_parts(job: _Job) -> tuple[dict[str, RunTotals], dict, int]:
    """Each run's totals on every preset; finished parts under ``job.out`` are reused, the rest replayed, a run at a
    time on all its unfinished presets at once. Without an output folder the per-input tables are kept in memory."""
    summaries: dict[str, RunTotals] = {}
    in_memory: dict[tuple[str, str], list[pa.Table]] = {}
    reused = 0
    tables: dict[tuple, CostTable] = {}
    todo = []
    for run in job.runs:
        read = {preset.name: _read_part(job, run, preset) for preset in job.presets}
        found = {name: part for name, part in read.items() if part is not None}
        missing = [preset for preset in job.presets if preset.name not in found]
        reused += len(job.presets) - len(missing)
        todo.append((run, found, missing))
    total = sum(run.num_inputs for run, _, missing in todo if missing)
    with tqdm(total=total, desc="replay", unit="input", unit_scale=True, disable=_quiet(job.progress)) as bar:
        work = [(run, missing) for run, _, missing in todo if missing]
        if (job.workers or job.scheduler) and work:
            _replay_on_dask(job, work, todo, bar.update)
        else:
            for run, found, missing in todo:
                if missing:
                    run_tables = []
                    for preset in missing:
                        key = (run.layers.content_hash(), run.options, preset.content_hash())
                        if key not in tables:
                            tables[key] = build_cost_table(run.layers, preset, options=run.options)
                        run_tables.append(tables[key])
                    found.update(_replay_missing(job, run, missing, run_tables, in_memory, bar.update))
    for run, found, _ in todo:
        first = next(iter(found.values()))
        summaries[run.name] = RunTotals(
            np.asarray(first["block_counts"], dtype=np.int64), [found[preset.name]["row"] for preset in job.presets]
        )
    return summaries, in_memory, reused


def _replay_on_dask(job: _Job, work: list, todo: list, progress) -> None:
    """Each run's missing presets as one Dask task (the run read and replayed on the worker, its parts written
    there); the summaries that come back join ``todo``'s found parts."""
    from dask.distributed import Client, LocalCluster, as_completed

    found = {run.name: parts for run, parts, _ in todo}
    cluster = None
    if job.scheduler is None:
        cluster = LocalCluster(n_workers=job.workers, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        with Client(job.scheduler if job.scheduler is not None else cluster) as client:
            remote = _Job((), (), job.out, job.form, job.chunk_inputs, False)
            futures = {client.submit(_replay_task, remote, run, missing, pure=False): run for run, missing in work}
            for future in as_completed(futures):
                run = futures[future]
                found[run.name].update(future.result())
                progress(run.num_inputs)
    finally:
        if cluster is not None:
            cluster.close()


def _replay_task(job: _Job, run, presets: list) -> dict[str, dict]:
    """One Dask task: ``run`` on ``presets``, its cost tables built (or read from the cache) on the worker."""
    tables = [build_cost_table(run.layers, preset, options=run.options) for preset in presets]
    return _replay_missing(job, run, presets, tables, {}, None)


def _replay_missing(job: _Job, run, presets: list, tables: list, in_memory: dict, progress) -> dict[str, dict]:
    """Replay ``run`` on ``presets``; write (or keep) its per-input rows and its parts. Nothing of the run is left
    under ``job.out`` unless the whole run was read and verified."""
    writers = _PartWriters(job, run, presets, in_memory)
    with writers:
        totals = replay_run(
            run,
            presets,
            tables,
            write=writers.write if job.form != "none" else None,
            form=job.form if job.form != "none" else "full",
            chunk_inputs=job.chunk_inputs,
            progress=progress,
        )
    parts = {}
    for preset, row in zip(presets, totals.rows, strict=True):
        part = {"row": row, "block_counts": totals.block_counts.tolist()}
        if job.out is not None:  # the summary is written last: a part whose JSON exists is complete
            atomic_write_text(_part_path(job, run, preset, ".json"), json.dumps(part) + "\n")  # in column order
        parts[preset.name] = part
    return parts


class _PartWriters:
    """One Parquet writer per preset for a run's per-input rows, into temporary files renamed when the run ends well
    (and deleted when it does not); without an output folder, the tables are kept in ``in_memory``.

    Writing (encoding and compressing) runs in a thread of its own, so that it overlaps the replay of the next chunk
    (a second writing thread measured no faster on two cores); at most ``PENDING`` tables wait for it, which bounds
    the memory they hold."""

    PENDING = 4

    def __init__(self, job: _Job, run, presets: list, in_memory: dict):
        self.job, self.run, self.presets, self.in_memory = job, run, presets, in_memory
        self.writers: list[pq.ParquetWriter | None] = [None] * len(presets)
        self.paths = [_part_path(job, run, preset, ".parquet") for preset in presets] if job.out is not None else []
        self.temporaries = [path.with_name(f".{path.name}.tmp") for path in self.paths]
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="per-input-writer")
        self.pending: deque[Future] = deque()

    def write(self, index: int, table: pa.Table) -> None:
        if self.job.out is None:
            self.in_memory.setdefault((self.run.name, self.presets[index].name), []).append(table)
            return
        while len(self.pending) >= self.PENDING:
            self.pending.popleft().result()
        self.pending.append(self.thread.submit(self._write, index, table))

    def _write(self, index: int, table: pa.Table) -> None:
        writer = self.writers[index]
        if writer is None:
            self.temporaries[index].parent.mkdir(exist_ok=True)
            if self.job.form == "full":
                writer = pq.ParquetWriter(self.temporaries[index], table.schema, compression="zstd")
            else:
                # compact rows: statistics only for input_id (what a reader filters on), 20% less time to write;
                # input_id delta-encoded (ids mostly ascend, so the deltas pack into few bits), a third less again
                writer = pq.ParquetWriter(
                    self.temporaries[index],
                    table.schema,
                    compression="zstd",
                    write_statistics=["input_id"],
                    use_dictionary=[name for name in table.column_names if name != "input_id"],  # type: ignore[arg-type]  # a list of columns, as pyarrow documents; its stub says bool
                    column_encoding={"input_id": "DELTA_BINARY_PACKED"},
                )
            self.writers[index] = writer
        writer.write_table(table)

    def __enter__(self) -> _PartWriters:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        finished = kind is None
        try:
            while self.pending:
                self.pending.popleft().result()
        except BaseException:
            finished = False
            raise
        finally:
            self.thread.shutdown(wait=True, cancel_futures=True)
            for writer in self.writers:
                if writer is not None:
                    writer.close()
            for temporary, path in zip(self.temporaries, self.paths, strict=True):
                if finished and temporary.exists():
                    os.replace(temporary, path)
                else:
                    temporary.unlink(missing_ok=True)


def _part_path(job: _Job, run, preset, suffix: str) -> Path:
    assert job.out is not None
    folder = job.out / (PER_INPUT_DIR if suffix == ".parquet" else PARTS_DIR)
    return folder / (_part_name(run, preset, job.form) + suffix)


def _read_part(job: _Job, run, preset) -> dict | None:
    """A finished part of ``run`` on ``preset``: its summary, when it (and its per-input file, if the form has one)
    exists and reads back; None otherwise (it is then computed again, never trusted)."""
    if job.out is None:
        return None
    summary = _part_path(job, run, preset, ".json")
    if job.form != "none" and not _part_path(job, run, preset, ".parquet").is_file():
        return None
    try:
        part = json.loads(summary.read_text())
    except (OSError, ValueError):
        return None
    return part if isinstance(part, dict) and {"row", "block_counts"} <= set(part) else None


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
    for name in ("seeds", "oracle", "headroom", "difficulty", "others"):
        atomic_write_text(out / f"{name}.csv", getattr(result, name).to_csv(index=False))
    atomic_write_text(out / "findings.md", findings_markdown(frames_from_folder(out)))
    if plot_stamp is not None:
        _write_plots(result, out / PLOTS_DIR, plot_stamp, workers)
    keep = {_part_name(run, preset, result.per_input_form) for run in result.runs for preset in result.presets}
    for folder in (PARTS_DIR, PER_INPUT_DIR):
        for stale in (out / folder).glob("*.*"):
            if stale.name.rpartition(".")[0] not in keep:
                stale.unlink()
    (out / "per_input.parquet").unlink(missing_ok=True)  # the one-file form of dfs-sim before per_input/


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
    frames = {"per_run": result.per_run, "per_block": result.per_block, "boxes": result.boxes}
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


def _inputs_fingerprint(runs: Sequence) -> str:
    digest = hashlib.sha256()
    for run in runs:
        digest.update(f"{run.name}:{run.content_hash()}:{run.layers.content_hash()};".encode())
    return digest.hexdigest()[:32]


def _part_name(run, preset, form: str) -> str:
    """The files of one run × preset (no suffix), keyed by everything their numbers depend on."""
    payload = (
        f"{FRAME_VERSION}:{MODEL_VERSION}:{run.content_hash()}:{run.layers.content_hash()}:{run.options}:"
        f"{preset.content_hash()}:{form}"
    )
    return f"{run.name}@{preset.name}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


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
