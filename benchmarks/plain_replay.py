"""``python -m benchmarks.plain_replay TRACE OUT_DIR``: the replay job as a competent user would script it by hand.

The reference for the end-to-end benchmark: pyarrow reads the trace, ``build_cost_table`` gives each shipped preset's
costs, and plain numpy fancy indexing sums them per input (the always-run layers plus one lookup per gated block).
It writes ``OUT_DIR/<preset>.parquet`` with ``input_id`` and the per-input costs the pipeline reports, and does none of
the pipeline's checks (no content hash, no range check of the codes), per-run summaries, fronts or plots.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cost_models import METRICS, build_cost_table, list_presets, load_preset
from dfs_sim.layer_table import LayerTable
from dfs_sim.options import options_from_meta


def read_trace_columns(path: Path) -> tuple[dict, np.ndarray, list[np.ndarray]]:
    """The trace's metadata, its ``input_id`` and one uint8 array of option codes per gated block."""
    schema = pq.read_schema(path)
    meta = json.loads(schema.metadata[b"dfs_sim"])
    blocks = [name for name in schema.names if name.startswith("block_")]  # written in block order
    # Only the columns the costs need: labels and predictions do not change what an input costs.
    table = pq.read_table(path, columns=["input_id", *blocks])
    codes = [table.column(name).to_numpy() for name in blocks]
    return meta, table.column("input_id").to_numpy(), codes


def per_input_costs(codes: list[np.ndarray], block: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """(inputs × metrics): ``fixed`` plus, for every gated block b, ``block[b, code_b]``."""
    costs = np.tile(fixed, (len(codes[0]), 1))
    for index, block_codes in enumerate(codes):
        costs += block[index][block_codes]
    return costs


def cost_columns(input_id: np.ndarray, costs: np.ndarray, us_per_cycle: float) -> pa.Table:
    """The per-input columns the pipeline reports; ``costs`` columns follow ``cost_models.METRICS``."""
    cycles, e_compute, e_sram, e_dram, dram_bits = (costs[:, METRICS.index(name)] for name in METRICS[:5])
    return pa.table(
        {
            "input_id": input_id,
            "cycles": cycles,
            "latency_us": cycles * us_per_cycle,
            "energy_pj": e_compute + e_sram + e_dram,
            "e_compute_pj": e_compute,
            "e_sram_pj": e_sram,
            "e_dram_pj": e_dram,
            "dram_bits": dram_bits,
        }
    )


def main(argv: list[str] | None = None) -> int:
    """Replay TRACE on every shipped preset and write one Parquet file per preset into OUT_DIR."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m benchmarks.plain_replay TRACE OUT_DIR", file=sys.stderr)
        return 2
    trace, out_dir = Path(args[0]), Path(args[1])
    meta, input_id, codes = read_trace_columns(trace)
    layers = LayerTable.from_records(meta["layers"])
    options = options_from_meta(meta["options"])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in list_presets():
        preset = load_preset(name)
        table = build_cost_table(layers, preset, options=options)
        costs = per_input_costs(codes, table.block, table.fixed)
        pq.write_table(cost_columns(input_id, costs, float(preset.cycles_to_us(1.0))), out_dir / f"{name}.parquet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
