"""Pricing step (Accelergy style): action counts × the preset's per-action energies, in pJ.

Counts come from the models (compute-unit cycles, SRAM bits read and written per buffer, DRAM bits); prices come
only from the preset file. Formula as the public Bit Fusion simulator's ``Stats.get_energy`` (hw.md §1.3) [repo]:
compute = busy cycles × core energy per cycle (here: units × energy per unit-cycle), SRAM = Σ bits × pJ/bit per
buffer and direction, DRAM = (read + write) bits × pJ/bit; no leakage term (as the simulator) [repo].
"""

from __future__ import annotations

from cost_models.preset import Preset

__all__ = ["price_sram", "price_dram", "price_compute", "tie_break_prices"]


def price_compute(unit_cycles: float, preset: Preset) -> float:
    return unit_cycles * preset.energy.unit_cycle_pj


def price_sram(counts: dict[str, int], preset: Preset) -> float:
    """``counts`` holds ``ibuf_read_bits`` … ``obuf_write_bits``; each is priced at the matching ``*_pj_per_bit``."""
    energy = preset.energy
    return sum(counts[f"{buf}_{way}_bits"] * getattr(energy, f"{buf}_{way}_pj_per_bit")
               for buf in ("ibuf", "wbuf", "obuf") for way in ("read", "write"))


def price_dram(bits: int, preset: Preset) -> float:
    return bits * preset.dram.pj_per_bit


def tie_break_prices(preset: Preset, units: int) -> tuple[float, ...]:
    """Prices in the order the tiling search wants them (to break ties between equally fast tilings)."""
    e = preset.energy
    return (units * e.unit_cycle_pj, e.ibuf_read_pj_per_bit, e.ibuf_write_pj_per_bit, e.wbuf_read_pj_per_bit,
            e.wbuf_write_pj_per_bit, e.obuf_read_pj_per_bit, e.obuf_write_pj_per_bit, preset.dram.pj_per_bit)
