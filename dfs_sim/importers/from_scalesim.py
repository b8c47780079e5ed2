"""The layer table of a SCALE-Sim topology CSV (scalesim-project/scale-sim-v2, docs/hardware.md §4.2).

Columns ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides``, then
v2's optional stride width and v3's ``Sparsity``. SCALE-Sim has no padding column: it takes the IFMAP as given and
sizes the output as ``ceil((ifmap - filter + stride) / stride)`` (v2 and v3 ``scalesim/topology_utils.py``; v1
rounded down). Where that division is not exact, the rounding up stands for padding the simulator assumes without
saying, so a layer here gets the smallest symmetric padding that gives SCALE-Sim's output size (its MACs and output
traffic are then SCALE-Sim's). Rows with a name only (network separators in SCALE-Sim's files) are skipped, as v1
skips them.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from dfs_sim.errors import LayerTableError
from dfs_sim.layer_table import ConvLayer, LayerTable, UnitNumbering, gated_unit_finder
from dfs_sim.options import DFS_OPTIONS, Option, full_precision_code

__all__ = ["SCALESIM_COLUMNS", "layer_table_from_scalesim", "scalesim_output_size"]

SCALESIM_COLUMNS = (
    "Layer name",
    "IFMAP Height",
    "IFMAP Width",
    "Filter Height",
    "Filter Width",
    "Channels",
    "Num Filter",
    "Strides",
)


def layer_table_from_scalesim(
    path: str | os.PathLike,
    gated: str | re.Pattern | Callable[[str], bool] | None = None,
    options: Sequence[Option] = DFS_OPTIONS,
) -> LayerTable:
    """The layer table of the SCALE-Sim conv topology CSV in ``path``: every layer always runs at the
    full-precision option of ``options``, unless ``gated`` (a regular expression searched in the layer names, whose
    match is the unit, as for the other importers) marks it as part of a gated unit (``UnitNumbering``), so that an
    imported network replays with traces. Raises ``LayerTableError`` naming the file and the line."""
    path = Path(path)
    try:
        fixed_option = full_precision_code(options)
    except ValueError as error:
        raise LayerTableError(path, str(error)) from None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LayerTableError(path, f"cannot read topology: {error}") from None
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    if not rows:
        raise LayerTableError(path, "empty topology file")
    header = [cell.strip() for cell in rows[0] if cell.strip()]
    if tuple(header[: len(SCALESIM_COLUMNS)]) != SCALESIM_COLUMNS:
        raise LayerTableError(path, f"header must start with {', '.join(SCALESIM_COLUMNS)}; got {', '.join(header)}")
    layers = []
    unit_of = gated_unit_finder(gated)
    numbering = UnitNumbering(fixed_option)
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
        placed = numbering.place(unit_of(name))
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
                    **placed,
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
