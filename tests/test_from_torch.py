"""``layer_table_from_module``: any torch module traced into a ``LayerTable``.

The ImageNet networks are written out here (torchvision is not a dependency) with torchvision's layer shapes, and
their MACs at 1×3×224×224 (every conv and the final fully connected layer; no BN, activation, pooling or addition)
are checked twice: exactly against a closed-form count written independently of the modules, and within 1% against
the published counts. ResNet-18 1.814 G and ResNet-50 4.089 G: He et al., "Deep Residual Learning for Image
Recognition", CVPR 2016, Table 1 (1.8 and 3.8 ×10⁹ "FLOPs" there), as torchvision builds and counts them
(``ResNet18_Weights``/``ResNet50_Weights`` ``_ops``); torchvision's ResNet-50 strides the bottleneck's 3×3 conv
("ResNet v1.5"), the paper its first 1×1, hence 4.09 G rather than 3.8 G. MobileNetV2 0.300 G: Sandler et al.,
"MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018, Table 4 (300M multiply-adds at width 1.0, 224;
torchvision: 0.301).
"""

import re

import pytest
import torch
from torch import nn

from dfs_sim.errors import LayerTableError
from dfs_sim.layer_table import ConvLayer, cifar_resnet_layers
from dfs_sim.model.from_torch import layer_table_from_module
from dfs_sim.model.registry import create_model
from dfs_sim.options import DFS_OPTIONS

FP = DFS_OPTIONS[-1].code


# ---------------------------------------------------------------------------------------------------- the networks
def _conv_bn(in_ch, out_ch, kernel, stride=1, groups=1, relu=True):
    layers = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if relu else nn.Sequential(*layers)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch, width, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(in_ch, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width)
        out = width * self.expansion
        self.downsample = None
        if stride != 1 or in_ch != out:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def residual(self, x):
        return self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.residual(x) + shortcut)


class Bottleneck(BasicBlock):
    """torchvision's bottleneck: 1×1 reduce, 3×3 at ``stride`` (v1.5), 1×1 expand ×4."""

    expansion = 4

    def __init__(self, in_ch, width, stride):
        super().__init__(in_ch, width, stride)
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.conv3, self.bn3 = nn.Conv2d(width, width * 4, 1, bias=False), nn.BatchNorm2d(width * 4)

    def residual(self, x):
        return self.bn3(self.conv3(torch.relu(super().residual(x))))


class ResNet(nn.Module):
    """He et al. 2016 with torchvision's module names; ``cifar``: the 3×3 stride-1 stem and no max-pool of the usual
    CIFAR adaptation."""

    def __init__(self, block, counts, num_classes=1000, cifar=False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False) if cifar else nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.Identity() if cifar else nn.MaxPool2d(3, 2, 1)
        channels = 64
        for stage, (width, count) in enumerate(zip((64, 128, 256, 512), counts, strict=True)):
            blocks = []
            for index in range(count):
                blocks.append(block(channels, width, 2 if stage > 0 and index == 0 else 1))
                channels = width * block.expansion
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, in_ch, out_ch, stride, expand):
        super().__init__()
        hidden = in_ch * expand
        layers = [_conv_bn(in_ch, hidden, 1)] if expand != 1 else []
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden), _conv_bn(hidden, out_ch, 1, relu=False)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


# Sandler et al. 2018, Table 2: expansion t, output channels c, repeats n, first stride s
MOBILENET_V2 = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        layers, channels = [_conv_bn(3, 32, 3, 2)], 32
        for t, c, n, s in MOBILENET_V2:
            for index in range(n):
                layers.append(InvertedResidual(channels, c, s if index == 0 else 1, t))
                channels = c
        self.features = nn.Sequential(*layers, _conv_bn(channels, 1280, 1))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


# -------------------------------------------------------------------------------------- closed-form MAC counts
def _macs(out_size, out_ch, in_ch, kernel):
    """One conv's MACs: every output pixel of every filter reads in_ch·k² inputs (in_ch per group)."""
    return out_size * out_size * out_ch * in_ch * kernel * kernel


def _resnet_macs(counts, bottleneck):
    total = _macs(112, 64, 3, 7)  # 7×7/2 stem; the max-pool halves 112 to 56
    channels, size = 64, 56
    for stage, (width, count) in enumerate(zip((64, 128, 256, 512), counts, strict=True)):
        out = width * 4 if bottleneck else width
        for index in range(count):
            stride = 2 if stage > 0 and index == 0 else 1
            size_out = size // stride
            if bottleneck:
                total += (
                    _macs(size, width, channels, 1) + _macs(size_out, width, width, 3) + _macs(size_out, out, width, 1)
                )
            else:
                total += _macs(size_out, width, channels, 3) + _macs(size_out, width, width, 3)
            if stride != 1 or channels != out:
                total += _macs(size_out, out, channels, 1)
            channels, size = out, size_out
    return total + channels * 1000


def _mobilenet_v2_macs():
    total, channels, size = _macs(112, 32, 3, 3), 32, 112
    for t, c, n, s in MOBILENET_V2:
        for index in range(n):
            hidden = channels * t
            size_out = size // (s if index == 0 else 1)
            expand = _macs(size, hidden, channels, 1) if t != 1 else 0
            total += expand + _macs(size_out, hidden, 1, 3) + _macs(size_out, c, hidden, 1)  # depthwise: 1 in/group
            channels, size = c, size_out
    return total + _macs(7, 1280, 320, 1) + 1280 * 1000


@pytest.mark.parametrize(
    ("build", "closed_form", "published", "params"),
    [
        (lambda: ResNet(BasicBlock, (2, 2, 2, 2)), lambda: _resnet_macs((2, 2, 2, 2), False), 1.814e9, 11_689_512),
        (lambda: ResNet(Bottleneck, (3, 4, 6, 3)), lambda: _resnet_macs((3, 4, 6, 3), True), 4.089e9, 25_557_032),
        (MobileNetV2, _mobilenet_v2_macs, 0.300e9, 3_504_872),
    ],
    ids=["resnet18", "resnet50", "mobilenet_v2"],
)
def test_imagenet_macs_match_closed_form_and_published_counts(build, closed_form, published, params):
    with torch.device("meta"):  # shapes only: no weights to initialise, no arithmetic to run
        model = build()
    assert sum(p.numel() for p in model.parameters()) == params  # torchvision's num_params: the same layers
    table = layer_table_from_module(model, (3, 224, 224))
    total = sum(layer.macs for layer in table)
    assert total == table.total_macs == closed_form()
    assert abs(total - published) / published < 0.01, f"{total:,} MACs vs published {published:,.0f}"
    assert table[-1].kind == "linear" and table[-1].out_ch == 1000
    assert all(layer.fixed_option == FP and layer.block is None for layer in table)


def test_resnet18_rows_and_known_layer_counts():
    table = layer_table_from_module(ResNet(BasicBlock, (2, 2, 2, 2)), (3, 224, 224))  # a real forward, on the CPU
    assert len(table) == 17 + 3 + 1  # 17 weight layers of the 18 are convs, 3 projections, the fc
    stem = table[0]
    assert (stem.name, stem.in_ch, stem.out_ch, stem.in_h, stem.kernel, stem.stride, stem.padding) == (
        "conv1", 3, 64, 224, 7, 2, 3
    )  # fmt: skip
    assert stem.macs == 112 * 112 * 64 * 3 * 7 * 7 == 118_013_952
    down = next(layer for layer in table if layer.name == "layer2.0.downsample.0")
    assert (down.in_ch, down.out_ch, down.in_h, down.kernel, down.stride, down.macs) == (64, 128, 56, 1, 2, 6_422_528)
    assert table[-1].name == "fc" and table[-1].macs == 512 * 1000


def test_mobilenet_v2_depthwise_groups():
    with torch.device("meta"):
        table = layer_table_from_module(MobileNetV2(), (3, 224, 224))
    depthwise = [layer for layer in table if layer.groups > 1]
    assert len(depthwise) == sum(n for _, _, n, _ in MOBILENET_V2) == 17
    assert all(layer.groups == layer.in_ch == layer.out_ch and layer.kernel == 3 for layer in depthwise)


def test_mobilenet_v2_cost_tables_on_the_shipped_presets():
    """Every block of MobileNetV2 at every DFS option on the five shipped presets (a few seconds in all); its
    depthwise layers run packed, so on each preset their compute cycles are below one channel at a time."""
    from cost_models import build_cost_table, layer_cost, list_presets

    with torch.device("meta"):
        table = layer_table_from_module(MobileNetV2(), (3, 224, 224), gated=r"^features\.\d+$")
    depthwise = next(layer for layer in table if layer.groups > 1 and layer.in_h == 112)
    one_channel = ConvLayer(1, 1, depthwise.in_h, depthwise.in_w, 3, depthwise.stride, 1)
    for preset in list_presets():
        costs = build_cost_table(table, preset, use_cache=False)
        assert costs.block.shape[:2] == (table.num_blocks, len(DFS_OPTIONS)) and (costs.block[:, 1:] > 0).all()
        packed = layer_cost(depthwise, preset, 8, 8).compute_cycles
        assert packed < depthwise.groups * layer_cost(one_channel, preset, 8, 8).compute_cycles


# ------------------------------------------------------------------------------------- the project's CIFAR ResNet
def _canonical(table):
    """Rows as comparable tuples, a block's projection moved after its main convs.

    ``GatedBasicBlock`` computes its shortcut (the projection) before conv1, so the trace lists it first, while
    ``cifar_resnet_layers`` lists it after conv2; the order inside a block is bookkeeping only (the block's cost is a
    sum). Names differ too (``blocks.3.conv1`` vs ``group2.block0.conv1``) and are left out."""
    first = {}
    for index, layer in enumerate(table):
        first.setdefault(layer.block, index)
    order = sorted(
        range(len(table)),
        key=lambda i: (i if table[i].block is None else first[table[i].block], table[i].role == "projection", i),
    )
    fields = ("in_ch", "out_ch", "in_h", "in_w", "kernel", "stride", "padding", "groups", "batch")
    fields += ("kind", "block", "fixed_option", "role")
    return [tuple(getattr(table[i], field) for field in fields) for i in order]


def test_static_cifar_resnet38_traces_like_cifar_resnet_layers():
    model = create_model("static_resnet38")
    expected = cifar_resnet_layers(38, gates=False)
    # gated: every block but the first, as GatedResNet gates them; the first block and the projections stay fixed
    table = layer_table_from_module(model, (3, 32, 32), gated=r"^blocks\.\d+$")
    assert table.num_blocks == expected.num_blocks == 17
    assert _canonical(table) == _canonical(expected)
    assert table.total_macs == expected.total_macs
    # ungated: the same rows in the same (call) order, every layer always run at full precision
    plain = layer_table_from_module(model, (3, 32, 32))
    shapes = ("name", "in_ch", "out_ch", "in_h", "in_w", "kernel", "stride", "padding", "groups", "batch", "kind")
    assert [[getattr(layer, f) for f in shapes] for layer in plain] == [
        [getattr(layer, f) for f in shapes] for layer in table
    ]
    assert plain.num_blocks == 0 and {layer.fixed_option for layer in plain} == {FP}
    assert model.training  # the trace leaves the model in the mode it found it


def test_gated_regex_marks_blocks_and_projections():
    model = ResNet(BasicBlock, (2, 2, 2, 2), num_classes=10, cifar=True)
    table = layer_table_from_module(model, (3, 32, 32), gated=r"layer\d\.\d+$")
    assert table.num_blocks == 8
    units = [f"layer{stage}.{index}" for stage in range(1, 5) for index in range(2)]
    for block, unit in enumerate(units):  # consecutive indices, in call order
        rows = table.block_layers(block)
        assert {layer.name.rsplit(".", 1)[0] for layer in rows if layer.role == "main"} == {unit}
        assert all(layer.fixed_option is None for layer in rows if layer.role == "main")
    projections = [layer for layer in table if layer.role == "projection"]
    assert [layer.name for layer in projections] == [f"layer{stage}.0.downsample.0" for stage in (2, 3, 4)]
    assert [layer.block for layer in projections] == [2, 4, 6]
    assert all(layer.fixed_option == FP and layer.kernel == 1 for layer in projections)
    assert [layer.name for layer in table.fixed_layers()] == ["conv1", "fc"]
    # a callable marks the same units; an unanchored pattern marks the outermost match (the block, not its convs)
    by_callable = layer_table_from_module(model, (3, 32, 32), gated=lambda name: name.count(".") == 1)
    assert by_callable == table
    assert layer_table_from_module(model, (3, 32, 32), gated=re.compile(r"layer\d\.\d")) == table


# ------------------------------------------------------------------------------------------- calls and linears
class _Twice(nn.Module):
    """One conv called twice, and a linear over tokens (a leading dimension besides the batch)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.mix = nn.Linear(4, 8)

    def forward(self, x):
        x = self.conv(self.conv(x))
        return self.mix(x.flatten(2).transpose(1, 2))  # (1, 5·5 tokens, 4)


def test_repeated_calls_and_token_linear():
    table = layer_table_from_module(_Twice(), (4, 5, 5))
    assert [layer.name for layer in table] == ["conv", "conv#2", "mix"]
    mix = table[2]
    assert (mix.kind, mix.in_ch, mix.out_ch, mix.in_h, mix.in_w, mix.batch) == ("linear", 4, 8, 1, 1, 25)
    assert mix.macs == 25 * 4 * 8


# ------------------------------------------------------------------------------------------------------ errors
def test_forward_failure_is_one_line_naming_module_and_shape():
    model = ResNet(BasicBlock, (1, 1, 1, 1), num_classes=10, cifar=True)
    with pytest.raises(LayerTableError) as error:
        layer_table_from_module(model, (1, 32, 32))  # a grey image into a 3-channel stem
    message = str(error.value)
    assert "\n" not in message
    assert "ResNet" in message and "(1, 32, 32)" in message and "RuntimeError" in message
    assert model.training  # modes restored after a failure too


@pytest.mark.parametrize(
    ("conv", "problem"),
    [
        (nn.Conv2d(3, 4, 3, padding=2, dilation=2), "dilation"),
        (nn.Conv2d(3, 4, (1, 3)), "kernel 1x3 is not square"),
        (nn.Conv2d(3, 4, 3, stride=(1, 2)), "stride 1x2 is not square"),
        (nn.Conv2d(3, 4, 3, padding="same"), "padding='same'"),
    ],
)
def test_convolutions_conv_layer_cannot_describe(conv, problem):
    model = nn.Sequential(nn.Identity(), conv)
    with pytest.raises(LayerTableError, match=re.escape(problem)) as error:
        layer_table_from_module(model, (3, 8, 8))
    assert str(error.value).startswith("1: ") and "\n" not in str(error.value)  # names the layer ("1" in Sequential)
