"""Bring your own network without torch: the layer table of an ONNX file.

``layer_table_from_onnx`` reads the graph's static shapes (ONNX shape inference) and lists every 2-D ``Conv``,
``Gemm`` and weight ``MatMul`` as a ``ConvLayer`` row, in graph order, with the conventions of
``dfs_sim.model.from_torch`` (which traces a torch module instead). The ``onnx`` package is imported only when the
function is called: it is an optional dependency (``pip install 'dfs-sim[onnx]'``), and torch is not needed at all.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from dfs_sim.errors import LayerTableError
from dfs_sim.layer_table import ConvLayer, LayerTable, UnitNumbering, gated_unit_finder
from dfs_sim.options import DFS_OPTIONS, Option, full_precision_code

__all__ = ["COST_FREE_OPS", "layer_table_from_onnx"]

# Operators that add no row and no warning: activations, element-wise arithmetic, normalisation, pooling and
# reductions (a layer table counts no BN, activation, pooling or addition: docs/hardware.md), and shape or data
# movement. Any other operator of the default domain, and every operator of another domain, is warned about.
COST_FREE_OPS = frozenset(
    {
        # activations and element-wise arithmetic
        *("Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu", "Clip", "Sigmoid", "HardSigmoid"),
        *("HardSwish", "Tanh", "Softmax", "LogSoftmax", "Softplus", "Softsign", "Mish", "Erf", "Exp", "Log"),
        *("Sqrt", "Reciprocal", "Neg", "Abs", "Pow", "Add", "Sub", "Mul", "Div", "Min", "Max", "Sum", "Mean"),
        *("Floor", "Ceil", "Round", "Sign"),
        # comparisons and logic
        *("Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Not", "And", "Or", "Xor", "Where"),
        # normalisation, pooling, reductions
        *("BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization"),
        *("GlobalAveragePool", "GlobalMaxPool", "AveragePool", "MaxPool", "ReduceMean", "ReduceSum", "ReduceMax"),
        *("ReduceMin", "ArgMax", "ArgMin"),
        # shapes and data movement
        *("Flatten", "Reshape", "Concat", "Split", "Slice", "Identity", "Constant", "ConstantOfShape", "Shape"),
        *("Size", "Gather", "GatherElements", "GatherND", "ScatterND", "ScatterElements", "Unsqueeze", "Squeeze"),
        *("Transpose", "Expand", "Tile", "Pad", "Cast", "CastLike", "Range", "Dropout", "Resize", "Upsample"),
        *("DepthToSpace", "SpaceToDepth"),
    }
)
_DEFAULT_DOMAINS = ("", "ai.onnx")


def layer_table_from_onnx(
    path: str | os.PathLike[str],
    gated: str | re.Pattern | Callable[[str], bool] | None = None,
    options: Sequence[Option] = DFS_OPTIONS,
) -> LayerTable:
    """The layer table of the ONNX model in ``path``, from its static shapes (``onnx.shape_inference``).

    Rows, in graph (topological) order, are named by the node name (``/layer1/layer1.0/conv1/Conv`` from torch's
    exporter), else ``<op_type>_<node index>``; a repeated name gets ``#2``, ``#3``, ... Supported nodes:

    * ``Conv`` on a 4-D input (2-D convolution): ``group``, ``strides``, ``pads``, ``dilations`` and ``kernel_shape``
      (else the weight's shape), ``auto_pad`` ``NOTSET`` (or ``VALID``, which is no padding). ``batch`` is the input's
      batch dimension.
    * ``Gemm`` (``transA``/``transB`` honoured; ``alpha``, ``beta`` and the bias ``C`` cost nothing) and ``MatMul``
      where one operand is a weight: a constant (an initializer, a ``Constant``, or anything computed from constants
      only, such as an ``Identity`` or ``Transpose`` of an initializer) of rank 2 (or of rank 1, or with leading
      dimensions of size 1). The row is a linear layer: a 1×1 convolution on a 1×1 input (``kind="linear"``) whose
      ``batch`` counts the vectors it transforms, the product of the other operand's dimensions but the reduced one
      (tokens × images for a ``(N, T, C) @ (C, D)`` product).

    Cost-free operators (``COST_FREE_OPS``: activations, element-wise arithmetic, BN, pooling, reshapes, ...) add
    nothing, nor does a node whose inputs are all constants (a runtime folds it once). Every other node carries
    compute that ``ConvLayer`` cannot list: ``ConvTranspose``, ``LSTM``/``GRU``/``RNN``, ``Einsum``, a ``Conv`` on a 3-D
    or 5-D input (1-D or 3-D convolution), a ``MatMul``/``Gemm`` between two activations (attention scores, say), a
    ``MatMul`` with batched weights, quantized operators, control flow (``If``/``Loop``/``Scan``, whose bodies are not
    read), operators of other domains. They are never dropped silently: one ``UserWarning`` lists their operator types
    with counts.

    ``gated`` marks the gateable units, as in ``layer_table_from_module``: a regular expression searched in each node
    name, whose matched text is the unit (``r"layer\\d\\.\\d+"`` finds the unit ``layer1.0`` in
    ``/layer1/layer1.0/conv1/Conv``; anchors such as ``$`` do not suit node names), or a callable asked about each
    ``/``-separated prefix of a node name, shortest first (``/layer1``, ``/layer1/layer1.0``, ...), the first it
    accepts being the unit. Every row of a unit belongs to gated block ``b``, the unit's index in order of first
    appearance, and runs at the block's option; a ``Conv`` whose name after the unit contains ``downsample``,
    ``shortcut`` or ``projection`` is the unit's projection (``role="projection"``, full precision). Every other row
    always runs at the full-precision option of ``options``.

    Shapes must be static. The leading (batch) dimension of a graph input, when symbolic or unknown, is taken as 1
    (one image or one sequence) before shape inference; any other symbolic or unknown dimension that reaches a
    supported node's operands is a ``LayerTableError`` naming the node and the dimension: export with fixed shapes.

    Raises ``LayerTableError`` (one line, naming the file) when ``onnx`` is not installed, the file is missing or is
    not ONNX, shape inference fails, or a node is one ``ConvLayer`` cannot describe (asymmetric or non-square pads,
    non-square kernel or stride, dilation other than 1, ``auto_pad`` ``SAME_UPPER``/``SAME_LOWER``).
    """
    source = os.fspath(path)
    try:
        import onnx
        import onnx.shape_inference
    except ImportError:
        raise LayerTableError(source, "reading ONNX needs the onnx package: pip install 'dfs-sim[onnx]'") from None
    try:
        fp = full_precision_code(options)
    except ValueError as error:
        raise LayerTableError(source, str(error)) from None

    model = _load(onnx, source)
    rows, left_out = _rows(model.graph, _static_shapes(onnx, model, source), source, gated, fp)
    if left_out:
        listing = ", ".join(f"{op} x{count}" for op, count in sorted(left_out.items()))
        warnings.warn(
            f"{source}: {sum(left_out.values())} nodes carry compute that the layer table leaves out "
            f"(unsupported): {listing}",
            stacklevel=2,
        )
    return LayerTable(rows, source=source)


def _rows(graph: Any, shapes: dict, source: str, gated, fp: int) -> tuple[list[ConvLayer], Counter[str]]:
    """The graph's rows in node order, placed in their units, and the compute nodes no row describes (by type)."""
    constant = _constant_tensors(graph, {tensor.name: tensor for tensor in graph.initializer})
    unit_of = gated_unit_finder(gated)
    numbering = UnitNumbering(fp)
    rows: list[ConvLayer] = []
    left_out: Counter[str] = Counter()
    names: Counter[str] = Counter()
    for index, node in enumerate(graph.node):
        op = node.op_type
        if node.domain not in _DEFAULT_DOMAINS:
            left_out[f"{node.domain}.{op}"] += 1
            continue
        if op in COST_FREE_OPS or all(name in constant for name in node.input):
            continue
        if op not in ("Conv", "Gemm", "MatMul"):
            left_out[op] += 1
            continue
        name = node.name or f"{op}_{index}"
        names[name] += 1
        node_ref = _NodeRef(source, name, op, shapes)
        shape = _conv_shape(node, node_ref) if op == "Conv" else _linear_shape(node, node_ref, constant)
        if isinstance(shape, str):  # a compute node that no row describes
            left_out[shape] += 1
            continue
        placed = numbering.place(unit_of(node.name), convolution=op == "Conv")
        row_name = name if names[name] == 1 else f"{name}#{names[name]}"
        try:
            rows.append(ConvLayer(**{**shape, **placed}, name=row_name, kind="conv" if op == "Conv" else "linear"))
        except LayerTableError as error:
            raise LayerTableError(source, f"node {node_ref.name!r} ({op}): {error.problem}") from None
    return rows, left_out


# ------------------------------------------------------------------------------------------------------ loading
def _load(onnx: Any, source: str) -> Any:
    """The model in ``source`` (weights kept on disk when external: only their shapes are read)."""
    try:
        model = onnx.load(source, load_external_data=False)
    except OSError as error:
        raise LayerTableError(source, f"cannot read the file: {type(error).__name__}: {error.strerror}") from None
    except Exception as error:  # protobuf's DecodeError and friends: not an ONNX file
        raise LayerTableError(source, f"not an ONNX model ({type(error).__name__}: {_first_line(error)})") from None
    if not model.ir_version or not model.HasField("graph"):
        raise LayerTableError(source, "not an ONNX model (no IR version or no graph)")
    if model.functions:  # model-local functions (some exporters' modules): expand them into plain nodes
        try:
            from onnx import inliner

            model = inliner.inline_local_functions(model)
        except Exception as error:
            raise LayerTableError(source, f"cannot inline local functions: {_first_line(error)}") from None
    return model


def _static_shapes(onnx: Any, model: Any, source: str) -> dict[str, list[int | str | None]]:
    """Every tensor's shape after inference: an int per static dimension, the symbol (or None) of a dynamic one.

    A graph input's leading (batch) dimension, when dynamic, is set to 1 first."""
    graph = model.graph
    initializer_names = {tensor.name for tensor in graph.initializer}
    for value in graph.input:
        if value.name in initializer_names or not value.type.HasField("tensor_type"):
            continue
        tensor_type = value.type.tensor_type
        if tensor_type.HasField("shape") and tensor_type.shape.dim:
            first = tensor_type.shape.dim[0]
            if not first.HasField("dim_value"):
                first.dim_value = 1  # clears the dim_param (a oneof)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as error:
        raise LayerTableError(source, f"shape inference failed: {type(error).__name__}: {_first_line(error)}") from None
    shapes: dict[str, list[int | str | None]] = {}
    values = [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
    for value in values:
        tensor_type = value.type.tensor_type if value.type.HasField("tensor_type") else None
        if tensor_type is None or not tensor_type.HasField("shape"):
            continue
        dims: list[int | str | None] = []
        for dim in tensor_type.shape.dim:
            if dim.HasField("dim_value"):
                dims.append(int(dim.dim_value))
            else:
                dims.append(dim.dim_param if dim.HasField("dim_param") else None)
        shapes.setdefault(value.name, dims)
    for tensor in graph.initializer:
        shapes[tensor.name] = [int(d) for d in tensor.dims]
    return shapes


def _constant_tensors(graph: Any, initializers: dict[str, Any]) -> set[str]:
    """Names of the tensors known before any input arrives: initializers, ``Constant`` outputs and whatever is computed
    from constants only (an ``Identity`` of a weight, say). The empty name (an omitted optional input) counts too."""
    constant = {"", *initializers}
    for node in graph.node:  # nodes are topologically sorted
        if node.domain not in _DEFAULT_DOMAINS or node.op_type in ("If", "Loop", "Scan"):
            continue
        computed = node.op_type == "Constant" or (node.input and all(name in constant for name in node.input))
        if computed and not node.op_type.startswith("Random"):
            constant.update(node.output)
    return constant


# -------------------------------------------------------------------------------------------------------- nodes
class _NodeRef:
    """A node being read: its one-line errors name the file and the node, and its operand shapes must be static."""

    def __init__(self, source: str, name: str, op: str, shapes: dict[str, list[int | str | None]]) -> None:
        self.source, self.name, self.op, self.shapes = source, name, op, shapes

    def error(self, problem: str) -> LayerTableError:
        return LayerTableError(self.source, f"node {self.name!r} ({self.op}): {problem}")

    def shape(self, tensor: str, what: str) -> list[int]:
        dims = self.shapes.get(tensor)
        if dims is None:
            raise self.error(f"{what} {tensor!r} has no known shape (not even its rank); export with static shapes")
        for axis, dim in enumerate(dims):
            if not isinstance(dim, int) or dim < 1:
                symbol = f"{dim!r}" if isinstance(dim, str) else "unknown"
                raise self.error(
                    f"dimension {axis} of {what} {tensor!r} is dynamic ({symbol}) in shape "
                    f"{[d if d is not None else '?' for d in dims]}; export with static shapes"
                )
        return [dim for dim in dims if isinstance(dim, int)]  # every one, as just checked


def _attributes(node: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attribute in node.attribute:
        if attribute.type == attribute.INT:
            values[attribute.name] = attribute.i
        elif attribute.type == attribute.INTS:
            values[attribute.name] = list(attribute.ints)
        elif attribute.type == attribute.STRING:
            values[attribute.name] = attribute.s.decode()
        elif attribute.type == attribute.FLOAT:
            values[attribute.name] = attribute.f
    return values


def _conv_shape(node: Any, ref: _NodeRef) -> dict[str, int] | str:
    """The ``ConvLayer`` fields of a 2-D ``Conv``, or the description of a convolution no row describes."""
    attributes = _attributes(node)
    weight = ref.shapes.get(node.input[1])
    spatial = len(attributes["kernel_shape"]) if "kernel_shape" in attributes else None
    if spatial is None and weight is not None:
        spatial = len(weight) - 2
    if spatial is None and ref.shapes.get(node.input[0]) is not None:
        spatial = len(ref.shapes[node.input[0]]) - 2
    if spatial is None:
        raise ref.error(f"neither the input {node.input[0]!r} nor the weight {node.input[1]!r} has a known shape")
    if spatial != 2:
        return f"Conv ({spatial}-D)"
    x = ref.shape(node.input[0], "input")
    w = ref.shape(node.input[1], "weight")
    kernel = attributes.get("kernel_shape", w[2:])
    strides = attributes.get("strides", [1, 1])
    dilations = attributes.get("dilations", [1, 1])
    auto_pad = attributes.get("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID"):
        raise ref.error(f"auto_pad={auto_pad} is not supported; export with explicit pads")
    pads = attributes.get("pads", [0, 0, 0, 0]) if auto_pad == "NOTSET" else [0, 0, 0, 0]
    if pads[:2] != pads[2:]:
        raise ref.error(f"pads {pads} (begin h, w, end h, w) are asymmetric, which ConvLayer cannot describe")
    for what, (a, b) in {"kernel": kernel, "stride": strides, "padding": pads[:2]}.items():
        if a != b:
            raise ref.error(f"{what} {a}x{b} is not square, which ConvLayer cannot describe")
    if dilations != [1, 1]:
        raise ref.error(f"dilation {dilations} is not supported by ConvLayer")
    groups = attributes.get("group", 1)
    if len(x) != 4 or len(w) != 4 or w[1] * groups != x[1]:
        raise ref.error(f"input {x} does not fit the weight {w} with group={groups}")
    shape = {
        "in_ch": x[1],
        "out_ch": w[0],
        "in_h": x[2],
        "in_w": x[3],
        "kernel": kernel[0],
        "stride": strides[0],
        "padding": pads[0],
        "groups": groups,
        "batch": x[0],
    }
    out = ref.shapes.get(node.output[0])
    if out is not None and len(out) == 4 and all(isinstance(d, int) for d in out[2:]):
        expected = [(x[axis] + 2 * pads[0] - kernel[0]) // strides[0] + 1 for axis in (2, 3)]
        if out[2:] != expected:
            raise ref.error(f"output {out} differs from the {expected[0]}x{expected[1]} of its attributes")
    return shape


def _linear_shape(node: Any, ref: _NodeRef, constant: set[str]) -> dict[str, int] | str:
    """The ``ConvLayer`` fields of a ``Gemm`` or ``MatMul`` with a weight operand, or the description of a product
    that no row describes."""
    a_name, b_name = node.input[0], node.input[1]
    attributes = _attributes(node) if node.op_type == "Gemm" else {}
    if b_name in constant:  # x @ W: W is (K, N)
        weight_name, weight_is_b, data_name = b_name, True, a_name
    elif a_name in constant:  # W @ x: W is (M, K), each column of x is a vector
        weight_name, weight_is_b, data_name = a_name, False, b_name
    else:
        return f"{node.op_type} (two activations)"
    weight = ref.shape(weight_name, "weight")
    while len(weight) > 2 and weight[0] == 1:  # a broadcast weight (1, K, N) is one (K, N) weight
        weight = weight[1:]
    if len(weight) > 2:
        return f"{node.op_type} (batched weights)"
    data = ref.shape(data_name, "input")
    transposed = attributes.get("transB" if weight_is_b else "transA", 0)
    if len(weight) == 1:  # a vector: K inputs, one output
        features_in, features_out = weight[0], 1
    elif weight_is_b:
        features_in, features_out = (weight[1], weight[0]) if transposed else (weight[0], weight[1])
    else:
        features_in, features_out = (weight[0], weight[1]) if transposed else (weight[1], weight[0])
    vectors, remainder = divmod(math.prod(data), features_in)
    if remainder or not data:
        raise ref.error(f"input {data_name!r} of shape {data} does not hold vectors of {features_in} features")
    return {"in_ch": features_in, "out_ch": features_out, "in_h": 1, "in_w": 1, "kernel": 1, "batch": vectors}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""
