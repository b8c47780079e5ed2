"""HAQ-style lookup tables (mit-han-lab/haq, docs/hardware.md §4.5): an array indexed ``[layer, w_bits - 1,
a_bits - 1]``, one entry per layer and bit pair, holding one metric of a preset; a network's cost is the sum over
layers of the looked-up entries, which is how HAQ's search prices a per-layer width choice.
"""

from __future__ import annotations

import os

import numpy as np

from cost_models.preset import Preset, load_preset
from cost_models.pricing import layer_cost
from dfs_sim._atomic import atomic_path
from dfs_sim.layer_table import LayerTable

__all__ = ["HAQ_METRICS", "haq_table", "write_haq_table"]

HAQ_METRICS = ("cycles", "energy_pj", "e_compute_pj", "e_sram_pj", "e_dram_pj", "dram_bits", "latency_us")


def haq_table(
    layer_table: LayerTable, preset: Preset | str, metric: str = "energy_pj", max_bits: int = 8
) -> np.ndarray:
    """float64 array (layers, max_bits, max_bits): ``[l, w-1, a-1]`` = ``metric`` of layer l at (w, a)."""
    preset = load_preset(preset)
    if metric not in HAQ_METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(HAQ_METRICS)}")
    table = np.zeros((len(layer_table), max_bits, max_bits), dtype=np.float64)
    for index, layer in enumerate(layer_table):
        for w in range(1, max_bits + 1):
            for a in range(1, max_bits + 1):
                cost = layer_cost(layer, preset, w, a)
                value = preset.cycles_to_us(cost.cycles) if metric == "latency_us" else getattr(cost, metric)
                table[index, w - 1, a - 1] = value
    return table


def write_haq_table(
    path: str | os.PathLike, layer_table: LayerTable, preset: Preset | str, metric: str = "energy_pj", max_bits: int = 8
) -> np.ndarray:
    """Write ``haq_table`` to ``path`` (``.npy``) atomically and return it."""
    table = haq_table(layer_table, preset, metric, max_bits)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.save(handle, table)
    return table
