"""``layer_table_from_onnx``: an ONNX file read into a ``LayerTable`` without torch.

The networks of ``test_from_torch.py`` are exported by torch's legacy (TorchScript) exporter and must read back as the
table that ``layer_table_from_module`` traces from the same module: the same rows in the same order, hence the same
MACs, and the published counts within 1% (see ``test_from_torch.py`` for their sources). Tiny graphs built with
``onnx.helper`` cover the linear layers, the unsupported operators and the errors; they need no torch.
"""

import re
import sys
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from dfs_sim.errors import LayerTableError  # noqa: E402
from dfs_sim.importers import layer_table_from_onnx  # noqa: E402
from dfs_sim.layer_table import cifar_resnet_layers  # noqa: E402
from dfs_sim.options import DFS_OPTIONS  # noqa: E402

FP = DFS_OPTIONS[-1].code
SHAPE = ("in_ch", "out_ch", "in_h", "in_w", "kernel", "stride", "padding", "groups", "batch", "kind")
GATING = ("block", "fixed_option", "role")


def _rows(table, fields=SHAPE):
    return [tuple(getattr(layer, field) for field in fields) for layer in table]


def _export(model, input_shape, path, **kwargs):
    """torch's legacy exporter (no onnxscript needed); its deprecation notice is not this test's business."""
    import torch

    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.zeros(*input_shape),), str(path), dynamo=False, **kwargs)
    return path


def _read(path, **kwargs):
    """``layer_table_from_onnx`` where any warning is a failure: exported networks hold no unsupported operator."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return layer_table_from_onnx(path, **kwargs)


# ----------------------------------------------------------------------------------------- ImageNet networks
NETWORKS = {  # name → published MACs at 1×3×224×224
    "resnet18": 1.814e9,
    "resnet50": 4.089e9,
    "mobilenet_v2": 0.300e9,
}
# the units: (a module name regex for the torch trace, a node name regex for ONNX's /layer1/layer1.0/conv1/Conv)
UNITS = {"resnet18": (r"^layer\d\.\d+$", r"layer\d\.\d+"), "mobilenet_v2": (r"^features\.\d+$", r"features\.\d+")}
UNITS["resnet50"] = UNITS["resnet18"]


@pytest.fixture(scope="module", params=list(NETWORKS))
def imagenet(request, tmp_path_factory):
    """(name, ONNX path, table traced from the torch module): each network built once (real weights) for both."""
    pytest.importorskip("torch")
    from dfs_sim.model.from_torch import layer_table_from_module
    from tests.test_from_torch import BasicBlock, Bottleneck, MobileNetV2, ResNet

    builders = {
        "resnet18": lambda: ResNet(BasicBlock, (2, 2, 2, 2)),
        "resnet50": lambda: ResNet(Bottleneck, (3, 4, 6, 3)),
        "mobilenet_v2": MobileNetV2,
    }
    model = builders[request.param]()
    path = _export(model, (1, 3, 224, 224), tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx")
    return request.param, path, layer_table_from_module(model, (3, 224, 224), gated=UNITS[request.param][0])


def test_imagenet_networks_read_as_traced(imagenet):
    name, path, traced = imagenet
    table = _read(path)
    assert _rows(table) == _rows(traced)  # same rows, same order
    assert table.total_macs == traced.total_macs
    published = NETWORKS[name]
    assert abs(table.total_macs - published) / published < 0.01, f"{table.total_macs:,} MACs vs {published:,.0f}"
    assert table.source == str(path) and table.num_blocks == 0 and {layer.fixed_option for layer in table} == {FP}
    assert table[-1].kind == "linear" and table[-1].out_ch == 1000 and table[-1].batch == 1
    if name == "mobilenet_v2":
        assert sum(layer.groups > 1 for layer in table) == 17  # the depthwise convs


def test_units_by_regex_and_callable(imagenet):
    name, path, traced = imagenet
    table = _read(path, gated=UNITS[name][1])  # /layer2/layer2.0/downsample/downsample.0/Conv → unit layer2.0
    assert _rows(table, SHAPE + GATING) == _rows(traced, SHAPE + GATING)
    assert table.num_blocks == traced.num_blocks == {"resnet18": 8, "resnet50": 16, "mobilenet_v2": 19}[name]
    projections = [layer.name for layer in table if layer.role == "projection"]
    first_stage = {"resnet18": 2, "resnet50": 1, "mobilenet_v2": 5}[name]
    assert projections == [f"/layer{s}/layer{s}.0/downsample/downsample.0/Conv" for s in range(first_stage, 5)]
    # a callable is asked about the '/'-prefixes of each node name; the first it accepts is the unit
    unit = re.compile(r"/layer\d/layer\d\.\d+|/features/features\.\d+")
    by_callable = _read(path, gated=lambda prefix: unit.fullmatch(prefix) is not None)
    assert _rows(by_callable, SHAPE + GATING) == _rows(table, SHAPE + GATING)


# ------------------------------------------------------------------------------------- the project's CIFAR ResNet
@pytest.fixture(scope="module")
def static_resnet38(tmp_path_factory):
    pytest.importorskip("torch")
    from dfs_sim.model.registry import create_model

    folder = tmp_path_factory.mktemp("cifar")
    model = create_model("static_resnet38", num_classes=10)
    fixed = _export(model, (1, 3, 32, 32), folder / "static.onnx")
    dynamic = folder / "dynamic_batch.onnx"
    _export(model, (1, 3, 32, 32), dynamic, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    return model, fixed, dynamic


def test_static_cifar_resnet38_reads_like_cifar_resnet_layers(static_resnet38):
    from dfs_sim.model.from_torch import layer_table_from_module
    from tests.test_from_torch import _canonical

    model, path, dynamic = static_resnet38
    expected = cifar_resnet_layers(38, gates=False)
    # the exporter names nodes /blocks.5/conv1/Conv, /blocks.5/projection/projection.0/Conv, /first_block/conv1/Conv
    table = _read(path, gated=r"blocks\.\d+")
    assert table.num_blocks == expected.num_blocks == 17
    assert _canonical(table) == _canonical(expected)  # blocks, roles and shapes, projections moved after conv2
    assert table.total_macs == expected.total_macs
    traced = layer_table_from_module(model, (3, 32, 32), gated=r"^blocks\.\d+$")
    assert _rows(table, SHAPE + GATING) == _rows(traced, SHAPE + GATING)  # and the trace's order
    assert [layer.name for layer in table if layer.role == "projection"] == [
        "/blocks.5/projection/projection.0/Conv",
        "/blocks.11/projection/projection.0/Conv",
    ]
    plain = _read(path)
    assert _rows(plain) == _rows(table) and plain.num_blocks == 0 and {layer.fixed_option for layer in plain} == {FP}
    # a symbolic batch dimension is taken as 1
    assert _read(dynamic, gated=r"blocks\.\d+") == table


# ------------------------------------------------------------------------------------------ hand-built graphs
def _tensor(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _weight(name, *shape):
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def _save(path, nodes, inputs, outputs, initializers=(), opsets=()):
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), *opsets])
    onnx.save(model, str(path))
    return path


def test_gemm_with_transposed_weight(tmp_path):
    path = _save(
        tmp_path / "gemm.onnx",
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)],
        [_tensor("x", [2, 8])],
        [_tensor("y", [2, 4])],
        [_weight("w", 4, 8), _weight("b", 4)],
    )
    (row,) = _read(path)
    assert (row.name, row.kind, row.in_ch, row.out_ch, row.in_h, row.in_w, row.kernel, row.batch) == (
        "fc", "linear", 8, 4, 1, 1, 1, 2
    )  # fmt: skip
    assert row.macs == 2 * 8 * 4 and row.fixed_option == FP


def test_matmul_weights_count_tokens_as_batch(tmp_path):
    nodes = [
        helper.make_node("Identity", ["w"], ["w_alias"]),  # exporters share equal weights through Identity nodes
        helper.make_node("MatMul", ["x", "w_alias"], ["h"], name="proj"),  # (1, 5 tokens, 8) @ (8, 16)
        helper.make_node("MatMul", ["v", "h"], ["y"]),  # (3, 5) @ (1, 5, 16): a weight on the left, unnamed
        helper.make_node("MatMul", ["w", "u"], ["folded"], name="constant"),  # constants only: folded, no row
        helper.make_node("Add", ["y", "folded"], ["out"]),
    ]
    path = _save(
        tmp_path / "matmul.onnx",
        nodes,
        [_tensor("x", [1, 5, 8])],
        [_tensor("out", None)],
        [_weight("w", 8, 16), _weight("v", 3, 5), _weight("u", 16, 16)],
    )
    proj, left = _read(path)
    assert (proj.name, proj.kind, proj.in_ch, proj.out_ch, proj.batch, proj.macs) == ("proj", "linear", 8, 16, 5, 640)
    assert (left.name, left.in_ch, left.out_ch, left.batch) == ("MatMul_2", 5, 3, 16)  # 16 columns of 5 features


def test_unsupported_operators_are_listed_in_one_warning(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["c", "wt"], ["up"], name="up"),
        helper.make_node("ConvTranspose", ["up", "wt2"], ["up2"], name="up2"),
        helper.make_node("Conv", ["s", "w1"], ["s1"], name="conv1d"),
        helper.make_node("LSTM", ["s", "lw", "lr"], ["seq"], name="lstm", hidden_size=4),
        helper.make_node("MatMul", ["q", "k"], ["scores"], name="attention"),
        helper.make_node("Mystery", ["c"], ["m"], name="custom", domain="com.example"),
    ]
    weights = [_weight("w", 4, 3, 3, 3), _weight("wt", 4, 4, 2, 2), _weight("wt2", 4, 4, 2, 2), _weight("w1", 6, 1, 3)]
    weights += [_weight("lw", 1, 16, 6), _weight("lr", 1, 16, 4)]  # the LSTM's input and recurrent weights
    path = _save(
        tmp_path / "mixed.onnx",
        nodes,
        [_tensor("x", [1, 3, 8, 8]), _tensor("s", [2, 1, 6]), _tensor("q", [1, 5, 8]), _tensor("k", [1, 8, 5])],
        [_tensor(name, None) for name in ("up2", "s1", "seq", "scores", "m")],
        weights,
        opsets=[helper.make_opsetid("com.example", 1)],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = layer_table_from_onnx(path)
    assert [layer.name for layer in table] == ["conv"]
    assert len(caught) == 1 and caught[0].category is UserWarning
    message = str(caught[0].message)
    assert message.startswith(f"{path}: 6 nodes") and "\n" not in message
    for listed in ("ConvTranspose x2", "Conv (1-D) x1", "LSTM x1", "MatMul (two activations) x1", "com.example."):
        assert listed in message


def test_dynamic_dimension_is_one_line_naming_node_and_dimension(tmp_path):
    def conv_model(name, shape):
        node = helper.make_node("Conv", ["x", "w"], ["y"], name="stem", pads=[1, 1, 1, 1])
        return _save(tmp_path / name, [node], [_tensor("x", shape)], [_tensor("y", None)], [_weight("w", 4, 3, 3, 3)])

    (row,) = _read(conv_model("batch.onnx", ["N", 3, 8, 8]))  # a symbolic batch is taken as 1
    assert (row.batch, row.in_h, row.out_h) == (1, 8, 8)
    with pytest.raises(LayerTableError) as error:
        layer_table_from_onnx(conv_model("height.onnx", ["N", 3, "H", 8]))
    message = str(error.value)
    assert "\n" not in message and "height.onnx" in message
    assert "'stem'" in message and "dimension 2" in message and "'H'" in message


def test_not_an_onnx_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "noise.onnx"
    path.write_bytes(np.random.default_rng(18).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(LayerTableError, match="not an ONNX model") as error:
        layer_table_from_onnx(path)
    assert str(error.value).startswith(f"{path}: ") and "\n" not in str(error.value)
    with pytest.raises(LayerTableError, match="cannot read the file") as error:
        layer_table_from_onnx(tmp_path / "missing.onnx")
    assert "missing.onnx" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("attributes", "weight", "problem"),
    [
        ({"pads": [0, 0, 1, 1]}, (4, 3, 3, 3), "pads [0, 0, 1, 1] (begin h, w, end h, w) are asymmetric"),
        ({"pads": [1, 0, 1, 0]}, (4, 3, 3, 3), "padding 1x0 is not square"),
        ({}, (4, 3, 1, 3), "kernel 1x3 is not square"),
        ({"strides": [1, 2]}, (4, 3, 3, 3), "stride 1x2 is not square"),
        ({"dilations": [2, 2], "pads": [2, 2, 2, 2]}, (4, 3, 3, 3), "dilation [2, 2]"),
        ({"auto_pad": "SAME_UPPER"}, (4, 3, 3, 3), "auto_pad=SAME_UPPER"),
    ],
)
def test_convolutions_conv_layer_cannot_describe(tmp_path, attributes, weight, problem):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="odd", **attributes)
    path = _save(
        tmp_path / "odd.onnx", [node], [_tensor("x", [1, 3, 8, 8])], [_tensor("y", None)], [_weight("w", *weight)]
    )
    with pytest.raises(LayerTableError, match=re.escape(problem)) as error:
        layer_table_from_onnx(path)
    assert str(error.value).startswith(f"{path}: node 'odd' (Conv): ") and "\n" not in str(error.value)


def test_missing_onnx_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(LayerTableError, match=re.escape("pip install 'dfs-sim[onnx]'")) as error:
        layer_table_from_onnx(tmp_path / "model.onnx")
    assert "\n" not in str(error.value)


def test_the_documented_export_path_works_with_the_onnx_extra(tmp_path):
    """docs/python.md says ``torch.onnx.export(model, (x,), path)``: today's exporter needs onnxscript, which the onnx
    extra installs; the table it reads matches the one traced from the module."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from dfs_sim.model.from_torch import layer_table_from_module

    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 28 * 28, 10)
    ).eval()
    path = tmp_path / "small.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 28, 28),), str(path))
    read = layer_table_from_onnx(path)
    traced = layer_table_from_module(model, (1, 28, 28))
    assert [layer.macs for layer in read] == [layer.macs for layer in traced]
