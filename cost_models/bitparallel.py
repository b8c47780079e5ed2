"""Fixed-width bit-parallel array (DaDianNao / Eyeriss-like, 16-bit): no speed-up below its width.

Geometry ``tiles`` × ``filters`` × ``lanes`` multipliers × ``windows`` positions, ``pe_width`` bits wide
(DaDianNao: 16 × 16 × 16 × 1, hw.md §2.1; cycles ``N·P·Q·ceil(K/(16·T))·R·S·ceil(C/16)``). Operands up to ``pe_width``
bits take one pass; wider operands (32-bit full precision) take ``ceil(a/pe)·ceil(w/pe)`` passes [our assumption:
the usual multi-pass decomposition]. Fewer bits shrink memory traffic only. Every multiplier is charged every cycle
[our assumption, as Bit Fusion's simulator charges its whole core].
"""

from __future__ import annotations

from cost_models._tiling import Mapping
from cost_models.preset import ParallelArray, Preset

__all__ = ["array_mapping"]


def array_mapping(preset: Preset, in_ch: int, a_bits: int, w_bits: int, **common) -> tuple[Mapping, int]:
    array: ParallelArray = preset.array
    passes = -(-a_bits // array.pe_width) * -(-w_bits // array.pe_width)
    mapping = Mapping(
        rows=array.lanes, cols=array.filters * array.tiles, windows=array.windows, pack=1, temporal=passes,
        im2col=in_ch <= array.im2col_max_in_ch, a_bits=a_bits, w_bits=w_bits, **common,
    )
    return mapping, array.tiles * array.filters * array.lanes * array.windows
