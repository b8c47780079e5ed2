"""One tidy row per layer and option, shared by the cost-table command and the policy frame."""

from __future__ import annotations

from cost_models.model import effective_cost, option_cost, trims
from cost_models.preset import Preset
from dfs_sim.layer_table import ConvLayer
from dfs_sim.options import Option

__all__ = ["breakdown", "cost_row"]


def cost_row(layer: ConvLayer, option: Option, preset: Preset, effective_bits: int | None = None) -> dict:
    """``layer`` at ``option`` on ``preset``: what it is, its cycles, latency, energy and its parts, DRAM bits, and
    its ``breakdown``; with ``effective_bits`` (a dynamic-precision preset), when its activations need only that
    many bits (``cost_models.model.effective_cost``), and a column saying so."""
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
