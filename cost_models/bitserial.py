"""Bit-serial accelerators on the DaDianNao tile geometry: Stripes (activations serial) and Loom (both serial).

Geometry: ``tiles`` × (``filters`` × ``windows``) Serial Inner-Product units (SIPs) × ``lanes`` input channels
(DNNsim defaults, isakedo/DNNsim @4748a60, hw.md §2.1-2.4). One step covers ``windows`` output positions ×
``filters·tiles`` output channels × ``lanes`` input channels of one kernel tap.

* Stripes (Judd et al., MICRO 2016; DNNsim ``Stripes::process_tiles``): a step takes ``a`` cycles (one activation bit
  per cycle) [repo/paper]; weights are ``pe_width`` bits parallel, so a wider weight (32-bit full precision) takes
  ``ceil(w/pe_width)`` passes [our assumption].
* Loom (Sharify et al., DAC 2018; DNNsim ``Loom::process_mmul``): a step takes ``ceil(a/b) · w`` cycles with ``b``
  activation bits per cycle [repo/paper].

Speed-up over the equal-peak 16-bit bit-parallel twin (``parallel_twin``) on layers that fill the tiles: 16/a for
Stripes, 256/(a·w) for Loom with even ``a`` (hw.md §2.2, §2.4). SRAM reads scale with the operands' bits because
activations and weights are stored and read at their own widths (bit-transposed storage, hw.md §5.3).
"""

from __future__ import annotations

from cost_models._tiling import Mapping
from cost_models.preset import ParallelArray, Preset, SerialArray
from dfs_sim.errors import ConfigError

__all__ = ["serial_cycles", "array_mapping", "parallel_twin"]


def serial_cycles(array: SerialArray, a_bits: int, w_bits: int) -> int:
    """Cycles per step: Stripes ``ceil(a/b)·ceil(w/pe_width)``, Loom ``ceil(a/b)·w`` (see module docstring)."""
    act_passes = -(-a_bits // array.act_bits_per_cycle)
    if array.variant == "loom":
        return act_passes * w_bits
    return act_passes * -(-w_bits // array.pe_width)


def array_mapping(preset: Preset, in_ch: int, a_bits: int, w_bits: int, **common) -> tuple[Mapping, int]:
    """Mapping onto the SIP array and the number of SIPs charged per cycle (all of them, idle or not)."""
    array: SerialArray = preset.array
    mapping = Mapping(
        rows=array.lanes, cols=array.filters * array.tiles, windows=array.windows, pack=1,
        temporal=serial_cycles(array, a_bits, w_bits), im2col=in_ch <= array.im2col_max_in_ch, a_bits=a_bits, w_bits=w_bits, **common,
    )
    return mapping, array.tiles * array.filters * array.windows


def parallel_twin(preset: Preset, name: str | None = None) -> Preset:
    """The bit-parallel preset with the same peak 16b×16b MACs/cycle, tiles, lanes, buffers, DRAM and clock.

    Peak of the serial array at ``pe_width`` bits: ``tiles·filters·windows·lanes / serial_cycles(pe, pe)``. The twin
    has one window and ``filters·windows / serial_cycles`` filters per tile (DaDianNao for Stripes). Its energy
    section is copied unchanged, so compare its cycles, not its compute energy.
    """
    array: SerialArray = preset.array
    steps = serial_cycles(array, array.pe_width, array.pe_width)
    filters, remainder = divmod(array.filters * array.windows, steps)
    if remainder or filters < 1:
        raise ConfigError(preset.source or preset.name, "array: no integer bit-parallel twin for this geometry")
    twin_array = ParallelArray(tiles=array.tiles, filters=filters, windows=1, lanes=array.lanes,
                               pe_width=array.pe_width, im2col_max_in_ch=array.im2col_max_in_ch)
    return preset.replace(name=name or f"{preset.name}_parallel_twin", kind="bitparallel", array=twin_array)
