"""One tidy row per layer and option (``cost_row``), and a whole layer table's per-layer frame (``layer_costs``),
shared by the cost-table command, the policy frame and notebooks."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from cost_models.preset import Preset, load_preset
from cost_models.pricing import effective_cost, option_cost, trims
from dfs_sim.layer_table import ConvLayer, LayerTable, narrowed
from dfs_sim.options import DFS_OPTIONS, Option

__all__ = ["breakdown", "cost_row", "layer_costs"]


def layer_costs(
    layer_table: LayerTable,
    preset: Preset | str,
    options: Sequence[Option] = DFS_OPTIONS,
    effective_bits: int | None = None,
) -> pd.DataFrame:
    """One row per (layer, option): the layer's own cost at that option (always-run layers and projections at every
    option too: they cost the same), with its ``breakdown``; a main layer of a gated unit at an option with a width
    below 1 is priced narrowed (``dfs_sim.layer_table.narrowed``: ``in_ch``/``out_ch`` say the shape run).
    ``effective_bits``: on a dynamic-precision preset, as if the activations needed only that many bits. Summing a
    block's rows at one option gives ``build_cost_table``'s entry for it (skip aside, which runs no main layer)."""
    preset = load_preset(preset)
    run_as: dict[tuple[str, int], ConvLayer] = {}
    for block in range(layer_table.num_blocks):
        main = [layer for layer in layer_table.block_layers(block) if layer.role == "main"]
        for option in options:
            for layer, shape in zip(main, narrowed(main, option.width), strict=True):
                run_as[layer.name, option.code] = shape
    rows = []
    for layer in layer_table:
        for option in options:
            shape = run_as.get((layer.name, option.code), layer)
            rows.append(
                {**cost_row(shape, option, preset, effective_bits), "in_ch": shape.in_ch, "out_ch": shape.out_ch}
            )
    return pd.DataFrame(rows)


def cost_row(layer: ConvLayer, option: Option, preset: Preset, effective_bits: int | None = None) -> dict:
    """``layer`` at ``option`` on ``preset``: what it is, its cycles, latency, energy and its parts, DRAM bits, and
    its ``breakdown``; with ``effective_bits`` (a dynamic-precision preset), when its activations need only that
    many bits (``cost_models.pricing.effective_cost``), and a column saying so."""
    if effective_bits is None:
        cost = option_cost(layer, preset, option)
    else:
        cost = effective_cost(layer, preset, option, effective_bits)
    needed = {}
    if effective_bits is not None:  # what was charged: options that cannot trim stream their own bits
        needed["effective_bits"] = min(effective_bits, option.a_bits) if trims(option, preset) else option.a_bits
    return {
        "preset": preset.name,
        "layer": layer.name,
        "block": -1 if layer.block is None else layer.block,
        "role": layer.role,
        "kind": layer.kind,
        "fixed_option": -1 if layer.fixed_option is None else layer.fixed_option,
        "option": option.code,
        "option_name": option.name,
        "w_bits": option.w_bits,
        "a_bits": option.a_bits,
        **needed,
        "macs": layer.macs,
        "cycles": cost.cycles,
        "stall_cycles": cost.stall_cycles,
        "latency_us": preset.cycles_to_us(cost.cycles),
        "energy_pj": cost.energy_pj,
        "e_compute_pj": cost.e_compute_pj,
        "e_sram_pj": cost.e_sram_pj,
        "e_dram_pj": cost.e_dram_pj,
        "dram_read_bits": cost.dram_read_bits,
        "dram_write_bits": cost.dram_write_bits,
        "dram_bits": cost.dram_bits,
        **breakdown(cost, preset),
    }


def breakdown(cost, preset) -> dict:
    """Where a ``LayerCost``'s cycles and energy go: compute, fill and drain, and DRAM-bound cycles, the share of the
    compute units doing mapped work (``utilisation``: active unit-cycles / unit-cycles, NaN for a layer that computes
    nothing), and the SRAM energy of each buffer (bits × the preset's pJ/bit, as ``cost_models._energy``)."""
    per_buffer = {
        f"e_{buffer}_pj": getattr(cost, f"{buffer}_read_bits") * preset.sram_pj_per_bit(buffer, "read")
        + getattr(cost, f"{buffer}_write_bits") * preset.sram_pj_per_bit(buffer, "write")
        for buffer in ("ibuf", "wbuf", "obuf")
    }
    return {
        "compute_cycles": cost.compute_cycles,
        "fill_drain_cycles": cost.fill_drain_cycles,
        "mem_cycles": cost.mem_cycles,
        "utilisation": cost.active_unit_cycles / cost.unit_cycles if cost.unit_cycles else float("nan"),
        **per_buffer,
    }
