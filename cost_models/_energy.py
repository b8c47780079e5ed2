"""Pricing step (Accelergy style): action counts × the preset's per-action energies, in pJ.

Counts come from the models (active and idle compute-unit cycles, SRAM bits read and written per buffer, DRAM bits);
prices come only from the preset file. Formula as the public Bit Fusion simulator's ``Stats.get_energy``
(docs/hardware.md §1.3) [repo], with its core term split as docs/hardware.md §5.2/§5.3 propose: compute = active
unit-cycles × ``unit_cycle_pj`` + idle unit-cycles × ``idle_unit_cycle_pj`` (the simulator charges busy cycles × the
whole core, i.e. idle = active price), SRAM = Σ bits × pJ/bit per buffer and direction, DRAM = (read + write) bits ×
pJ/bit; no leakage term (as the simulator) [repo].
"""

from __future__ import annotations

from cost_models.preset import Preset

__all__ = ["price_sram", "price_dram", "price_compute", "search_prices"]


def price_compute(active_unit_cycles: float, idle_unit_cycles: float, preset: Preset) -> float:
    energy = preset.energy
    return active_unit_cycles * energy.unit_cycle_pj + idle_unit_cycles * energy.idle_unit_cycle_pj


def price_sram(counts: dict[str, int], preset: Preset) -> float:
    """``counts`` holds ``ibuf_read_bits`` … ``obuf_write_bits``; each is priced at ``Preset.sram_pj_per_bit`` (the
    preset's ``*_pj_per_bit``, scaled with the buffer's size where the preset says so)."""
    return sum(
        counts[f"{buf}_{way}_bits"] * preset.sram_pj_per_bit(buf, way)
        for buf in ("ibuf", "wbuf", "obuf")
        for way in ("read", "write")
    )


def price_dram(bits: int, preset: Preset) -> float:
    return bits * preset.dram.pj_per_bit


def search_prices(preset: Preset) -> tuple[float, ...]:
    """Prices in the order the tiling search wants them (its objective's energy, and ties between tilings)."""
    e = preset.energy
    sram = [preset.sram_pj_per_bit(buf, way) for buf in ("ibuf", "wbuf", "obuf") for way in ("read", "write")]
    return (e.unit_cycle_pj, e.idle_unit_cycle_pj, *sram, preset.dram.pj_per_bit)
