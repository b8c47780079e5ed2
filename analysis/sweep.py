"""Design-space sweeps: where does input-adaptive fractional skipping pay off across hardware?

A sweep spec (TOML) names a base preset and axes by the preset's own keys (``"array.rows"``, ``"buffers.wbuf_kib"``,
``"dram.pj_per_bit"``, ``"clock.freq_mhz"``, ...), expanded as a full product or as a seeded sample. Every point is
validated like a preset file. Each point's cost tables are built (and cached on disk); every run of the traces is
evaluated there, with means taken from option histograms (no per-input pass) and the p99 latency from the replay
kernel. The DFS runs' matched-cost gains over SkipNet and static quantization come from ``matched_comparison``.

Work is partitioned by points. Partitions run in-process (``workers=0``) or on Dask (a local cluster, or an existing
scheduler); by default small sweeps run in-process and larger ones on a local cluster. Each partition is written
atomically as it finishes, and a rerun resumes from the finished ones.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from analysis._output import claim_output_folder, read_table_or_none, release_output_folder, write_manifest, write_table
from analysis.executor import run_tasks
from analysis.matched import BASELINES, matched_comparison
from analysis.replay_kernel import precision_deltas, replay_costs
from analysis.summary import block_fractions
from cost_models import METRICS, CostTable, build_cost_table
from cost_models.block_costs import MODEL_VERSION
from cost_models.preset import PRESET_DIR, Preset, preset_from_dict
from dfs_sim._toml import read_toml
from dfs_sim.errors import ConfigError, did_you_mean
from dfs_sim.traces import TraceRun, read_traces

__all__ = ["SweepSpec", "SweepResult", "load_sweep_spec", "run_sweep", "evaluate_points"]

SPEC_SCHEMA_VERSION = 1
SPEC_KEYS = ("schema_version", "base", "mode", "samples", "seed", "partition_size", "axes", "description")
PARTITIONS_DIR = "partitions"
RESULT_FILE = "sweep.parquet"
FRAME_VERSION = 1


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: the base preset document, the axes, and the expanded points (as preset documents)."""

    source: str
    base: str
    base_document: dict
    mode: str
    samples: int | None
    seed: int
    partition_size: int
    axes: dict[str, tuple]
    description: str = ""

    @property
    def axis_names(self) -> list[str]:
        return list(self.axes)

    def point_values(self) -> list[dict[str, Any]]:
        """Axis values of every point, in a stable order (product order, or a seeded sample of it)."""
        product = [dict(zip(self.axes, values, strict=True)) for values in itertools.product(*self.axes.values())]
        if self.mode == "sample" and self.samples is not None and self.samples < len(product):
            chosen = np.random.default_rng(self.seed).choice(len(product), size=self.samples, replace=False)
            product = [product[index] for index in sorted(chosen)]
        return product

    def point_documents(self) -> list[tuple[int, dict[str, Any], dict]]:
        """(index, axis values, preset document) for every point; names are ``<base>~<index>``."""
        points = []
        for index, values in enumerate(self.point_values()):
            document = _with_values(self.base_document, values)
            document["name"] = f"{self.base_document['name']}~{index:04d}"
            points.append((index, values, document))
        return points

    def content_hash(self) -> str:
        payload = json.dumps(
            [
                self.base_document,
                self.mode,
                self.samples,
                self.seed,
                self.partition_size,
                {key: list(values) for key, values in self.axes.items()},
            ],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SweepResult:
    spec: SweepSpec
    frame: pd.DataFrame
    out: Path | None
    partitions: int
    reused_partitions: int


def load_sweep_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and validate a sweep spec; any problem raises ``ConfigError`` naming the file and the key."""
    path = Path(path)
    data = read_toml(path)
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        hint = did_you_mean(unknown[0], SPEC_KEYS)
        raise ConfigError(path, f"unknown key {unknown[0]!r}{hint}; valid: {', '.join(SPEC_KEYS)}")
    for key in ("schema_version", "base", "axes"):
        if key not in data:
            raise ConfigError(path, f"missing key {key!r}")
    if data["schema_version"] != SPEC_SCHEMA_VERSION:
        raise ConfigError(path, f"key 'schema_version': expected {SPEC_SCHEMA_VERSION}, got {data['schema_version']!r}")
    mode = data.get("mode", "product")
    if mode not in ("product", "sample"):
        raise ConfigError(path, f"key 'mode': expected 'product' or 'sample', got {mode!r}")
    samples = data.get("samples")
    if mode == "sample" and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise ConfigError(path, f"key 'samples': a sample sweep needs a positive integer, got {samples!r}")
    seed = data.get("seed", 0)
    partition_size = data.get("partition_size", 4)
    for key, value in (("seed", seed), ("partition_size", partition_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "seed" else 1):
            raise ConfigError(
                path,
                f"key {key!r}: expected a {'non-negative' if key == 'seed' else 'positive'} integer, got {value!r}",
            )
    base_path = _base_path(str(data["base"]), path)
    try:
        base_document = read_toml(base_path)
    except ConfigError as error:
        raise ConfigError(path, f"key 'base': {error}") from None
    _validated_preset(base_document, f"{path}: key 'base'")
    axes = data["axes"]
    if not isinstance(axes, dict) or not axes:
        raise ConfigError(path, "key 'axes': expected a table with at least one axis")
    checked: dict[str, tuple] = {}
    for key, values in axes.items():
        section, _, name = key.partition(".")
        if not (isinstance(base_document.get(section), dict) and name in base_document[section]):
            raise ConfigError(path, f"key 'axes.\"{key}\"': {key!r} is not a key of preset {base_document['name']!r}")
        if not isinstance(values, list) or not values:
            raise ConfigError(path, f"key 'axes.\"{key}\"': expected a non-empty list of values")
        if len(set(map(repr, values))) != len(values):
            raise ConfigError(path, f"key 'axes.\"{key}\"': values repeat")
        for value in values:
            _validated_preset(_with_values(base_document, {key: value}), f"{path}: key 'axes.\"{key}\"' = {value!r}")
        checked[key] = tuple(values)
    spec = SweepSpec(
        str(path),
        str(data["base"]),
        base_document,
        mode,
        samples if mode == "sample" else None,
        seed,
        partition_size,
        checked,
        str(data.get("description", "")),
    )
    for index, values, document in spec.point_documents():
        _validated_preset(document, f"{path}: point {index} {values}")
    return spec


def evaluate_points(
    points: Sequence[tuple[int, dict, dict]], runs: Sequence[TraceRun], cache_dir: str | None = None
) -> pd.DataFrame:
    """One row per point × run: axis values, accuracy, mean and p99 latency, mean energy and its parts, and for
    DFS runs the matched-cost gains over SkipNet and static at that point."""
    frames = []
    fractions = [block_fractions(run) for run in runs]  # the same at every point
    for index, values, document in points:
        preset = preset_from_dict(copy.deepcopy(document), source=document["name"])
        tables: dict[tuple, CostTable] = {}  # runs that share a layer table and options share a cost table
        rows = []
        for run, run_fractions in zip(runs, fractions, strict=True):
            key = (run.layers.content_hash(), run.options)
            if key not in tables:
                tables[key] = build_cost_table(run.layers, preset, options=run.options, cache_dir=cache_dir)
            table = tables[key]
            means = table.fixed + np.einsum("bk,bkm->m", run_fractions, table.block)
            cycles = replay_costs(run.codes, table, check_codes=False)[:, 0]  # checked when the run was made
            if table.effective is not None and run.precision is not None:  # a dynamic-precision point
                change = np.empty((run.num_inputs, len(METRICS)))
                precision_deltas(run.codes, run.precision, table.precision_deltas, change)
                means = means + change.mean(axis=0)
                cycles = cycles + change[:, METRICS.index("cycles")]
            row = {
                "point": index,
                "preset": preset.name,
                **{f"axis:{key}": value for key, value in values.items()},
                "run": run.name,
                "method": run.method,
                "budget": run.budget,
                "n": run.num_inputs,
                "accuracy": run.accuracy,
            }
            row.update({f"{metric}_mean": value for metric, value in zip(METRICS, means, strict=True)})
            row["energy_pj_mean"] = means[1] + means[2] + means[3]
            row["latency_us_mean"] = float(preset.cycles_to_us(means[0]))
            row["latency_us_p99"] = float(preset.cycles_to_us(np.percentile(cycles, 99)))
            rows.append(row)
        frame = pd.DataFrame(rows)
        frames.append(frame.merge(_gains(frame), on="run", how="left"))
    return pd.concat(frames, ignore_index=True)


def _gains(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per DFS run: the energy (latency) a baseline needs for the same accuracy over DFS's, and the accuracy DFS
    gains at the same energy; NaN where the baseline's front does not reach."""
    matched = matched_comparison(per_run)
    columns = {"run": per_run.loc[per_run["method"] == "dfs", "run"].tolist()}
    frame = pd.DataFrame(columns)
    for baseline in BASELINES:
        for axis, short in (("energy_pj_mean", "energy"), ("latency_us_mean", "latency")):
            rows = matched[(matched["baseline"] == baseline) & (matched["axis"] == axis)].set_index("run")
            frame[f"{short}_ratio_vs_{baseline}"] = frame["run"].map(rows["cost_ratio"]).astype(float)
            if short == "energy":
                frame[f"accuracy_gain_vs_{baseline}"] = frame["run"].map(rows["accuracy_gain"]).astype(float)
    return frame


# A local Dask cluster takes 3-4 s to start on the 2-core CI machine class, the time this process needs for about
# 400 evaluations of one point on one run (ResNet-38, 8-14 ms each): smaller sweeps run here by default.
IN_PROCESS_EVALUATIONS = 400


def default_workers(points: int, runs: int) -> int:
    """Workers of a local cluster for a sweep of ``points`` × ``runs`` evaluations still to do (0: in-process)."""
    return 0 if points * runs <= IN_PROCESS_EVALUATIONS else min(2, os.cpu_count() or 1)


def run_sweep(
    spec: SweepSpec | str | os.PathLike,
    traces: str | os.PathLike | Sequence[TraceRun],
    *,
    out: str | os.PathLike | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    max_partitions: int | None = None,
    force: bool = False,
    progress: bool | None = None,
    command: str = "",
) -> SweepResult:
    """Evaluate every point of ``spec`` on every run; ``workers=0`` runs in this process, otherwise on Dask
    (default: ``default_workers`` of the points still to evaluate; ``scheduler`` always uses that cluster).

    With ``out``, each partition is written atomically to ``OUT/partitions/`` as it finishes and reused by a rerun;
    ``max_partitions`` stops after that many new partitions (an interruption on purpose, for tests).
    """
    spec = spec if isinstance(spec, SweepSpec) else load_sweep_spec(spec)
    runs = list(read_traces(traces)) if isinstance(traces, (str, os.PathLike)) else list(traces)
    points = spec.point_documents()
    chunks = [points[start : start + spec.partition_size] for start in range(0, len(points), spec.partition_size)]
    fingerprint = _fingerprint(spec, runs)
    out_dir = None
    if out is not None:
        out_dir = claim_output_folder(Path(out), fingerprint, force=force, subfolder=PARTITIONS_DIR, command=command)
    try:
        return _sweep_into(
            spec, runs, points, chunks, fingerprint, out_dir, workers, scheduler, max_partitions, progress, command
        )
    finally:
        if out_dir is not None:
            release_output_folder(out_dir)


def _sweep_into(
    spec,
    runs,
    points,
    chunks,
    fingerprint: str,
    out_dir: Path | None,
    workers: int | None,
    scheduler: str | None,
    max_partitions: int | None,
    progress,
    command: str,
) -> SweepResult:
    names = [_partition_name(chunk, fingerprint) for chunk in chunks]
    finished = {name: _read_partition(out_dir / PARTITIONS_DIR / name) for name in names} if out_dir else {}
    done = {name for name, frame in finished.items() if frame is not None}
    todo = [(chunk, name) for chunk, name in zip(chunks, names, strict=True) if name not in done]
    if max_partitions is not None:
        todo = todo[:max_partitions]
    target = (out_dir / PARTITIONS_DIR) if out_dir is not None else None
    results: dict[str, pd.DataFrame] = {}
    if workers is None:
        workers = default_workers(sum(len(chunk) for chunk, _ in todo), len(runs))
    if todo:
        results = _execute(todo, runs, target, workers, scheduler, progress)
    if max_partitions is not None and len(done) + len(results) < len(chunks):
        return SweepResult(spec, pd.DataFrame(), out_dir, len(chunks), len(done))
    frames = [results[name] if name in results else finished[name] for name in names]
    frame = pd.concat(frames, ignore_index=True)
    if out_dir is not None:
        write_table(frame, out_dir / RESULT_FILE)
        from analysis import sweep_plots

        sweep_plots.write_sweep_plots(frame, spec.axis_names, out_dir / "plots")
        write_manifest(
            out_dir,
            {
                "command": command,
                "spec": spec.source,
                "spec_hash": spec.content_hash(),
                "inputs_fingerprint": fingerprint,
                "points": len(points),
                "partitions": len(chunks),
                "reused_partitions": len(done),
                "runs": [run.name for run in runs],
            },
        )
    return SweepResult(spec, frame, out_dir, len(chunks), len(done))


def _execute(todo, runs, target: Path | None, workers: int, scheduler: str | None, progress) -> dict:
    bar = tqdm(
        total=len(todo), desc="sweep partitions", unit="part", disable=None if progress is None else not progress
    )
    results = {}

    def done(name: str, frame: pd.DataFrame) -> None:
        results[name] = frame
        bar.update()

    tasks = [(name, (chunk, None if target is None else str(target / name))) for chunk, name in todo]
    try:
        run_tasks(_evaluate_partition, tasks, done, workers=workers, scheduler=scheduler, shared={"runs": runs})
    finally:
        bar.close()
    return results


def _evaluate_partition(chunk, path: str | None, runs) -> pd.DataFrame:
    frame = evaluate_points(chunk, runs)
    if path is not None:
        write_table(frame, Path(path))
    return frame


def _with_values(document: dict, values: dict[str, Any]) -> dict:
    changed = copy.deepcopy(document)
    for key, value in values.items():
        section, _, name = key.partition(".")
        changed[section][name] = value
    return changed


def _validated_preset(document: dict, source: str) -> Preset:
    return preset_from_dict(copy.deepcopy(document), source=source)


def _base_path(base: str, spec_path: Path) -> Path:
    if base.endswith(".toml"):
        candidate = Path(base)
        return candidate if candidate.is_absolute() else spec_path.parent / candidate
    return PRESET_DIR / f"{base}.toml"


def _fingerprint(spec: SweepSpec, runs: Sequence[TraceRun]) -> str:
    digest = hashlib.sha256(f"{FRAME_VERSION}:{MODEL_VERSION}:{spec.content_hash()}".encode())
    for run in runs:
        digest.update(f"{run.name}:{run.content_hash()};".encode())
    return digest.hexdigest()[:24]


def _partition_name(chunk, fingerprint: str) -> str:
    return f"part-{chunk[0][0]:05d}-{chunk[-1][0]:05d}-{fingerprint[:12]}.parquet"


def _read_partition(path: Path) -> pd.DataFrame | None:
    """A finished partition, or None when it is missing or damaged (it is then computed again, never trusted)."""
    table = read_table_or_none(path)
    return None if table is None else table.to_pandas()
