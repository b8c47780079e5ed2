"""The trace format (docs/design.md §2): one Parquet file per run, one row per evaluated input.

Columns: ``input_id`` (int64), ``label`` (int16), ``pred`` (int16), ``confidence`` (float32, the softmax maximum) and
one uint8 column per gated block, ``block_00``, ``block_01``, ..., holding the option code the gate chose. The schema
metadata key ``dfs_sim`` holds JSON with the run's description, its option list and its layer table.

Format 3 adds optional effective precisions: one uint8 column per gated block, ``precision_00``, ..., all or none,
holding the activation precision the block's inputs actually needed at the chosen option, in eighths of a bit (the
mean over groups of 16 activations of the bits left after trimming leading zeros; ``dfs_sim.model.precision``);
0 where nothing was measured (skip, full precision). Version 2 files (no such columns) read unchanged.

Format 4 opens the contract to any dynamic network: ``method`` is any name (the known ones, ``METHODS``, keep
their special handling in the analysis; others are a family of their own), ``model`` needs only ``dataset`` and
``num_classes`` (``arch``, ``depth`` and ``input_size`` are free-form and optional), and options may run a unit at a
fraction of its width (``dfs_sim.options``). Versions 2 and 3 read unchanged: their contract is a special case.

Integrity: pages are written with checksums that are verified on read, and a hash of the table's contents (and of the
metadata) is stored in the metadata and checked, so a flipped byte is an error rather than silently different data.
Every check that fails raises ``TraceFormatError`` with a one-line message naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dfs_sim._atomic import atomic_path
from dfs_sim.errors import LayerTableError, TraceFormatError
from dfs_sim.layer_table import ConvLayer, LayerTable
from dfs_sim.options import Option, options_from_meta, options_to_meta, parse_options
from dfs_sim.provenance import command_line, git_commit, utc_now, versions

__all__ = [
    "FORMAT_VERSION",
    "METADATA_KEY",
    "COST_BASIS_METRICS",
    "METHODS",
    "CHUNK_INPUTS",
    "TraceFile",
    "TraceRun",
    "TraceFormatError",
    "arrow_columns",
    "block_column",
    "precision_column",
    "make_meta",
    "new_trace",
    "open_trace",
    "open_traces",
    "read_trace",
    "read_traces",
    "upgraded_meta",
    "write_trace",
]

FORMAT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
METADATA_KEY = b"dfs_sim"
METHODS = ("dfs", "dfs_binary", "skipnet", "static")  # the methods the analysis knows; any other name is allowed
METHOD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
CHUNK_INPUTS = 1 << 18  # inputs per chunk when a trace is streamed: smaller measured slower, larger no faster
COST_BASIS_METRICS = ("energy", "latency")  # what a budget on a preset is measured in (cost_models.budget)
BLOCK_PREFIX = "block_"
PRECISION_PREFIX = "precision_"
PRECISION_STEPS = 8  # effective precisions are stored in eighths of a bit
CODE_DTYPE = np.uint8
VALUE_COLUMNS: dict[str, pa.DataType] = {
    "input_id": pa.int64(),
    "label": pa.int16(),
    "pred": pa.int16(),
    "confidence": pa.float32(),
}
REQUIRED_META = (
    "format_version",
    "method",
    "budget",
    "model",
    "options",
    "layers",
    "seed",
    "versions",
    "git_commit",
    "command",
    "created",
    "content_hash",
)
REQUIRED_MODEL = ("dataset", "num_classes")  # arch, depth, input_size: optional, free-form


def block_column(block: int) -> str:
    return f"{BLOCK_PREFIX}{block:02d}"


def precision_column(block: int) -> str:
    return f"{PRECISION_PREFIX}{block:02d}"


class _RunMeta:
    """What a run's metadata says about it, for the in-memory run and the streamed file alike."""

    meta: dict

    @property
    def method(self) -> str:
        return self.meta["method"]

    @property
    def budget(self) -> float | None:
        return self.meta["budget"]


@dataclass(frozen=True, eq=False)
class TraceRun(_RunMeta):
    """One run's per-input decisions and outcomes, with its metadata as a dict.

    ``codes`` is (N inputs × B gated blocks) uint8 in C order; the other arrays have length N. ``precision``, when
    the export measured it, is (N × B) uint8 as well: each decision's effective activation precision in eighths of a
    bit (0: not measured). A run is immutable: its arrays are read-only views (the caller's arrays are left
    writable), so its content hash is computed once.
    """

    meta: dict
    codes: np.ndarray
    input_id: np.ndarray
    label: np.ndarray
    pred: np.ndarray
    confidence: np.ndarray
    path: Path | None = None
    precision: np.ndarray | None = None
    layers: LayerTable = field(init=False, repr=False)
    options: tuple[Option, ...] = field(init=False, repr=False)
    _parsed: InitVar[tuple[LayerTable, tuple[Option, ...]] | None] = None  # read_trace's parse of ``meta``

    def __post_init__(self, _parsed) -> None:
        source = self.path if self.path is not None else "trace"
        layers, options = _parsed if _parsed is not None else _parse_meta(self.meta, source)
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "options", options)
        arrays = {"codes": np.ascontiguousarray(self.codes, dtype=CODE_DTYPE)}
        if self.precision is not None:
            arrays["precision"] = np.ascontiguousarray(self.precision, dtype=CODE_DTYPE)
        for name, dtype in (
            ("input_id", np.int64),
            ("label", np.int16),
            ("pred", np.int16),
            ("confidence", np.float32),
        ):
            arrays[name] = np.asarray(getattr(self, name), dtype=dtype)
        for name, array in arrays.items():
            view = array.view()
            view.flags.writeable = False
            object.__setattr__(self, name, view)
        _check_values(self, source)

    @property
    def name(self) -> str:
        """The run's name: the file's stem, or ``meta['name']`` for a run not read from a file."""
        return self.path.stem if self.path is not None else str(self.meta.get("name", "run"))

    @property
    def num_inputs(self) -> int:
        return int(self.codes.shape[0])

    @property
    def num_blocks(self) -> int:
        return int(self.codes.shape[1])

    @property
    def has_precision(self) -> bool:
        """The run carries effective precisions (as ``TraceFile.has_precision`` says of a file)."""
        return self.precision is not None

    def with_precision(self, precision: np.ndarray | None) -> TraceRun:
        """This run with ``precision`` as its effective precisions (N × B uint8, eighths of a bit; None: none)."""
        return TraceRun(
            meta=self.meta,
            codes=self.codes,
            input_id=self.input_id,
            label=self.label,
            pred=self.pred,
            confidence=self.confidence,
            path=self.path,
            precision=precision,
            _parsed=(self.layers, self.options),
        )

    @property
    def correct(self) -> np.ndarray:
        return self.label == self.pred

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    def content_hash(self) -> str:
        """A hash of the metadata (but its own ``content_hash``) and of every value: what makes this run this run."""
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = _content_hash(
                self.meta, self.input_id, self.label, self.pred, self.confidence, self.codes, self.precision
            )
            object.__setattr__(self, "_hash", cached)
        return cached


def _budget_problem(budget: object) -> str:
    """What is wrong with a trace's ``budget`` ("" when nothing is): a percentage in 0..100, or null."""
    if budget is None:
        return ""
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 <= budget <= 100:
        return f"'budget' must be a percentage in 0..100 or null, got {budget!r}"
    return ""


def _method_problem(method: object) -> str:
    """What is wrong with a trace's ``method`` ("" when nothing is): a name of letters, digits, ``_``, ``.`` or ``-``
    starting with a letter, at most 64 characters."""
    if isinstance(method, str) and METHOD_NAME.fullmatch(method):
        return ""
    return (
        f"'method' must be a name of letters, digits, '_', '.' or '-' starting with a letter (e.g. dfs, static, "
        f"early_exit), got {method!r}"
    )


def make_meta(
    *,
    method: str,
    budget: float | None,
    model: dict,
    options: Sequence[Option],
    layers: LayerTable,
    seed: int,
    command: str | None = None,
    **extra: Any,
) -> dict:
    """Metadata for a new trace, with versions, git commit, command and time filled in.

    ``content_hash`` is added by ``write_trace``; ``extra`` keys (e.g. the checkpoint, the split) are kept as given.
    A ``budget`` outside 0..100 is a ``TraceFormatError`` naming the parameter.
    """
    for problem in (_budget_problem(budget), _method_problem(method)):
        if problem:
            raise TraceFormatError("make_meta", problem.replace("'budget'", "budget").replace("'method'", "method"))
    meta = {
        "format_version": FORMAT_VERSION,
        "method": method,
        "budget": budget,
        "model": dict(model),
        "options": options_to_meta(tuple(options)),
        "layers": layers.to_records(),
        "seed": seed,
        "versions": versions(),
        "git_commit": git_commit(),
        "command": command if command is not None else command_line(),
        "created": utc_now(),
        **extra,
    }
    meta["content_hash"] = ""
    return meta


def new_trace(
    *,
    name: str,
    method: str,
    layers: LayerTable | Sequence[ConvLayer],
    options: Sequence[str] | Sequence[Option],
    codes: Any,
    labels: Any,
    predictions: Any,
    confidences: Any,
    dataset: str,
    num_classes: int,
    budget: float | None = None,
    seed: int = 0,
    input_ids: Any = None,
    precision: Any = None,
    model: dict | None = None,
    **extra: Any,
) -> TraceRun:
    """A run of any dynamic network from plain arrays, its provenance (versions, git commit, command, time) filled in;
    write it with ``write_trace`` or replay it in memory (``analysis.replay``). docs/python.md shows it in use.

    ``layers``: the network's layer table (``ConvLayer`` rows; the gated units are the blocks it marks); ``options``:
    option names (``["skip", "q4", "fp@0.5", "fp"]``) or ``Option`` objects; ``codes``: (inputs × gated units)
    integers, the option each input chose in each unit; ``labels``, ``predictions``: class indices in
    0..``num_classes``-1; ``confidences``: the top softmax probability, in [0, 1]; ``input_ids``: defaults to
    0..N-1; ``precision``: optional effective precisions (inputs × units, eighths of a bit). ``model`` adds free-form
    description (``arch``, ``depth``, ...); ``extra`` keys go into the metadata as given. Every bad argument is a
    ``TraceFormatError`` naming the parameter.
    """
    source = "new_trace"
    if not isinstance(name, str) or not name:
        raise _bad_argument("name", f"must be a non-empty string, got {name!r}")
    parsed = _new_trace_options(options)
    try:
        table = layers if isinstance(layers, LayerTable) else LayerTable(layers, source="layers")
        table.check_options(len(parsed))
    except (LayerTableError, TypeError) as error:
        raise _bad_argument("layers", getattr(error, "problem", str(error))) from None
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise _bad_argument("num_classes", f"must be a positive integer, got {num_classes!r}")
    code_array = np.asarray(codes)
    if code_array.ndim != 2 or code_array.shape[1] != table.num_blocks:
        raise _bad_argument("codes", f"must be (inputs x {table.num_blocks} gated units), got shape {code_array.shape}")
    count = code_array.shape[0]
    arrays = {"codes": code_array}
    for parameter, values in (("labels", labels), ("predictions", predictions), ("confidences", confidences)):
        arrays[parameter] = np.asarray(values)
        if arrays[parameter].shape != (count,):
            raise _bad_argument(
                parameter, f"must have one value per input ({count}), got shape {arrays[parameter].shape}"
            )
    for parameter, high in (("codes", len(parsed)), ("labels", num_classes), ("predictions", num_classes)):
        values = arrays[parameter]
        if count and (values.dtype.kind not in "iu" or values.min() < 0 or values.max() >= high):
            raise _bad_argument(parameter, f"must be integers in 0..{high - 1}")
    confidence = arrays["confidences"]
    if count and (confidence.dtype.kind not in "fiu" or not np.all((confidence >= 0) & (confidence <= 1))):
        raise _bad_argument("confidences", "must be numbers in [0, 1] (the top softmax probability)")
    ids = np.arange(count) if input_ids is None else np.asarray(input_ids)
    if ids.shape != (count,) or (count and ids.dtype.kind not in "iu") or len(np.unique(ids)) != count:
        raise _bad_argument("input_ids", f"must be {count} distinct integers")
    described = {key: value for key, value in (model or {}).items() if key not in ("dataset", "num_classes")}
    try:
        meta = make_meta(
            method=method,
            budget=budget,
            model={**described, "dataset": dataset, "num_classes": num_classes},
            options=parsed,
            layers=table,
            seed=seed,
            name=name,
            **extra,
        )
        return TraceRun(
            meta=meta,
            codes=code_array.astype(CODE_DTYPE),
            input_id=ids.astype(np.int64),
            label=arrays["labels"].astype(np.int16),
            pred=arrays["predictions"].astype(np.int16),
            confidence=np.asarray(arrays["confidences"], dtype=np.float32),
            precision=None if precision is None else np.asarray(precision),
        )
    except TraceFormatError as error:
        # name the parameter: the checks of make_meta and the trace's own speak of metadata and columns
        problem = error.problem.replace("metadata ", "")
        raise TraceFormatError(source, problem) from None


def _bad_argument(parameter: str, problem: str) -> TraceFormatError:
    return TraceFormatError("new_trace", f"{parameter}: {problem}")


def _new_trace_options(options: Sequence[str] | Sequence[Option]) -> tuple[Option, ...]:
    """``new_trace``'s options: names (``parse_options``) or ``Option`` objects, not a mix."""
    if isinstance(options, str):
        raise _bad_argument("options", f"must be a list of option names, got the string {options!r}")
    try:
        given = [o for o in options if isinstance(o, Option)]
        if given and len(given) != len(options):
            raise ValueError("give option names or Option objects, not a mix")
        if given:
            return options_from_meta(options_to_meta(tuple(given)))  # codes in order, consistent bits
        return parse_options([name for name in options if not isinstance(name, Option)])
    except ValueError as error:
        raise _bad_argument("options", str(error)) from None


def write_trace(path: str | os.PathLike, run: TraceRun) -> Path:
    """Write ``run`` to ``path`` atomically (temporary name, then rename); returns the path written."""
    path = Path(path)
    meta = dict(run.meta, content_hash=run.content_hash())
    table = pa.table(arrow_columns(run)).replace_schema_metadata(
        {METADATA_KEY: json.dumps(meta, sort_keys=True).encode()}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        pq.write_table(table, temporary, compression="zstd", write_page_checksum=True, write_statistics=False)
    return path


def arrow_columns(run: TraceRun) -> dict[str, pa.Array]:
    """The run's columns as Arrow arrays with the format's names and types, in the format's order."""
    columns = {name: pa.array(getattr(run, name), dtype) for name, dtype in VALUE_COLUMNS.items()}
    for block in range(run.num_blocks):
        columns[block_column(block)] = pa.array(run.codes[:, block], pa.uint8())
    if run.precision is not None:
        for block in range(run.num_blocks):
            columns[precision_column(block)] = pa.array(run.precision[:, block], pa.uint8())
    return columns


def read_trace(path: str | os.PathLike) -> TraceRun:
    """Read and validate one trace file; every problem raises ``TraceFormatError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise TraceFormatError(path, "no such trace file")
    try:
        table = pq.read_table(path, page_checksum_verification=True)
        raw_meta = (table.schema.metadata or {}).get(METADATA_KEY)
        column_types = [(field.name, field.type) for field in table.schema]
    except (pa.ArrowException, OSError, ValueError) as error:
        raise TraceFormatError(path, f"not a readable Parquet file or truncated ({_first_line(error)})") from None
    written = _decode_meta(raw_meta, path)  # the content hash covers the metadata as written
    meta = upgraded_meta(written)
    layers, options = _parse_meta(meta, path)
    has_precision = _check_columns(column_types, layers.num_blocks, path)
    if table.num_rows == 0:
        raise TraceFormatError(path, "the trace has no rows")
    for name in table.column_names:
        if table.column(name).null_count:
            raise TraceFormatError(path, f"column {name!r} has missing values")
    try:
        by_block = np.empty((layers.num_blocks, table.num_rows), dtype=CODE_DTYPE)
        for block in range(layers.num_blocks):
            by_block[block] = table.column(block_column(block)).to_numpy()
        codes = _transpose(by_block)
        precision = None
        if has_precision:
            for block in range(layers.num_blocks):
                by_block[block] = table.column(precision_column(block)).to_numpy()
            precision = _transpose(by_block)
        values = {name: table.column(name).to_numpy() for name in VALUE_COLUMNS}
    except (pa.ArrowException, ValueError) as error:
        raise TraceFormatError(path, f"column data cannot be decoded ({_first_line(error)})") from None
    stored_hash = meta.get("content_hash")
    actual_hash = _content_hash(
        written, values["input_id"], values["label"], values["pred"], values["confidence"], codes, precision
    )
    if stored_hash != actual_hash:
        raise TraceFormatError(path, "content hash does not match the data: the file was changed or corrupted")
    run = TraceRun(meta=meta, codes=codes, path=path, precision=precision, _parsed=(layers, options), **values)
    if written is meta:  # an upgraded run hashes its new metadata when asked
        object.__setattr__(run, "_hash", actual_hash)  # verified above; no need to hash the data again
    return run


def _transpose(by_block: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """(B, N) to C-ordered (N, B), a chunk of inputs at a time so that source and destination stay in cache: 1.5x
    faster than one ``ascontiguousarray(by_block.T)``, which beats B strided column writes."""
    codes = np.empty(by_block.shape[::-1], dtype=by_block.dtype)
    for start in range(0, by_block.shape[1], chunk):
        codes[start : start + chunk] = by_block[:, start : start + chunk].T
    return codes


def read_traces(folder: str | os.PathLike) -> list[TraceRun]:
    """Read every ``*.parquet`` trace in ``folder`` (or one file), sorted by file name."""
    return [read_trace(path) for path in _trace_paths(folder)]


def _trace_paths(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise TraceFormatError(folder, "no such folder")
    paths = sorted(folder.glob("*.parquet"))
    if not paths:
        raise TraceFormatError(folder, "the folder holds no *.parquet trace files")
    return paths


@dataclass(frozen=True, eq=False)
class TraceFile(_RunMeta):
    """A trace on disk, read a chunk of inputs at a time, so that memory is set by the chunk size, not the trace's
    length. ``open_trace`` checks the metadata and the columns; ``chunks`` checks the values and, after the last
    chunk, the content hash: a consumer commits nothing until the iteration has ended."""

    path: Path
    meta: dict
    layers: LayerTable
    options: tuple[Option, ...]
    num_inputs: int
    written_meta: dict = field(repr=False)  # as written, which the content hash covers
    has_precision: bool = False  # the file carries effective precisions (format 3)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def num_blocks(self) -> int:
        return self.layers.num_blocks

    def content_hash(self) -> str:
        """The hash the file records; ``chunks`` verifies it against the data."""
        return str(self.written_meta["content_hash"])

    def chunks(self, size: int = CHUNK_INPUTS, verify: bool = True) -> Iterator[TraceRun]:
        """Consecutive runs of at most ``size`` inputs each, every one validated as a ``TraceRun`` (named as the file).

        The content hash covers each value column whole, then the codes in input order, so the value columns are
        hashed in a first pass (a few bytes per input) and the codes as the chunks go by. Input ids must be unique
        across the trace: checked on the fly while they increase, else by collecting them once (8 bytes per input).
        ``verify=False`` skips the hash and the id check, for a further pass over a file one pass has verified.
        """
        digest, precision_digest = _meta_digest(self.written_meta), hashlib.sha256()
        with self._reading() as parquet:
            ids_increase = self._hash_value_columns(parquet, digest) if verify else True
            blocks = [block_column(block) for block in range(self.num_blocks)]
            needs = [precision_column(block) for block in range(self.num_blocks)] if self.has_precision else []
            seen = 0
            for batch in parquet.iter_batches(batch_size=size, columns=[*VALUE_COLUMNS, *blocks, *needs]):
                _check_no_nulls(batch, self.path)
                codes = _transpose(np.stack([batch.column(name).to_numpy() for name in blocks]))
                precision = _transpose(np.stack([batch.column(name).to_numpy() for name in needs])) if needs else None
                if verify:
                    digest.update(codes.data.cast("B"))
                    if precision is not None:
                        precision_digest.update(precision.data.cast("B"))
                values = {name: batch.column(name).to_numpy() for name in VALUE_COLUMNS}
                seen += batch.num_rows
                yield TraceRun(
                    meta=self.meta,
                    codes=codes,
                    path=self.path,
                    precision=precision,
                    _parsed=(self.layers, self.options),
                    **values,
                )
        if self.has_precision:
            digest.update(precision_digest.digest())
        if seen != self.num_inputs:
            raise TraceFormatError(self.path, f"read {seen} rows, but the file records {self.num_inputs}")
        if not ids_increase:
            self._check_unique_ids()
        if verify and digest.hexdigest()[:32] != self.content_hash():
            raise TraceFormatError(self.path, "content hash does not match the data: the file was changed or corrupted")

    def _hash_value_columns(self, parquet: pq.ParquetFile, digest: Any) -> bool:
        """Feed each value column, whole and in the format's order, to ``digest``; whether the ids increase."""
        increasing, last = True, None
        for name, dtype in zip(VALUE_COLUMNS, ("<i8", "<i2", "<i2", "<f4"), strict=True):
            for batch in parquet.iter_batches(batch_size=CHUNK_INPUTS * 4, columns=[name]):
                _check_no_nulls(batch, self.path)
                values = np.ascontiguousarray(batch.column(0).to_numpy(), dtype=dtype)
                digest.update(values.data.cast("B"))
                if name == "input_id" and values.size:
                    increasing = increasing and bool(np.all(values[1:] > values[:-1]))
                    increasing = increasing and (last is None or values[0] > last)
                    last = values[-1]
        return increasing

    def _check_unique_ids(self) -> None:
        with self._reading() as parquet:
            ids = parquet.read(columns=["input_id"]).column(0).to_numpy()
        if np.unique(ids).size != ids.size:
            raise TraceFormatError(self.path, "input_id has duplicate values")

    def _reading(self):
        return _parquet_file(self.path)


@contextmanager
def _parquet_file(path: Path) -> Iterator[pq.ParquetFile]:
    """``path`` opened as a ``ParquetFile`` (page checksums verified); Arrow's errors become one-line trace errors."""
    try:
        parquet = pq.ParquetFile(path, page_checksum_verification=True)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise TraceFormatError(path, f"not a readable Parquet file or truncated ({_first_line(error)})") from None
    try:
        yield parquet
    except (pa.ArrowException, OSError, ValueError) as error:
        raise TraceFormatError(path, f"column data cannot be decoded ({_first_line(error)})") from None
    finally:
        parquet.close()


def open_trace(path: str | os.PathLike) -> TraceFile:
    """Open one trace for streaming: its metadata and columns are checked now, its values as ``chunks`` reads them."""
    path = Path(path)
    if not path.is_file():
        raise TraceFormatError(path, "no such trace file")
    with _parquet_file(path) as parquet:
        schema = parquet.schema_arrow
        num_rows = parquet.metadata.num_rows
    written = _decode_meta((schema.metadata or {}).get(METADATA_KEY), path)
    meta = upgraded_meta(written)
    layers, options = _parse_meta(meta, path)
    has_precision = _check_columns([(field.name, field.type) for field in schema], layers.num_blocks, path)
    if num_rows == 0:
        raise TraceFormatError(path, "the trace has no rows")
    return TraceFile(path, meta, layers, options, num_rows, written, has_precision)


def open_traces(folder: str | os.PathLike) -> list[TraceFile]:
    """``open_trace`` for every ``*.parquet`` trace in ``folder`` (or one file), sorted by file name."""
    return [open_trace(path) for path in _trace_paths(folder)]


def _check_no_nulls(batch: pa.RecordBatch, source: object) -> None:
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if column.null_count:
            raise TraceFormatError(source, f"column {name!r} has missing values")


def _meta_digest(written: dict) -> Any:
    digest = hashlib.sha256()
    described = {key: value for key, value in written.items() if key != "content_hash"}
    digest.update(json.dumps(described, sort_keys=True).encode())
    return digest


def upgraded_meta(meta: dict) -> dict:
    """Metadata of an older format in today's terms (a new dict; ``meta`` itself is left as written).

    Version 1 called the two-option DFS model (skip or full precision, trained with the DFS budget penalty)
    ``skipnet``; version 2 names it ``dfs_binary`` and keeps ``skipnet`` for SkipNet as its authors train it, so a
    version-1 ``skipnet`` trace is read as ``dfs_binary``. ``upgraded_from_format`` records the version written."""
    if meta.get("format_version") != 1:
        return meta
    upgraded = dict(meta, format_version=FORMAT_VERSION, upgraded_from_format=1)
    if upgraded.get("method") == "skipnet":
        upgraded["method"] = "dfs_binary"
    return upgraded


def _parse_meta(meta: dict, source: object) -> tuple[LayerTable, tuple[Option, ...]]:
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise TraceFormatError(source, f"metadata lacks {missing}")
    if meta["format_version"] not in READABLE_VERSIONS[1:]:  # version 1 is upgraded before this
        raise TraceFormatError(
            source,
            f"unknown format_version {meta['format_version']!r}; this dfs_sim reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}",
        )
    problem = _method_problem(meta["method"])
    if problem:
        raise TraceFormatError(source, f"metadata {problem}")
    problem = _budget_problem(meta["budget"])
    if problem:
        raise TraceFormatError(source, f"metadata {problem}")
    basis = meta.get("cost_basis", "proxy")
    if basis != "proxy" and not (
        isinstance(basis, dict)
        and isinstance(basis.get("preset"), str)
        and basis.get("metric") in COST_BASIS_METRICS
        and set(basis) == {"preset", "metric"}
    ):
        raise TraceFormatError(
            source, f"metadata 'cost_basis' must be \"proxy\" or {{preset, metric (energy | latency)}}, got {basis!r}"
        )
    alpha = meta.get("alpha")
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0):
        raise TraceFormatError(
            source, f"metadata 'alpha' (SkipNet's reward per skip) must be a number >= 0, got {alpha!r}"
        )
    model = meta["model"]
    if not isinstance(model, dict) or any(key not in model for key in REQUIRED_MODEL):
        raise TraceFormatError(source, f"metadata 'model' must be an object with keys {list(REQUIRED_MODEL)}")
    if not isinstance(model["dataset"], str) or not model["dataset"]:
        raise TraceFormatError(source, f"metadata 'model.dataset' must be a non-empty string, got {model['dataset']!r}")
    for name, value in (
        ("model.num_classes", model["num_classes"]),
        *((("model.depth", model["depth"]),) if model.get("depth") is not None else ()),
        ("seed", meta["seed"]),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "seed" else 1):
            raise TraceFormatError(
                source,
                f"metadata '{name}' must be a {'non-negative' if name == 'seed' else 'positive'} "
                f"integer, got {value!r}",
            )
    try:
        options = options_from_meta(meta["options"])
    except ValueError as error:
        raise TraceFormatError(source, f"metadata 'options': {error}") from None
    try:
        layers = LayerTable.from_records(meta["layers"], source=source)
        layers.check_options(len(options))
    except LayerTableError as error:
        raise TraceFormatError(source, f"metadata 'layers': {error.problem}") from None
    if layers.num_blocks == 0:
        raise TraceFormatError(source, "metadata 'layers' has no gated block")
    return layers, options


def _check_columns(column_types: list[tuple[str, pa.DataType]], num_blocks: int, source: object) -> bool:
    """Check the columns' names and types; whether the trace carries effective precisions (all or none)."""
    names = [name for name, _ in column_types]
    types = dict(column_types)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TraceFormatError(source, f"duplicate columns {duplicates}")
    for name, dtype in VALUE_COLUMNS.items():
        if name not in names:
            raise TraceFormatError(source, f"column {name!r} is missing")
        if types[name] != dtype:
            raise TraceFormatError(source, f"column {name!r} has type {types[name]}, expected {dtype}")
    expected_codes = [block_column(block) for block in range(num_blocks)]
    expected_precision = [precision_column(block) for block in range(num_blocks)]
    precision_columns = [name for name in names if name.startswith(PRECISION_PREFIX)]
    if precision_columns and sorted(precision_columns) != expected_precision:
        missing = [name for name in expected_precision if name not in precision_columns]
        problem = (
            f"missing {missing[:3]}"
            if missing
            else f"unexpected {sorted(set(precision_columns) - set(expected_precision))[:3]}"
        )
        raise TraceFormatError(
            source, f"precision columns: {problem}; a trace has one per gated block ({num_blocks}) or none"
        )
    code_columns = [name for name in names if name not in VALUE_COLUMNS and name not in precision_columns]
    missing = [name for name in expected_codes if name not in code_columns]
    if missing:
        raise TraceFormatError(
            source, f"code columns {missing[:3]} missing: the layer table has {num_blocks} gated blocks"
        )
    extra = [name for name in code_columns if name not in expected_codes]
    if extra:
        raise TraceFormatError(source, f"unexpected columns {extra[:3]}: the layer table has {num_blocks} gated blocks")
    for name in expected_codes + precision_columns:
        if types[name] != pa.uint8():
            raise TraceFormatError(source, f"column {name!r} has type {types[name]}, expected uint8")
    return bool(precision_columns)


def _check_values(run: TraceRun, source: object) -> None:
    count = run.codes.shape[0]
    if run.codes.ndim != 2 or run.codes.shape[1] != run.layers.num_blocks:
        raise TraceFormatError(
            source, f"codes have shape {run.codes.shape}; the layer table has {run.layers.num_blocks} gated blocks"
        )
    for name in VALUE_COLUMNS:
        if getattr(run, name).shape != (count,):
            raise TraceFormatError(source, f"{name} has shape {getattr(run, name).shape}, expected ({count},)")
    if count == 0:
        raise TraceFormatError(source, "the trace has no rows")
    num_options = len(run.options)
    if int(run.codes.max()) >= num_options:
        block = int(np.argmax((run.codes >= num_options).any(axis=0)))
        raise TraceFormatError(
            source,
            f"column {block_column(block)!r} has option code {int(run.codes[:, block].max())}, "
            f"but only codes 0..{num_options - 1} exist",
        )
    if run.precision is not None:
        _check_precision(run, source)
    ids = run.input_id
    if not (np.all(ids[1:] > ids[:-1]) or np.all(np.diff(np.sort(ids)) != 0)):
        raise TraceFormatError(source, "input_id has duplicate values")
    num_classes = run.meta["model"]["num_classes"]
    for name in ("label", "pred"):
        column = getattr(run, name)
        if column.min() < 0 or column.max() >= num_classes:
            raise TraceFormatError(source, f"column {name!r} has values outside 0..{num_classes - 1}")
    if not np.all((run.confidence >= 0) & (run.confidence <= 1)):
        raise TraceFormatError(source, "column 'confidence' has values outside [0, 1]")


def _check_precision(run: TraceRun, source: object) -> None:
    """Effective precisions: (N × B); 0 (not measured) or 1 bit up to the chosen option's activation bits where the
    option is quantized; 0 where it is skipped or at full precision."""
    precision = run.precision
    assert precision is not None
    if precision.shape != run.codes.shape:
        raise TraceFormatError(source, f"precision has shape {precision.shape}, codes {run.codes.shape}")
    limit = np.array(
        [0 if option.is_skip or option.float else option.a_bits * PRECISION_STEPS for option in run.options],
        dtype=np.int64,
    )[run.codes]
    bad = (precision > limit) | ((precision > 0) & (precision < PRECISION_STEPS))
    if not bad.any():
        return
    n, block = (int(index[0]) for index in np.nonzero(bad))
    option = run.options[run.codes[n, block]]
    column = precision_column(block)
    if option.is_skip or option.float:
        raise TraceFormatError(source, f"column {column!r} holds a precision at option {option.name}, which has none")
    raise TraceFormatError(
        source,
        f"column {column!r} holds {precision[n, block] / PRECISION_STEPS:g} bits at option {option.name} "
        f"(input {int(run.input_id[n])}); expected 0 (not measured) or 1..{option.a_bits}",
    )


def _decode_meta(raw_meta: bytes | None, path: Path) -> dict:
    if raw_meta is None:
        raise TraceFormatError(path, "metadata key 'dfs_sim' is missing; was this written by dfs_sim.traces?")
    try:
        meta = json.loads(raw_meta)
    except ValueError as error:  # JSON and Unicode decoding errors alike
        raise TraceFormatError(path, f"metadata is not valid JSON ({_first_line(error)})") from None
    if not isinstance(meta, dict):
        raise TraceFormatError(path, "metadata is not a JSON object")
    return meta


def _content_hash(meta, input_id, label, pred, confidence, codes, precision=None) -> str:
    """The metadata, each value column whole, the codes in input order and, for a trace with effective precisions,
    the SHA-256 of those (so that a stream hashes them beside the codes; without them the hash is format 2's)."""
    digest = _meta_digest(meta)
    for array, dtype in ((input_id, "<i8"), (label, "<i2"), (pred, "<i2"), (confidence, "<f4"), (codes, "u1")):
        digest.update(np.ascontiguousarray(array, dtype=dtype).data.cast("B"))
    if precision is not None:
        digest.update(hashlib.sha256(np.ascontiguousarray(precision, dtype="u1").data.cast("B")).digest())
    return digest.hexdigest()[:32]


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:160] if text else type(error).__name__
