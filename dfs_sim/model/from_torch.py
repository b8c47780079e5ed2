"""Bring your own network: the layer table of any ``torch.nn.Module``, observed by forward hooks.

``layer_table_from_module`` runs one forward pass of an all-zeros input and records every ``nn.Conv2d`` and
``nn.Linear`` call (subclasses included) as a ``ConvLayer`` row, in call order. Hooks see whatever the model's
``forward`` actually calls, however it is written (control flow, several outputs, a module called twice), which a
symbolic trace (torch.fx) does not always manage. What hooks cannot see: convolutions and matrix products done with
functional calls (``F.conv2d``, ``F.linear``, ``@``, ``nn.MultiheadAttention``'s projections); those cost nothing here.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence

import torch
from torch import nn

from dfs_sim.errors import ConfigError, LayerTableError
from dfs_sim.layer_table import ConvLayer, LayerTable, UnitNumbering, gated_unit_finder
from dfs_sim.options import DFS_OPTIONS, Option, full_precision_code

__all__ = ["layer_table_from_factory", "layer_table_from_module"]


def layer_table_from_module(
    module: nn.Module,
    input_shape: Sequence[int],
    gated: str | re.Pattern | Callable[[str], bool] | None = None,
    options: Sequence[Option] = DFS_OPTIONS,
) -> LayerTable:
    """The layer table of ``module`` on one input of ``input_shape`` (without the batch dimension, e.g. ``(3, 224,
    224)``).

    Rows are named by the module's qualified name (``layer1.0.conv1``); the second and later calls of one module get
    ``#2``, ``#3``, ... A linear layer is a 1×1 convolution on a 1×1 input (``kind="linear"``); applied to a tensor
    with extra leading dimensions (tokens, say), ``batch`` counts the vectors it transforms, so the MACs are right.

    ``gated`` marks the gateable units (residual blocks, say): a regular expression searched in each module's
    qualified name (``r"layer\\d\\.\\d+$"``), or a callable on that name. Every conv and linear inside a marked unit
    belongs to gated block ``b``, the unit's index in call order (the order of the units' first compute layers), and
    runs at the block's option (``fixed_option=None``); a conv named ``downsample``, ``shortcut`` or ``projection``
    inside a unit is its projection and always runs at full precision (``role="projection"``). When marked units nest,
    the outermost is the unit. Every other layer always runs at the full-precision option of ``options``.

    Raises ``LayerTableError`` (one line) when the forward pass fails on that shape, or for a convolution that
    ``ConvLayer`` cannot describe (dilation, non-square kernel, stride or padding, string padding).
    """
    source = f"layer_table_from_module({type(module).__name__}, input_shape={tuple(input_shape)})"
    try:
        fp = full_precision_code(options)
    except ValueError as error:
        raise LayerTableError(source, str(error)) from None
    unit_of = gated_unit_finder(_prefix_test(gated), separator=".")  # the outermost marked module is the unit
    numbering = UnitNumbering(fp)
    names = {id(m): name for name, m in module.named_modules()}  # a module registered twice keeps its first name

    calls: list[tuple[str, nn.Module, torch.Size, torch.Size]] = []  # (row name, module, input shape, output shape)
    counts: dict[int, int] = {}

    def record(layer: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor) -> None:
        x = args[0] if args else next(iter(kwargs.values()))
        counts[id(layer)] = counts.get(id(layer), 0) + 1
        name = names[id(layer)] or type(layer).__name__
        calls.append((name if counts[id(layer)] == 1 else f"{name}#{counts[id(layer)]}", layer, x.shape, output.shape))

    layers = [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    handles = [m.register_forward_hook(record, with_kwargs=True) for m in layers]
    modes = {m: m.training for m in module.modules()}  # restored one by one: a model may mix train and eval parts
    parameter = next(module.parameters(), None)
    try:
        module.eval()
        with torch.no_grad():
            kwargs = {} if parameter is None else {"device": parameter.device, "dtype": parameter.dtype}
            module(torch.zeros(1, *input_shape, **kwargs))
    except Exception as error:  # any failure of the user's forward becomes one line naming the model and the shape
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise LayerTableError(source, f"the forward pass failed: {type(error).__name__}: {first_line}") from None
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():
            m.train(training)

    rows = []
    for name, layer, in_shape, out_shape in calls:
        placed = numbering.place(unit_of(names[id(layer)]), convolution=isinstance(layer, nn.Conv2d))
        common = {"name": name, **placed}
        if isinstance(layer, nn.Conv2d):
            rows.append(_conv_row(layer, in_shape, out_shape, common))
        else:
            vectors = in_shape.numel() // layer.in_features  # every leading dimension (images, tokens) is a batch
            rows.append(
                ConvLayer(layer.in_features, layer.out_features, 1, 1, 1, batch=vectors, kind="linear", **common)
            )
    return LayerTable(rows, source=source)


def layer_table_from_factory(
    spec: str,
    input_shape: Sequence[int],
    gated: str | re.Pattern | Callable[[str], bool] | None = None,
    options: Sequence[Option] = DFS_OPTIONS,
) -> LayerTable:
    """``layer_table_from_module`` of the module that ``package.module:factory`` returns when called without
    arguments (``torchvision.models:resnet18``, say): what ``python -m cost_models.table --module`` traces. A spec that
    cannot be imported or called, or that returns no ``nn.Module``, is a one-line ``ConfigError`` naming it."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError("--module", f"expected package.module:factory, got {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError("--module", f"cannot load {spec}: {type(error).__name__}: {error}") from None
    try:
        module = factory()
    except Exception as error:  # the user's factory: any failure becomes one line
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ConfigError("--module", f"{spec}() failed: {type(error).__name__}: {first_line}") from None
    if not isinstance(module, nn.Module):
        raise ConfigError("--module", f"{spec}() returned a {type(module).__name__}, not a torch.nn.Module")
    return layer_table_from_module(module, input_shape, gated=gated, options=options)


def _prefix_test(gated: str | re.Pattern | Callable[[str], bool] | None) -> Callable[[str], bool] | None:
    """``gated`` as a test of module names (a regular expression is searched in them), for ``gated_unit_finder``."""
    if isinstance(gated, str | re.Pattern):
        pattern = re.compile(gated)
        return lambda name: pattern.search(name) is not None
    return gated


def _conv_row(conv: nn.Conv2d, in_shape: torch.Size, out_shape: torch.Size, common: dict) -> ConvLayer:
    """A ``ConvLayer`` for one call of ``conv`` on an input of ``in_shape`` ((N,) C, H, W)."""
    name = common["name"]
    if isinstance(conv.padding, str):
        raise LayerTableError(name, f"padding={conv.padding!r} is not supported; give the padding as an integer")
    square = {"kernel": conv.kernel_size, "stride": conv.stride, "padding": conv.padding}
    for what, (a, b) in square.items():
        if a != b:
            raise LayerTableError(name, f"{what} {a}x{b} is not square, which ConvLayer cannot describe")
    if conv.dilation != (1, 1):
        raise LayerTableError(name, f"dilation {conv.dilation} is not supported by ConvLayer")
    in_ch, in_h, in_w = in_shape[-3:]
    batch = in_shape.numel() // (in_ch * in_h * in_w)  # 1 for this trace's single (or unbatched) input
    kernel, stride, padding = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    row = ConvLayer(in_ch, conv.out_channels, in_h, in_w, kernel, stride, padding, conv.groups, batch=batch, **common)
    # A Conv2d subclass may compute something else than its attributes say; the row must match what torch computed.
    if (row.out_h, row.out_w) != tuple(out_shape[-2:]):
        raise LayerTableError(name, f"output {tuple(out_shape)} differs from the {row.out_h}x{row.out_w} of its shape")
    return row
