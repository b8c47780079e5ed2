"""The replay's resumable part store: one part per run × preset under an output folder.

A part is the run's per-run summary on the preset (``OUT/parts/NAME.json``: its per_run row and decision counts)
and, as the per-input form asks, its per-input rows (``OUT/per_input/NAME.parquet``). ``NAME`` is keyed by
everything the numbers depend on (``part_name``), so a part is reused only by a replay that would compute the same.
The rows are written while the run streams (``PartWriters``) into temporary files renamed when the run ends well;
the summary is written last, atomically, so a part whose JSON exists is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cost_models.block_costs import MODEL_VERSION
from dfs_sim._atomic import atomic_write_text

__all__ = ["FRAME_VERSION", "PARTS_DIR", "PER_INPUT_DIR", "PartStore", "PartWriters", "part_name"]

PARTS_DIR = "parts"
PER_INPUT_DIR = "per_input"  # the per-input rows: one file per run × preset
FRAME_VERSION = 2  # bump when a part's numbers change for the same inputs, so that stored parts are made again


def part_name(run, preset, form: str) -> str:
    """The files of one run × preset (no suffix), keyed by everything their numbers depend on."""
    payload = (
        f"{FRAME_VERSION}:{MODEL_VERSION}:{run.content_hash()}:{run.layers.content_hash()}:{run.options}:"
        f"{preset.content_hash()}:{form}"
    )
    return f"{run.name}@{preset.name}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class PartStore:
    """Where the parts of a replay in per-input ``form`` go (``out`` None: nowhere, every part is computed); small
    and picklable, so a Dask worker writes its own parts."""

    out: Path | None
    form: str

    def path(self, run, preset, suffix: str) -> Path:
        assert self.out is not None
        folder = self.out / (PER_INPUT_DIR if suffix == ".parquet" else PARTS_DIR)
        return folder / (part_name(run, preset, self.form) + suffix)

    def read(self, run, preset) -> dict | None:
        """A finished part of ``run`` on ``preset``: its summary, when it (and its per-input file, if the form has
        one) exists and reads back; None otherwise (it is then computed again, never trusted)."""
        if self.out is None:
            return None
        summary = self.path(run, preset, ".json")
        if self.form != "none" and not self.path(run, preset, ".parquet").is_file():
            return None
        try:
            part = json.loads(summary.read_text())
        except (OSError, ValueError):
            return None
        return part if isinstance(part, dict) and {"row", "block_counts"} <= set(part) else None

    def write(self, run, preset, part: dict) -> None:
        """The summary, written last: its existence marks the part complete."""
        if self.out is not None:
            atomic_write_text(self.path(run, preset, ".json"), json.dumps(part) + "\n")  # in column order

    def prune(self, runs: Sequence, presets: Sequence) -> None:
        """Remove every part that is not of ``runs`` on ``presets`` in this form (older inputs, code or forms)."""
        assert self.out is not None
        keep = {part_name(run, preset, self.form) for run in runs for preset in presets}
        for folder in (PARTS_DIR, PER_INPUT_DIR):
            for stale in (self.out / folder).glob("*.*"):
                if stale.name.rpartition(".")[0] not in keep:
                    stale.unlink()
        (self.out / "per_input.parquet").unlink(missing_ok=True)  # the one-file form of dfs-sim before per_input/


class PartWriters:
    """One Parquet writer per preset for a run's per-input rows, into temporary files renamed when the run ends well
    (and deleted when it does not); without an output folder, the tables are kept in ``in_memory``.

    Writing (encoding and compressing) runs in a thread of its own, so that it overlaps the replay of the next chunk
    (a second writing thread measured no faster on two cores); at most ``PENDING`` tables wait for it, which bounds
    the memory they hold."""

    PENDING = 4

    def __init__(self, store: PartStore, run, presets: list, in_memory: dict):
        self.store, self.run, self.presets, self.in_memory = store, run, presets, in_memory
        self.writers: list[pq.ParquetWriter | None] = [None] * len(presets)
        self.paths = [store.path(run, preset, ".parquet") for preset in presets] if store.out is not None else []
        self.temporaries = [path.with_name(f".{path.name}.tmp") for path in self.paths]
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="per-input-writer")
        self.pending: deque[Future] = deque()

    def write(self, index: int, table: pa.Table) -> None:
        if self.store.out is None:
            self.in_memory.setdefault((self.run.name, self.presets[index].name), []).append(table)
            return
        while len(self.pending) >= self.PENDING:
            self.pending.popleft().result()
        self.pending.append(self.thread.submit(self._write, index, table))

    def _write(self, index: int, table: pa.Table) -> None:
        writer = self.writers[index]
        if writer is None:
            self.temporaries[index].parent.mkdir(exist_ok=True)
            if self.store.form == "full":
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

    def __enter__(self) -> PartWriters:
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
