"""Layer tables: every compute layer of a network with its shape, and which gated block it belongs to.

A layer table is the only thing the hardware models see of the network. Each ``ConvLayer`` row is either part of a
gated block (``block`` is its index among the gated blocks, and it runs at the block's chosen option) or always runs
(``block is None``) at ``fixed_option``. A strided block's 1×1 projection has ``role="projection"``: it belongs to
its block but runs at its ``fixed_option`` whatever the gate chose, because the shortcut must be computed even when
the block is skipped (docs/design.md §1). The gates' own layers are listed with ``kind="gate"``: they cost something.

Nothing here imports torch: hardware people build tables without a model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, overload

from dfs_sim.errors import LayerTableError
from dfs_sim.options import DFS_OPTIONS, Option, full_precision_code

__all__ = [
    "CIFAR_DEPTHS",
    "GATE_EMBED_DIM",
    "PROJECTION_NAMES",
    "ConvLayer",
    "LayerTable",
    "UnitNumbering",
    "cifar_resnet_layers",
    "gated_unit_finder",
    "narrowed",
    "narrowed_channels",
]

KINDS = ("conv", "linear", "gate")
ROLES = ("main", "projection")
CIFAR_DEPTHS = (8, 14, 20, 26, 32, 38, 44, 56, 74, 110)
GATE_EMBED_DIM = 10  # the gate's 1×1 conv width and LSTM size in the DFS and SkipNet reference code


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """A convolution's output height (or width): ``(size + 2·padding - kernel) // stride + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


@dataclass(frozen=True)
class ConvLayer:
    """One compute layer; a fully connected layer is a 1×1 convolution on a 1×1 input.

    Shapes follow the usual convolution notation: ``batch`` images of ``in_ch × in_h × in_w`` convolved with
    ``out_ch`` filters of ``in_ch/groups × kernel × kernel`` at ``stride`` with ``padding`` on every side.
    """

    in_ch: int
    out_ch: int
    in_h: int
    in_w: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    batch: int = 1
    name: str = ""
    kind: str = "conv"
    block: int | None = None
    fixed_option: int | None = None
    role: str = "main"

    def __post_init__(self) -> None:
        problem = self._shape_problem()
        if problem:
            raise LayerTableError(self.name or "layer", problem)

    def _shape_problem(self) -> str | None:
        for field_name in ("in_ch", "out_ch", "in_h", "in_w", "kernel", "stride", "groups", "batch"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                return f"{field_name} must be a positive integer, got {value!r}"
        if isinstance(self.padding, bool) or not isinstance(self.padding, int) or self.padding < 0:
            return f"padding must be a non-negative integer, got {self.padding!r}"
        if self.in_ch % self.groups or self.out_ch % self.groups:
            return f"groups={self.groups} does not divide in_ch={self.in_ch} and out_ch={self.out_ch}"
        if self.in_h + 2 * self.padding < self.kernel or self.in_w + 2 * self.padding < self.kernel:
            return f"kernel {self.kernel} is larger than the padded input {self.in_h}x{self.in_w}+2*{self.padding}"
        if self.kind not in KINDS:
            return f"kind must be one of {KINDS}, got {self.kind!r}"
        if self.role not in ROLES:
            return f"role must be one of {ROLES}, got {self.role!r}"
        for field_name in ("block", "fixed_option"):
            value = getattr(self, field_name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                return f"{field_name} must be null or a non-negative integer, got {value!r}"
        if self.role == "projection" and (self.block is None or self.fixed_option is None):
            return "a projection belongs to a gated block and runs at a fixed_option"
        if self.role == "main" and self.block is not None and self.fixed_option is not None:
            return "a main layer of a gated block runs at the block's option, so fixed_option must be null"
        return None

    @property
    def out_h(self) -> int:
        return output_size(self.in_h, self.kernel, self.stride, self.padding)

    @property
    def out_w(self) -> int:
        return output_size(self.in_w, self.kernel, self.stride, self.padding)

    @property
    def macs(self) -> int:
        """Multiply-accumulates: N·K·P·Q·(C/g)·R·S (docs/hardware.md §2 notation)."""
        return self.batch * self.out_ch * self.out_h * self.out_w * (self.in_ch // self.groups) * self.kernel**2

    @property
    def weight_count(self) -> int:
        return self.out_ch * (self.in_ch // self.groups) * self.kernel**2

    @property
    def input_count(self) -> int:
        return self.batch * self.in_ch * self.in_h * self.in_w

    @property
    def output_count(self) -> int:
        return self.batch * self.out_ch * self.out_h * self.out_w

    @property
    def always_runs(self) -> bool:
        """True when the layer's cost does not depend on any gate decision."""
        return self.block is None

    def to_record(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict, source: object = "layer table") -> ConvLayer:
        """Build a layer from a metadata record; unknown or missing keys raise ``LayerTableError``."""
        if not isinstance(record, dict):
            raise LayerTableError(source, f"layer entry is not an object: {record!r}")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(record) - known)
        if unknown:
            raise LayerTableError(source, f"layer {record.get('name', '?')!r} has unknown keys {unknown}")
        required = {"in_ch", "out_ch", "in_h", "in_w", "kernel", "name", "kind", "block", "fixed_option", "role"}
        missing = sorted(required - set(record))
        if missing:
            raise LayerTableError(source, f"layer {record.get('name', '?')!r} lacks keys {missing}")
        try:
            return cls(**record)
        except LayerTableError as error:
            raise LayerTableError(source, f"layer {record.get('name', '?')!r}: {error.problem}") from None


class LayerTable(Sequence[ConvLayer]):
    """An ordered, validated list of ``ConvLayer`` rows with the gated-block bookkeeping done once."""

    def __init__(self, layers: Iterable[ConvLayer], source: object = "layer table") -> None:
        self._layers = tuple(layers)
        self.source = str(source)
        self._hash: str | None = None
        if not self._layers:
            raise LayerTableError(source, "the layer table is empty")
        names = [layer.name for layer in self._layers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise LayerTableError(source, f"duplicate layer names {duplicates[:3]}")
        unfixed = [layer.name for layer in self._layers if layer.block is None and layer.fixed_option is None]
        if unfixed:
            raise LayerTableError(source, f"layer {unfixed[0]!r} is outside every gated block and needs a fixed_option")
        blocks = sorted({layer.block for layer in self._layers if layer.block is not None})
        if blocks != list(range(len(blocks))):
            raise LayerTableError(source, f"gated block indices must be 0..B-1 without gaps, got {blocks[:5]}...")
        for block in blocks:
            if not any(layer.block == block and layer.role == "main" for layer in self._layers):
                raise LayerTableError(source, f"gated block {block} has no main layer")
        self.num_blocks = len(blocks)

    def __len__(self) -> int:
        return len(self._layers)

    @overload
    def __getitem__(self, index: int) -> ConvLayer: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[ConvLayer, ...]: ...

    def __getitem__(self, index: int | slice) -> ConvLayer | tuple[ConvLayer, ...]:
        return self._layers[index]

    def __iter__(self) -> Iterator[ConvLayer]:
        return iter(self._layers)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LayerTable) and self._layers == other._layers

    def __hash__(self) -> int:
        return hash(self._layers)

    def __repr__(self) -> str:
        return f"LayerTable({len(self)} layers, {self.num_blocks} gated blocks, {self.total_macs:,} MACs)"

    @property
    def layers(self) -> tuple[ConvLayer, ...]:
        return self._layers

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self._layers)

    def block_layers(self, block: int) -> tuple[ConvLayer, ...]:
        return tuple(layer for layer in self._layers if layer.block == block)

    def fixed_layers(self) -> tuple[ConvLayer, ...]:
        return tuple(layer for layer in self._layers if layer.block is None)

    def block_macs(self, block: int, role: str = "main") -> int:
        return sum(layer.macs for layer in self.block_layers(block) if layer.role == role)

    def check_options(self, num_options: int) -> None:
        """Every ``fixed_option`` must name one of ``num_options`` codes."""
        for layer in self._layers:
            if layer.fixed_option is not None and layer.fixed_option >= num_options:
                raise LayerTableError(
                    self.source,
                    f"layer {layer.name!r} has fixed_option {layer.fixed_option} but only {num_options} options exist",
                )

    def to_records(self) -> list[dict]:
        return [layer.to_record() for layer in self._layers]

    @classmethod
    def from_records(cls, records: list[dict], source: object = "layer table") -> LayerTable:
        if not isinstance(records, list):
            raise LayerTableError(source, "'layers' must be a list of layer objects")
        return cls((ConvLayer.from_record(record, source) for record in records), source=source)

    def content_hash(self) -> str:
        """A stable hash of the shapes and bookkeeping (not of ``source``): equal tables hash equal."""
        if self._hash is None:  # the table is immutable, so the hash is computed once
            payload = json.dumps(self.to_records(), sort_keys=True, separators=(",", ":"))
            self._hash = hashlib.sha256(payload.encode()).hexdigest()[:16]
        return self._hash


def cifar_resnet_layers(
    depth: int = 38,
    *,
    num_classes: int = 10,
    options: Sequence[Option] = DFS_OPTIONS,
    input_size: int = 32,
    in_channels: int = 3,
    widths: tuple[int, int, int] = (16, 32, 64),
    gates: bool = True,
    gate_outputs: int | None = None,
) -> LayerTable:
    """The gated CIFAR ResNet (6n+2 layers, BasicBlock) of the DFS and SkipNet reference code, as a layer table.

    Three groups of n blocks at widths 16/32/64; the first block of groups 2 and 3 has stride 2 and a 1×1 projection.
    The stem, the first block, the final linear layer, every projection and the gates run at full precision
    (the option with ``float=True``). Every block but the first is gated; the gate of gated block b reads the output
    of the block before it: AvgPool → 1×1 conv to 10 channels → LSTM(10, 10) → Linear(10, gate_outputs):
    one output per option for DFS's softmax gate (the default, ``len(options)``), one for SkipNet's sigmoid gate.
    The LSTM step is listed as one linear layer of 20 → 40 (the four gates over input and hidden state).
    ``gates=False`` leaves the gate layers out: a static baseline runs every block at one option and runs no gate.
    """
    if depth < 8 or (depth - 2) % 6:
        raise LayerTableError(
            f"cifar_resnet_layers(depth={depth})", "depth must be 6n+2 with n >= 1 (8, 14, 20, 38, 74, 110, ...)"
        )
    try:
        fp = full_precision_code(options)
    except ValueError as error:
        raise LayerTableError("cifar_resnet_layers", str(error)) from None
    blocks_per_group = (depth - 2) // 6
    layers: list[ConvLayer] = [
        ConvLayer(in_channels, widths[0], input_size, input_size, 3, 1, 1, name="stem", fixed_option=fp)
    ]
    channels, size, gated = widths[0], input_size, 0
    for group, width in enumerate(widths):
        for index in range(blocks_per_group):
            stride = 2 if group > 0 and index == 0 else 1
            prefix = f"group{group + 1}.block{index}"
            is_gated = not (group == 0 and index == 0)
            block = gated if is_gated else None
            fixed = None if is_gated else fp
            if is_gated and gates:
                outputs = len(options) if gate_outputs is None else gate_outputs
                layers += _gate_layers(gated, channels, outputs, fp)
            out_size = (size + 2 - 3) // stride + 1
            layers.append(
                ConvLayer(
                    channels, width, size, size, 3, stride, 1, name=f"{prefix}.conv1", block=block, fixed_option=fixed
                )
            )
            layers.append(
                ConvLayer(
                    width, width, out_size, out_size, 3, 1, 1, name=f"{prefix}.conv2", block=block, fixed_option=fixed
                )
            )
            if stride != 1 or channels != width:
                layers.append(
                    ConvLayer(
                        channels,
                        width,
                        size,
                        size,
                        1,
                        stride,
                        0,
                        name=f"{prefix}.projection",
                        block=block,
                        fixed_option=fp,
                        role="projection",
                    )
                )
            channels, size = width, out_size
            gated += is_gated
    layers.append(ConvLayer(channels, num_classes, 1, 1, 1, name="fc", kind="linear", fixed_option=fp))
    return LayerTable(layers, source=f"cifar_resnet_layers(depth={depth})")


def _gate_layers(block: int, in_channels: int, outputs: int, fp: int) -> list[ConvLayer]:
    embed = GATE_EMBED_DIM
    return [
        ConvLayer(in_channels, embed, 1, 1, 1, name=f"gate{block}.conv", kind="gate", fixed_option=fp),
        ConvLayer(2 * embed, 4 * embed, 1, 1, 1, name=f"gate{block}.lstm", kind="gate", fixed_option=fp),
        ConvLayer(embed, outputs, 1, 1, 1, name=f"gate{block}.fc", kind="gate", fixed_option=fp),
    ]


def narrowed_channels(channels: int, width: float, groups: int = 1) -> int:
    """``width`` of ``channels``, rounded up to a whole multiple of ``groups`` (at least one group) [our assumption:
    a slimmable layer keeps whole groups; slimmable networks round their widths up likewise]."""
    return max(groups, math.ceil(channels * width / groups - 1e-9) * groups)


def narrowed(main: Sequence[ConvLayer], width: float) -> tuple[ConvLayer, ...]:
    """A gated unit's main layers (in table order, a chain) run at ``width`` of their internal channels.

    The internal channels are the outputs of every main layer but the last; each is also the input of the next
    layer, so both shrink together, while the unit's input and output keep their width (the residual sum and the
    next unit see the full tensor). A unit of one main layer computes ``width`` of its outputs (channel gating of a
    single convolution). A depthwise layer (``groups == in_ch == out_ch``) keeps one group per channel; other grouped
    layers keep their groups and round to whole groups (``narrowed_channels``). [Our assumption, after slimmable
    networks (Yu et al., ICLR 2019) and channel gating (Hua et al., NeurIPS 2019).]"""
    if width == 1.0:
        return tuple(main)
    last = len(main) - 1
    layers = []
    in_ch = main[0].in_ch
    for index, layer in enumerate(main):
        depthwise = layer.groups == layer.in_ch == layer.out_ch and layer.groups > 1
        groups = in_ch if depthwise else layer.groups
        out_ch = layer.out_ch
        if depthwise:
            out_ch = in_ch
        elif index < last or last == 0:
            following = main[index + 1] if index < last else None
            # whole groups of this layer and of the next (a depthwise next layer takes any count)
            next_groups = 1 if following is None or following.groups == following.in_ch else following.groups
            out_ch = narrowed_channels(layer.out_ch, width, math.lcm(groups, next_groups))
        layers.append(dataclasses.replace(layer, in_ch=in_ch, out_ch=out_ch, groups=groups))
        in_ch = out_ch
    return tuple(layers)


# A convolution of a gated unit whose name, after the unit, contains one of these is the unit's shortcut.
PROJECTION_NAMES = re.compile(r"downsample|shortcut|projection")


def gated_unit_finder(
    gated: str | re.Pattern | Callable[[str], bool] | None,
    separator: str = "/",
) -> Callable[[str], tuple[str, str] | None]:
    """A function of a layer's name giving ``(unit, rest of the name after the unit)``, or None outside every unit.

    ``gated`` is a regular expression searched in the name, whose matched text is the unit, or a callable asked about
    each ``separator``-separated prefix of the name, shortest first, the first it accepts being the unit (ONNX node
    names; torch's qualified module names with ``separator="."``, where the outermost marked module is the unit).
    Importers number the units with ``UnitNumbering``."""
    if gated is None:
        return lambda _name: None
    if isinstance(gated, str | re.Pattern):
        pattern = re.compile(gated)

        def by_pattern(name: str) -> tuple[str, str] | None:
            match = pattern.search(name)
            if match is None or not match.group(0):
                return None
            return match.group(0), name[match.end() :]

        return by_pattern

    def by_callable(name: str) -> tuple[str, str] | None:
        parts = name.split(separator)
        for end in range(1, len(parts) + 1):
            prefix = separator.join(parts[:end])
            if prefix and prefix != separator and gated(prefix):
                return prefix, name[len(prefix) :]
        return None

    return by_callable


class UnitNumbering:
    """Where an imported row goes: every importer (ONNX, SCALE-Sim, torch, the ResNet tracer) places its rows with
    one of these, so that the same network gets the same table whichever way it came in.

    Units get gated blocks 0, 1, 2, ... in the order their first rows arrive; every row of a unit belongs to its
    block and runs at the block's option, except a convolution whose rest of the name (after the unit) matches
    ``PROJECTION_NAMES``: the unit's shortcut, which runs at ``fixed_option`` even when the unit is skipped. A row
    outside every unit always runs at ``fixed_option``."""

    def __init__(self, fixed_option: int) -> None:
        self.fixed_option = fixed_option
        self.blocks: dict[str, int] = {}

    def place(self, unit: tuple[str, str] | None, convolution: bool = True) -> dict[str, Any]:
        """``block``, ``fixed_option`` and ``role`` of a row in ``unit`` (``(unit, rest of the row's name)``, as
        ``gated_unit_finder`` gives it; None: outside every unit)."""
        if unit is None:
            return {"block": None, "fixed_option": self.fixed_option, "role": "main"}
        block = self.blocks.setdefault(unit[0], len(self.blocks))
        if convolution and PROJECTION_NAMES.search(unit[1]):
            return {"block": block, "fixed_option": self.fixed_option, "role": "projection"}
        return {"block": block, "fixed_option": None, "role": "main"}
