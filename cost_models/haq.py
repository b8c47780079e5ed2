"""Interoperability: read a SCALE-Sim topology CSV as a layer table; write a HAQ-style lookup table (``.npy``).

SCALE-Sim topology (scalesim-project/scale-sim-v2, docs/hardware.md §4.2): columns ``Layer name, IFMAP Height, IFMAP
Width, Filter Height, Filter Width, Channels, Num Filter, Strides``, then v2's optional stride width and v3's
``Sparsity``. SCALE-Sim has no padding column: it takes the IFMAP as given and sizes the output as
``ceil((ifmap - filter + stride) / stride)`` (v2 and v3 ``scalesim/topology_utils.py``; v1 rounded down). Where that
division is not exact, the rounding up stands for padding the simulator assumes without saying, so a layer here gets
the smallest symmetric padding that gives SCALE-Sim's output size (its MACs and output traffic are then SCALE-Sim's).
Rows with a name only (network separators in SCALE-Sim's files) are skipped, as v1 skips them. Every layer is an
always-run layer at ``fixed_option``, unless ``gated`` (a regular expression searched in the layer names, whose match
is the unit; ``dfs_sim.layer_table.gated_unit_finder``) marks it as part of a gated block, as ONNX and torch imports
do, so that an imported network replays with traces.

HAQ (mit-han-lab/haq, docs/hardware.md §4.5): an array indexed ``[layer, w_bits - 1, a_bits - 1]``, one entry per layer
and bit pair, holding one metric; a network's cost is the sum over layers of the looked-up entries.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from cost_models.model import layer_cost
from cost_models.preset import Preset, load_preset
from dfs_sim._atomic import atomic_path
from dfs_sim.errors import LayerTableError
from dfs_sim.layer_table import PROJECTION_NAMES, ConvLayer, LayerTable, gated_unit_finder
from dfs_sim.options import DFS_OPTIONS

__all__ = ["read_scalesim_topology", "haq_table", "write_haq_table", "HAQ_METRICS"]

_SCALESIM_COLUMNS = (
    "Layer name",
    "IFMAP Height",
    "IFMAP Width",
    "Filter Height",
    "Filter Width",
    "Channels",
    "Num Filter",
    "Strides",
)
HAQ_METRICS = ("cycles", "energy_pj", "e_compute_pj", "e_sram_pj", "e_dram_pj", "dram_bits", "latency_us")


def read_scalesim_topology(
    path: str | os.PathLike, fixed_option: int = DFS_OPTIONS[-1].code, gated: str | None = None
) -> LayerTable:
    """Layer table from a SCALE-Sim conv topology CSV; raises ``LayerTableError`` naming the file and row."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LayerTableError(path, f"cannot read topology: {error}") from None
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    if not rows:
        raise LayerTableError(path, "empty topology file")
    header = [cell.strip() for cell in rows[0] if cell.strip()]
    if tuple(header[: len(_SCALESIM_COLUMNS)]) != _SCALESIM_COLUMNS:
        raise LayerTableError(path, f"header must start with {', '.join(_SCALESIM_COLUMNS)}; got {', '.join(header)}")
    layers = []
    unit_of = gated_unit_finder(gated)
    block_of_unit: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        cells = [cell.strip() for cell in row]
        if not any(cells[1:]):
            continue  # a name alone: a separator between networks
        try:
            name = cells[0]
            height, width, fh, fw, channels, filters, stride = (int(cells[i]) for i in range(1, 8))
        except (IndexError, ValueError):
            raise LayerTableError(path, f"line {line}: expected a name and 7 integers, got {row}") from None
        if fh != fw:
            raise LayerTableError(path, f"line {line}: only square filters are supported, got {fh}x{fw}")
        stride_width = cells[8] if len(cells) > 8 and cells[8] and ":" not in cells[8] else str(stride)
        if stride_width != str(stride):
            raise LayerTableError(
                path, f"line {line}: only equal strides are supported, got {stride} and {stride_width}"
            )
        unit = unit_of(name)
        block: int | None = None
        fixed: int | None = fixed_option
        role = "main"
        if unit is not None:
            block = block_of_unit.setdefault(unit[0], len(block_of_unit))
            fixed, role = (fixed_option, "projection") if PROJECTION_NAMES.search(unit[1]) else (None, "main")
        try:
            padding = _scalesim_padding(height, width, fh, stride)
            layers.append(
                ConvLayer(
                    channels,
                    filters,
                    height,
                    width,
                    fh,
                    stride,
                    padding,
                    name=name or f"layer{line - 1}",
                    kind="conv",
                    block=block,
                    fixed_option=fixed,
                    role=role,
                )
            )
        except LayerTableError as error:
            raise LayerTableError(path, f"line {line}: {error.problem}") from None
    return LayerTable(layers, source=path)


def scalesim_output_size(size: int, kernel: int, stride: int) -> int:
    """SCALE-Sim v2/v3's output size: ``ceil((size - kernel + stride) / stride)`` (``topology_utils.py``)."""
    return -(-(size - kernel + stride) // stride)


def _scalesim_padding(height: int, width: int, kernel: int, stride: int) -> int:
    """The smallest symmetric padding under which a ``ConvLayer`` has SCALE-Sim's output height and width."""
    targets = (scalesim_output_size(height, kernel, stride), scalesim_output_size(width, kernel, stride))
    for padding in range(stride):
        sizes = tuple((size + 2 * padding - kernel) // stride + 1 for size in (height, width))
        if sizes == targets:
            return padding
    raise LayerTableError(
        "topology",
        f"no one padding gives SCALE-Sim's output {targets[0]}x{targets[1]} for a {height}x{width} input, "
        f"a {kernel}x{kernel} filter and stride {stride}",
    )


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
