"""One run replayed on many presets a chunk of inputs at a time: memory is set by the chunk, not by the trace.

Each chunk's codes go through the replay kernel once, one lane per preset × cost metric. As the chunks go by, the
per-run aggregates accumulate (correct predictions, sums of every metric, the decision histogram per gated block) and
the chunk's per-input rows, if the caller wants them, go to one writer per preset. Every aggregate is exact:
- means are sums over the inputs divided by their number (for a run of one chunk, the very numbers a whole-run
  numpy mean gives; over many chunks, sums of chunk sums, which differ from a one-pass sum only in rounding);
- quantiles (p1, p25, p50, p75, p99 of energy and latency; ``np.percentile``, linear, to the bit) come from the
  whole columns when the energy and latency of every input on every preset fit in ``keep_bytes``; otherwise every
  column is counted into bins of its values' leading bits on the way, and one more pass over the trace gathers just
  the values of the bins that hold the order statistics the quantiles need (``BinnedQuantiles``), so memory stays
  bounded at any length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from analysis.frames import COST_METRIC_INDEX, COST_METRICS, ENERGY_PARTS, QUANTILES, run_labels, wilson_interval
from analysis.replay_kernel import precision_deltas, replay_presets, split_presets, tally_decisions
from analysis.summary import proxy_per_input
from cost_models.budget import CostBasis, budget_costs
from cost_models.pricing import METRICS
from dfs_sim.options import proxy_costs, skip_or_run
from dfs_sim.traces import CHUNK_INPUTS, TraceRun

__all__ = ["KEEP_BYTES", "PER_INPUT_FORMS", "QUANTILES", "RunTotals", "replay_run"]

PER_INPUT_FORMS = ("full", "compact", "none")
KEEP_BYTES = 1 << 30  # energy and latency columns kept whole for exact quantiles, at most; the rest go to bins
ORDER_BITS = 20  # bins of BinnedQuantiles: a float64's sign, exponent and 8 leading mantissa bits (8 MB of counts)
_METRICS = len(COST_METRICS)
_CYCLES, _DRAM_BITS = COST_METRICS.index("cycles"), COST_METRICS.index("dram_bits")
_PARTS = [COST_METRICS.index(name) for name in ENERGY_PARTS]
_QUANTILE_COLUMNS = ("energy_pj", "latency_us")
_SPLIT_METRICS = np.array([_CYCLES, *_PARTS])  # where split_presets finds cycles and the energy parts


@dataclass
class RunTotals:
    """What a replay of one run leaves: one per_run row per preset (with every quantile) and the decisions."""

    block_counts: np.ndarray  # (gated blocks, options): inputs that took each option at each block
    rows: list[dict] = field(default_factory=list)


def compact_table(chunk, preset_name: str, costs: np.ndarray, us_per_cycle: float) -> pa.Table:
    """The compact per-input form: run, preset, input_id and the costs, no trace columns (join on input_id)."""
    indices = np.zeros(chunk.num_inputs, np.int32)  # every row is the one run, the one preset
    columns = {
        "input_id": chunk.input_id,
        **{name: _derived(costs, us_per_cycle, name) for name in _QUANTILE_COLUMNS},
        **{name: costs[:, COST_METRICS.index(name)] for name in ("cycles", *ENERGY_PARTS, "dram_bits")},
    }
    order = ["input_id", "cycles", "latency_us", "energy_pj", *ENERGY_PARTS, "dram_bits"]
    return pa.table(
        {
            "run": pa.DictionaryArray.from_arrays(indices, pa.array([chunk.name])),
            "preset": pa.DictionaryArray.from_arrays(indices, pa.array([preset_name])),
            **{name: pa.array(columns[name]) for name in order},
        }
    )


def full_table(chunk, preset_name: str, costs: np.ndarray, us_per_cycle: float) -> pa.Table:
    """Every per-input column (``analysis.frames.per_input_frame``'s), built as Arrow arrays straight from the
    chunk's numpy arrays: no pandas frame per chunk and preset; the run, method and preset dictionary-encoded (one
    value each)."""
    if costs.shape != (chunk.num_inputs, len(COST_METRICS)):
        raise ValueError(f"costs have shape {costs.shape}, expected ({chunk.num_inputs}, {len(COST_METRICS)})")
    indices = np.zeros(chunk.num_inputs, np.int32)
    budget = np.float64(np.nan if chunk.budget is None else chunk.budget)
    columns = {
        "run": pa.DictionaryArray.from_arrays(indices, pa.array([chunk.name])),
        "method": pa.DictionaryArray.from_arrays(indices, pa.array([chunk.method])),
        "budget": pa.array(np.full(chunk.num_inputs, budget)),
        "preset": pa.DictionaryArray.from_arrays(indices, pa.array([preset_name])),
        "input_id": pa.array(chunk.input_id),
        "label": pa.array(chunk.label),
        "pred": pa.array(chunk.pred),
        "correct": pa.array(chunk.label == chunk.pred),
        "confidence": pa.array(chunk.confidence),
        "cycles": pa.array(costs[:, _CYCLES]),
        **{name: pa.array(_derived(costs, us_per_cycle, name)) for name in _QUANTILE_COLUMNS},
        **{name: pa.array(costs[:, COST_METRICS.index(name)]) for name in (*ENERGY_PARTS, "dram_bits")},
        "proxy_cost": pa.array(proxy_per_input(chunk)),
    }
    order = ["run", "method", "budget", "preset", "input_id", "label", "pred", "correct", "confidence", "cycles"]
    order += ["latency_us", "energy_pj", *ENERGY_PARTS, "dram_bits", "proxy_cost"]
    return pa.table({name: columns[name] for name in order})


PER_INPUT_TABLES = {"full": full_table, "compact": compact_table}


def replay_run(
    run,
    presets: Sequence,
    tables: Sequence,
    *,
    write: Callable[[int, pa.Table], None] | None = None,
    form: str = "full",
    chunk_inputs: int = CHUNK_INPUTS,
    keep_bytes: int = KEEP_BYTES,
    progress: Callable[[int], None] | None = None,
) -> RunTotals:
    """Replay ``run`` (a ``TraceRun`` or ``TraceFile``) on ``presets`` with their cost ``tables``, chunk by chunk.

    ``write(preset_index, table)`` receives each chunk's per-input rows in the ``form`` asked for ("full" or
    "compact"; none are made without ``write``); ``progress(inputs)`` is told how many inputs each pass finished.
    """
    # (blocks, options, presets × the metrics replayed per input)
    lanes = np.concatenate([table.block[:, :, COST_METRIC_INDEX] for table in tables], axis=2)
    fixed = np.concatenate([table.fixed[COST_METRIC_INDEX] for table in tables])
    us_per_cycle = np.array([float(preset.cycles_to_us(1.0)) for preset in presets])
    count = len(presets)
    keys = [(p, name) for p in range(count) for name in _QUANTILE_COLUMNS]
    # all columns whole when they all fit; else none (one column that does not fit already costs the second pass)
    columns_kept = len(keys) if len(keys) * 8 * run.num_inputs <= keep_bytes else 0
    first_pass, binned = keys[:columns_kept], BinnedQuantiles(keys[columns_kept:], run.num_inputs)

    sums = np.zeros((count, _METRICS + 2))  # the metrics, then energy and latency
    kept = {key: np.empty(run.num_inputs) for key in first_pass}
    decisions = _Decisions(run)
    trimming = _Trimming(run, tables)
    correct, start, buffer = 0, 0, None
    rows = min(chunk_inputs, run.num_inputs)
    by_metric, energy, latency = np.empty((count, _METRICS, rows)), np.empty((count, rows)), np.empty((count, rows))
    for chunk in _chunks(run, chunk_inputs):
        costs = replay_presets(chunk.codes, lanes, fixed, out=buffer, check_codes=False)  # codes checked on read
        buffer = costs.base
        trimming.apply(chunk, costs, count_units=True)
        size = chunk.num_inputs
        split_presets(costs, us_per_cycle, _SPLIT_METRICS, by_metric[:, :, :size], energy[:, :size], latency[:, :size])
        correct += int(np.count_nonzero(chunk.correct))
        decisions.add(chunk)
        stop = start + size
        for p in range(count):
            sums[p, :_METRICS] += [by_metric[p, metric, :size].sum() for metric in range(_METRICS)]
            for index, (name, values) in enumerate(zip(_QUANTILE_COLUMNS, (energy, latency), strict=True)):
                sums[p, _METRICS + index] += values[p, :size].sum()
                if (p, name) in kept:
                    kept[p, name][start:stop] = values[p, :size]
                elif (p, name) in binned.keys:
                    binned.count((p, name), values[p, :size])
            if write is not None:
                own = np.ascontiguousarray(costs[:, p * _METRICS : (p + 1) * _METRICS])
                write(p, PER_INPUT_TABLES[form](chunk, presets[p].name, own, us_per_cycle[p]))
        start = stop
        if progress is not None:
            progress(size)

    quantiles = _all_quantiles(kept)
    del kept
    if binned.keys:
        quantiles.update(_quantiles_by_pass(run, binned, lanes, fixed, us_per_cycle, chunk_inputs, progress, trimming))

    totals = RunTotals(decisions.block_counts)
    low, high = wilson_interval(correct, run.num_inputs)
    for p, preset in enumerate(presets):
        means = sums[p] / run.num_inputs
        row = {
            **run_labels(run),
            "preset": preset.name,
            "n": run.num_inputs,
            "accuracy": correct / run.num_inputs,
            "accuracy_ci_low": low,
            "accuracy_ci_high": high,
        }
        for index, name in enumerate(_QUANTILE_COLUMNS):
            row[f"{name}_mean"] = means[_METRICS + index]
            for q, value in zip(QUANTILES, quantiles[p, name], strict=True):
                row[f"{name}_p{q}"] = value
        row["cycles_mean"] = means[_CYCLES]
        for name in (*ENERGY_PARTS, "dram_bits"):
            row[f"{name}_mean"] = means[COST_METRICS.index(name)]
        row["utilisation"] = _utilisation(
            tables[p], decisions.block_counts, run.num_inputs, trimming.unit_sums.get(p, (0.0, 0.0))
        )
        row.update(decisions.columns())
        totals.rows.append(row)
    return totals


def _utilisation(table, block_counts: np.ndarray, inputs: int, trimmed: tuple[float, float] = (0.0, 0.0)) -> float:
    """The share of compute-unit cycles doing mapped work over every input and layer of a run: the always-run layers'
    unit-cycles once per input, and each gated block's at each option as often as the inputs took it, plus what
    effective precisions changed (``trimmed``: active, all; summed over the inputs)."""
    totals = []
    for name, change in zip(("active_unit_cycles", "unit_cycles"), trimmed, strict=True):
        metric = METRICS.index(name)
        totals.append(inputs * table.fixed[metric] + float((block_counts * table.block[:, :, metric]).sum()) + change)
    active, units = totals
    return active / units if units else float("nan")


def _chunks(run, size: int, verify: bool = True):
    """A ``TraceFile``'s chunks (``verify``: its content hash checked on the way), or slices of an in-memory
    ``TraceRun`` (one chunk when it fits)."""
    if hasattr(run, "chunks"):
        return run.chunks(size, verify=verify)
    if run.num_inputs <= size:
        return [run]
    return [_slice(run, start, start + size) for start in range(0, run.num_inputs, size)]


def _slice(run: TraceRun, start: int, stop: int) -> TraceRun:
    return TraceRun(
        meta=run.meta,
        codes=run.codes[start:stop],
        input_id=run.input_id[start:stop],
        label=run.label[start:stop],
        pred=run.pred[start:stop],
        confidence=run.confidence[start:stop],
        path=run.path,
        precision=None if run.precision is None else run.precision[start:stop],
        _parsed=(run.layers, run.options),
    )


def _derived(costs: np.ndarray, us_per_cycle: float, name: str, out: np.ndarray | None = None) -> np.ndarray:
    """Each input's energy (the three parts, added in ``per_input_frame``'s order) or latency, into ``out``."""
    if name == "latency_us":
        return np.multiply(costs[:, _CYCLES], us_per_cycle, out=out)
    energy = np.add(costs[:, _PARTS[0]], costs[:, _PARTS[1]], out=out)
    return np.add(energy, costs[:, _PARTS[2]], out=energy)


def _quantiles(column: np.ndarray) -> list[float]:
    """``np.percentile`` (linear) at every ``QUANTILES``; the column is partitioned in place."""
    return [float(value) for value in np.percentile(column, QUANTILES, overwrite_input=True)]


def _all_quantiles(columns: dict) -> dict:
    """``_quantiles`` of every column, on two threads (numpy partitions without the GIL)."""
    if len(columns) < 2 or _columns_size(columns) < 1 << 20:
        return {key: _quantiles(column) for key, column in columns.items()}
    with ThreadPoolExecutor(max_workers=2) as threads:
        return dict(zip(columns, threads.map(_quantiles, columns.values()), strict=True))


def _columns_size(columns: dict) -> int:
    return sum(column.size for column in columns.values())


def _quantiles_by_pass(run, binned, lanes, fixed, us_per_cycle, chunk_inputs, progress, trimming) -> dict:
    """Another pass over ``run`` that gathers, for the columns ``binned`` counted, the values their quantiles need."""
    binned.plan()
    buffer = None
    for chunk in _chunks(run, chunk_inputs, verify=False):  # the first pass verified the file
        costs = replay_presets(chunk.codes, lanes, fixed, out=buffer, check_codes=False)
        buffer = costs.base
        trimming.apply(chunk, costs)
        for p, name in binned.keys:
            own = costs[:, p * _METRICS : (p + 1) * _METRICS]
            binned.gather((p, name), _derived(own, float(us_per_cycle[p]), name))
        if progress is not None:
            progress(chunk.num_inputs)
    return {key: binned.quantiles(key) for key in binned.keys}


def order_keys(values: np.ndarray, bits: int = ORDER_BITS) -> np.ndarray:
    """Each float64's bin among ``2**bits``, in the values' numeric order: the leading ``bits`` of its IEEE-754
    pattern with a negative number's bits flipped and a positive number's sign bit set (so that unsigned order is
    numeric order; Herf, "Radix tricks", 2001). −0.0 takes +0.0's bin (adding +0.0 turns it into +0.0), as the two
    are one value to ``np.unique`` and to the order statistics."""
    pattern = (np.asarray(values, dtype=np.float64) + 0.0).view(np.uint64)
    negative = (pattern >> np.uint64(63)).astype(bool)
    ordered = np.where(negative, ~pattern, pattern | np.uint64(1 << 63))
    return (ordered >> np.uint64(64 - bits)).astype(np.intp)


class BinnedQuantiles:
    """``np.percentile`` (linear) at ``QUANTILES`` of columns seen a chunk at a time, to the bit, in memory set by the
    bins rather than by the columns' length: the first pass counts each column's values into ``2**ORDER_BITS`` bins
    in numeric order (``count``); ``plan`` finds the bins that hold the order statistics the quantiles interpolate
    between; a second pass keeps the distinct values of those bins only, with their counts (``gather``); and
    ``quantiles`` interpolates as numpy does (``numpy.lib._function_base_impl._quantile``, "linear":
    virtual index (n - 1)·q, its floor and the next, numpy's ``_lerp``)."""

    def __init__(self, keys: Sequence, inputs: int) -> None:
        self.keys = list(keys)
        self.inputs = inputs
        self.counts = {key: np.zeros(1 << ORDER_BITS, np.int64) for key in self.keys}
        self.found: dict = {key: ([], []) for key in self.keys}
        self.wanted: dict = {}

    def count(self, key, values: np.ndarray) -> None:
        self.counts[key] += np.bincount(order_keys(values), minlength=1 << ORDER_BITS)

    def _positions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """numpy's order statistics (before and after) and weight for every ``QUANTILES``, over ``inputs`` values."""
        virtual = (self.inputs - 1) * np.true_divide(QUANTILES, 100)
        before = np.floor(virtual)
        after = before + 1
        last = virtual >= self.inputs - 1
        before[last] = after[last] = self.inputs - 1
        gamma = virtual - np.where(last, -1, before)  # numpy's: its index there is -1 (both neighbours are the last)
        return before.astype(np.int64), after.astype(np.int64), gamma

    def plan(self) -> None:
        before, after, _ = self._positions()
        ranks = np.unique(np.concatenate([before, after]))
        for key, counts in self.counts.items():
            self.wanted[key] = np.unique(np.searchsorted(np.cumsum(counts), ranks, side="right"))

    def gather(self, key, values: np.ndarray) -> None:
        inside = values[np.isin(order_keys(values), self.wanted[key])]
        distinct, counts = np.unique(inside, return_counts=True)
        self.found[key][0].append(distinct)
        self.found[key][1].append(counts)

    def quantiles(self, key) -> list[float]:
        values, counts = (np.concatenate(parts) for parts in self.found[key])
        distinct, inverse = np.unique(values, return_inverse=True)
        counts = np.bincount(inverse, weights=counts).astype(np.int64)
        # the rank of each distinct value's first copy: the inputs in lower bins, then those before it in its bin
        bins = order_keys(distinct)
        below = np.cumsum(self.counts[key]) - self.counts[key]
        within = np.cumsum(counts) - counts
        first_of_bin = np.searchsorted(bins, bins, side="left")
        starts = below[bins] + within - within[first_of_bin]
        before, after, gamma = self._positions()
        low = distinct[np.searchsorted(starts, before, side="right") - 1]
        high = distinct[np.searchsorted(starts, after, side="right") - 1]
        difference = high - low
        result = low + difference * gamma
        np.subtract(high, difference * (1 - gamma), out=result, where=gamma >= 0.5)
        return [float(value) for value in result]


class _Trimming:
    """Dynamic precision: on the presets whose cost table has effective costs, each input's replayed costs change by
    what its recorded effective precisions save (``CostTable.precision_deltas``); a run without precisions, or a
    static preset, is replayed as it is."""

    _UNIT_METRICS = (METRICS.index("active_unit_cycles"), METRICS.index("unit_cycles"))

    def __init__(self, run, tables) -> None:
        self.deltas = {
            p: table.precision_deltas
            for p, table in enumerate(tables)
            if run.has_precision and table.effective is not None
        }
        self.unit_sums: dict[int, tuple[float, float]] = {}
        self.scratch = np.empty((0, len(METRICS)))

    def apply(self, chunk, costs: np.ndarray, count_units: bool = False) -> None:
        """Add each dynamic preset's changes to its lanes of ``costs`` (N, presets × replayed metrics), in place;
        ``count_units``: also sum the changes in unit-cycles, for the utilisation."""
        if not self.deltas:
            return
        if self.scratch.shape[0] < chunk.num_inputs:
            self.scratch = np.empty((chunk.num_inputs, len(METRICS)))
        scratch = self.scratch[: chunk.num_inputs]
        for p, deltas in self.deltas.items():
            precision_deltas(chunk.codes, chunk.precision, deltas, scratch)
            costs[:, p * _METRICS : (p + 1) * _METRICS] += scratch[:, COST_METRIC_INDEX]
            if count_units:
                active, units = (float(scratch[:, lane].sum()) for lane in self._UNIT_METRICS)
                before = self.unit_sums.get(p, (0.0, 0.0))
                self.unit_sums[p] = (before[0] + active, before[1] + units)


class _Decisions:
    """The decision summaries of ``analysis.frames`` (``computation_pct``, ``budget_pct``, SkipNet's computation,
    the option fractions), accumulated chunk by chunk: exact counts, and sums that equal a whole-run mean's for a run
    of one chunk."""

    def __init__(self, run) -> None:
        self.run = run
        self.block_counts = np.zeros((run.num_blocks, len(run.options)), dtype=np.int64)
        basis = CostBasis.from_meta(run.meta.get("cost_basis"))
        self.basis = basis.label
        self.costs = budget_costs(run.layers, run.options, basis)
        self.budget_sum = 0.0
        self.skipnet_sum = 0.0
        self.gathered = np.empty((0, run.num_blocks))
        self.skip_or_run = skip_or_run(run.options)

    def add(self, chunk) -> None:
        codes = chunk.codes
        if self.gathered.shape[0] < codes.shape[0]:
            self.gathered = np.empty(codes.shape)  # kept from chunk to chunk: a fresh one costs its page faults
        gathered = self.gathered[: codes.shape[0]]
        tally_decisions(codes, self.costs, self.block_counts, gathered)  # codes were range-checked on read
        self.budget_sum += float(gathered.sum())
        if self.skip_or_run:
            executed = (codes != 0).sum(axis=1)
            self.skipnet_sum += float(((executed + 1) / (codes.shape[1] + 1)).sum())

    def columns(self) -> dict:
        run = self.run
        decisions = run.num_inputs * run.num_blocks
        histogram = self.block_counts.sum(axis=0)
        alpha = run.meta.get("alpha")
        return {
            "computation_pct": float(histogram @ np.array(proxy_costs(run.options)) / decisions * 100.0),
            "cost_basis": self.basis,
            "budget_pct": self.budget_sum / decisions * 100.0,
            "skipnet_computation_pct": self.skipnet_sum / run.num_inputs * 100.0 if self.skip_or_run else np.nan,
            "alpha": float(alpha) if isinstance(alpha, (int, float)) and not isinstance(alpha, bool) else np.nan,
            **{
                f"frac_{option.name}": fraction
                for option, fraction in zip(run.options, histogram / decisions, strict=True)
            },
        }
