"""Bit Fusion (Sharma et al., ISCA 2018): how a layer maps onto a rows × cols array of Fusion Units.

Sources: the paper and act-lab page (spatial fusion of 2-bit BitBricks, docs/hardware.md §1.1), the public simulator
hsharma35/bitfusion @04ec1c8 (packing along input channels, im2col for the first layer, docs/hardware.md §1.3), and our
extension for operands wider than ``pmax`` (temporal fusion, docs/hardware.md §5.2), which the public simulator cannot
run.
"""

from __future__ import annotations

from cost_models._tiling import Mapping
from cost_models.preset import BitFusionArray, Preset

__all__ = ["fusion_rates", "array_mapping"]


def fusion_rates(pmax: int, pmin: int, a_bits: int, w_bits: int) -> tuple[int, int]:
    """(spatial packing r_s, temporal passes t): a Fusion Unit does r_s / t MACs per cycle.

    ``a' = max(a, pmin)``, ``w' = max(w, pmin)``;
    ``r_s = floor(pmax / min(a', pmax)) · floor(pmax / min(w', pmax))`` (public simulator ``get_perf_factor`` [repo]:
    odd widths round down to the power-of-two class, 5..7 bits cost what 8 bits cost);
    ``t = ceil(a'/pmax) · ceil(w'/pmax)`` (temporal fusion above ``pmax``: 16 bit takes 4 cycles at pmax 8 [paper,
    act-lab page]; the product rule for mixed widths is our inference, docs/hardware.md §5.2). So any 9..16-bit operand
    costs what a 16-bit one costs.
    """
    a = max(a_bits, pmin)
    w = max(w_bits, pmin)
    spatial = (pmax // min(a, pmax)) * (pmax // min(w, pmax))
    temporal = -(-a // pmax) * -(-w // pmax)
    return spatial, temporal


def array_mapping(preset: Preset, in_ch: int, a_bits: int, w_bits: int, *, layer_windows: int = 1, **common) -> Mapping:
    """Mapping of a layer onto the Fusion-Unit array, with its physical units for the compute energy.

    Reduction runs down the ``rows`` (input channels, packed r_s per FU), output channels across the ``cols``
    [repo]. A layer with at most ``im2col_max_in_ch`` input channels (the RGB stem) is lowered with im2col, so
    K²·C is packed instead of C [repo: first layer].

    Compute energy: the ``rows·cols`` FUs are the units; an FU is active in a cycle when it holds a filter (column)
    and at least one of its r_s packed input channels (row), for ``t`` temporal passes (docs/hardware.md §5.2, "better"
    form: #FU_active · E_FU_cycle + idle FUs · E_FU_idle). The public simulator charges the whole core every compute
    cycle (235.104 pJ = 512 × 0.459 pJ, docs/hardware.md §1.3) [repo]; with ``unit_cycle_pj`` = 0.459 pJ the split gives
    exactly that when every FU is busy (the 64→64 and 512→512 anchors), and ``idle_unit_cycle_pj = unit_cycle_pj``
    reproduces the simulator on every layer.
    """
    array: BitFusionArray = preset.array
    spatial, temporal = fusion_rates(array.pmax, array.pmin, a_bits, w_bits)
    return Mapping(
        rows=array.rows,
        cols=array.cols,
        windows=1,
        pack=spatial,
        temporal=temporal,
        im2col=in_ch <= array.im2col_max_in_ch,
        a_bits=a_bits,
        w_bits=w_bits,
        units=array.rows * array.cols,
        unit_reduction=spatial,
        unit_temporal=temporal,
        **common,
    )
