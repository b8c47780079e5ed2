"""Bit-serial accelerators on the DaDianNao tile geometry: Stripes (activations serial) and Loom (both serial).

Geometry: ``tiles`` × (``filters`` × ``windows``) Serial Inner-Product units (SIPs) × ``lanes`` input channels
(DNNsim defaults, isakedo/DNNsim @4748a60, docs/hardware.md §2.1-2.4). One step covers ``windows`` output positions ×
``filters·tiles`` output channels × ``lanes`` input channels of one kernel tap.

* Stripes (Judd et al., MICRO 2016; DNNsim ``Stripes::process_tiles``): a step takes ``a`` cycles (one activation bit
  per cycle) [repo/paper]; weights are ``pe_width`` bits parallel, so a wider weight (32-bit full precision) takes
  ``ceil(w/pe_width)`` passes [our assumption].
* Loom (Sharify et al., DAC 2018; DNNsim ``Loom::process_mmul``): a step takes ``ceil(a/b) · w`` cycles with ``b``
  activation bits per cycle [repo/paper].

Speed-up over the equal-peak 16-bit bit-parallel twin (``parallel_twin``) on layers that fill the tiles: 16/a for
Stripes, 256/(a·w) for Loom with even ``a`` (docs/hardware.md §2.2, §2.4). SRAM reads scale with the operands' bits
because activations and weights are stored and read at their own widths (bit-transposed storage, docs/hardware.md §5.3).

Fully connected layers (one output window: ``batch · out_h · out_w == 1``, i.e. the fc layer and the gates' layers
of the CIFAR ResNets) do not run in the window-parallel dataflow, where they would use one of ``windows`` SIP
columns and take ``a`` cycles per step. docs/hardware.md §2.2: Stripes has no speed-up on FC layers (same time as its
bit-parallel twin) [memory]; docs/hardware.md §2.4: Loom's FC time scales with the weight precision only,
``cycles_bitparallel_16x16 · w/16`` [paper abstract]. Both follow from one rule, which this model uses: an FC layer
has no weight reuse, so it is bound by the weight-buffer bandwidth of the equal-peak twin (``pe_width`` bits per lane
per filter slot per cycle). It runs on the twin's geometry (``parallel_twin``: ``lanes`` × twin filters, one
window), and each twin step takes ``ceil(a/pe_width) · stored_w / pe_width`` cycles, where ``stored_w`` is the
stored weight width: ``ceil(w/pe_width)·pe_width`` for Stripes (bit-parallel weights; so the twin's cycles exactly)
and ``w`` for Loom (bit-serial weights; so the twin's cycles × w/16 for w ≤ 16, rounded up once per layer)
[our assumption for the mechanism]. A preset whose geometry has no integer twin keeps the window dataflow on FC
layers. The SIP work (active SIP-cycles) is the same in both dataflows: ``serial_cycles`` per (filter, window) per
``lanes`` chunk.

Compute energy (docs/hardware.md §5.3: E = cycles · #SIPs_active · e_SIP_cycle): the ``tiles·filters·windows`` SIPs
are the units; a SIP is active for ``serial_cycles`` cycles per step in which it holds a real (filter, window) pair and
a chunk of up to ``lanes`` input channels; the other SIP-cycles of the compute cycles are idle and cost
``idle_unit_cycle_pj``. Loom, like Stripes, fills only ``K`` of its ``filters·tiles`` = 256 filter slots per step:
CIFAR ResNets have K ≤ 64, so at least 3/4 of the SIPs idle and Loom (1/8 of Stripes' 16-bit peak) can be slower
than the 16-bit bit-parallel baseline on those layers (``tests/test_cost_models.py`` states it on ResNet-38).
"""

from __future__ import annotations

from cost_models._tiling import Mapping
from cost_models.preset import ParallelArray, Preset, SerialArray
from dfs_sim.errors import ConfigError

__all__ = ["serial_cycles", "array_mapping", "parallel_twin", "twin_filters"]


def serial_cycles(array: SerialArray, a_bits: int, w_bits: int) -> int:
    """Cycles per step: Stripes ``ceil(a/b)·ceil(w/pe_width)``, Loom ``ceil(a/b)·w``.

    Stripes: one activation bit per cycle, ``min(a, 16)`` cycles per step (DNNsim ``Stripes::process_tiles``,
    docs/hardware.md §2.2) [repo]; ``b = act_bits_per_cycle`` generalises it (1 for Stripes). Weights are
    ``pe_width`` bits parallel; a wider weight (32-bit full precision) is split into ``ceil(w/pe_width)`` passes, each
    re-streaming the activation bits [our assumption: the usual multi-pass decomposition, as for the bit-parallel
    array]. Loom: ``ceil(a_eff/b)·w`` cycles per step (DNNsim ``Loom::process_mmul``, docs/hardware.md §2.4) [repo],
    static precision here.
    """
    act_passes = -(-a_bits // array.act_bits_per_cycle)
    if array.variant == "loom":
        return act_passes * w_bits
    return act_passes * -(-w_bits // array.pe_width)


def twin_filters(array: SerialArray) -> int | None:
    """Filters per tile of the equal-peak bit-parallel twin: ``filters·windows / serial_cycles(pe, pe)``, or
    ``None`` when that is not a positive integer. Equal peak: the serial array does ``tiles·filters·windows·lanes``
    1-bit-serial products per cycle and needs ``serial_cycles(pe, pe)`` cycles per ``pe``-bit MAC (docs/hardware.md
    §2.2, §2.4: speed-ups 16/a and 256/(a·w) are quoted against this twin)."""
    filters, remainder = divmod(array.filters * array.windows, serial_cycles(array, array.pe_width, array.pe_width))
    return None if remainder or filters < 1 else filters


def array_mapping(
    preset: Preset,
    in_ch: int,
    a_bits: int,
    w_bits: int,
    *,
    layer_windows: int = 1,
    serial_a_bits: int | None = None,
    **common,
) -> Mapping:
    """Mapping onto the SIP array (window dataflow, or the FC rule for one-window layers; module docstring), with
    the SIPs as the units of the compute energy.

    ``serial_a_bits``: the activation bits the SIPs actually stream, when the data needs fewer than the stored
    ``a_bits`` (dynamic precision: Dynamic Stripes, arXiv 1706.00504, and Loom's runtime trimming detect the
    leading zeros of each group of activations and skip those cycles [paper abstracts, docs/hardware.md §2.3]).
    Storage and traffic stay at ``a_bits``."""
    array: SerialArray = preset.array
    serial_a = a_bits if serial_a_bits is None else serial_a_bits
    sips = array.tiles * array.filters * array.windows
    work = serial_cycles(array, serial_a, w_bits)
    twin = twin_filters(array)
    if layer_windows == 1 and twin is not None:
        pe = array.pe_width
        stored_w = w_bits if array.variant == "loom" else -(-w_bits // pe) * pe
        cols, windows, temporal, temporal_div = twin * array.tiles, 1, -(-serial_a // pe) * stored_w, pe
    else:
        cols, windows, temporal, temporal_div = array.filters * array.tiles, array.windows, work, 1
    return Mapping(
        rows=array.lanes,
        cols=cols,
        windows=windows,
        temporal=temporal,
        temporal_div=temporal_div,
        pack=1,
        im2col=in_ch <= array.im2col_max_in_ch,
        a_bits=a_bits,
        w_bits=w_bits,
        units=sips,
        unit_reduction=array.lanes,
        unit_temporal=work,
        **common,
    )


def parallel_twin(preset: Preset, name: str | None = None) -> Preset:
    """The bit-parallel preset with the same peak 16b×16b MACs/cycle, tiles, lanes, buffers, DRAM and clock.

    Peak of the serial array at ``pe_width`` bits: ``tiles·filters·windows·lanes / serial_cycles(pe, pe)``. The twin
    has one window and ``twin_filters`` = ``filters·windows / serial_cycles`` filters per tile: DaDianNao (16
    filters) for Stripes (docs/hardware.md §2.1, §2.2), 2 filters for Loom at 2 activation bits per cycle
    (docs/hardware.md §2.4: "vs a bit-parallel accelerator with the same peak"). Its energy section is copied unchanged
    (SIP prices on multipliers), so compare its cycles, not its compute energy.
    """
    array: SerialArray = preset.array
    filters = twin_filters(array)
    if filters is None:
        raise ConfigError(preset.source or preset.name, "array: no integer bit-parallel twin for this geometry")
    twin_array = ParallelArray(
        tiles=array.tiles,
        filters=filters,
        windows=1,
        lanes=array.lanes,
        pe_width=array.pe_width,
        im2col_max_in_ch=array.im2col_max_in_ch,
    )
    return preset.replace(name=name or f"{preset.name}_parallel_twin", kind="bitparallel", array=twin_array)
