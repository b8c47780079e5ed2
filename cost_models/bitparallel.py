"""Fixed-width bit-parallel array (DaDianNao / Eyeriss-like, 16-bit): no speed-up below its width.

Geometry ``tiles`` × ``filters`` × ``lanes`` multipliers × ``windows`` positions, ``pe_width`` bits wide
(DaDianNao: 16 × 16 × 16 × 1, docs/hardware.md §2.1; cycles ``N·P·Q·ceil(K/(16·T))·R·S·ceil(C/16)``). Operands up to
``pe_width`` bits take one pass; wider operands (32-bit full precision) take ``ceil(a/pe)·ceil(w/pe)`` passes [our
assumption: the usual multi-pass decomposition]. Fewer bits shrink memory traffic only. Every multiplier is charged
every cycle [our assumption, as Bit Fusion's simulator charges its whole core].
"""

from __future__ import annotations

from cost_models._tiling import Mapping
from cost_models.preset import ParallelArray, Preset

__all__ = ["array_mapping"]


def array_mapping(preset: Preset, in_ch: int, a_bits: int, w_bits: int, *, layer_windows: int = 1, **common) -> Mapping:
    """Mapping onto the fixed-width array: ``lanes`` input channels × ``filters·tiles`` output channels ×
    ``windows`` positions per cycle, ``ceil(a/pe)·ceil(w/pe)`` passes per step.

    Sources: DaDianNao geometry and cycle count ``N·P·Q·ceil(K/(16·T))·R·S·ceil(C/16)`` (DNNsim DaDianNao example,
    isakedo/DNNsim @4748a60; docs/hardware.md §2.1) [repo]; multi-pass decomposition above ``pe_width`` [our
    assumption]; one active multiplier-cycle per MAC and pass, idle for the rest (docs/hardware.md §5.3) [proposal].
    """
    array: ParallelArray = preset.array
    passes = -(-a_bits // array.pe_width) * -(-w_bits // array.pe_width)
    return Mapping(
        rows=array.lanes,
        cols=array.filters * array.tiles,
        windows=array.windows,
        pack=1,
        temporal=passes,
        im2col=in_ch <= array.im2col_max_in_ch,
        a_bits=a_bits,
        w_bits=w_bits,
        units=array.tiles * array.filters * array.lanes * array.windows,
        unit_reduction=1,
        unit_temporal=passes,
        **common,
    )
