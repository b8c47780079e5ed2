import pytest

from dfs_sim.errors import LayerTableError
from dfs_sim.layer_table import ConvLayer, LayerTable, cifar_resnet_layers
from dfs_sim.options import DFS_OPTIONS, SKIPNET_OPTIONS


def _backbone_macs(table: LayerTable, *, projections: bool) -> int:
    return sum(layer.macs for layer in table if layer.kind != "gate" and (projections or layer.role != "projection"))


def test_resnet20_matches_the_well_known_41m_macs():
    # ResNet-20 for CIFAR: 40.55 M MACs for the convolutions and the classifier without projection shortcuts
    # (the figure ptflops/thop report for the option-A ResNet-20 of He et al.); projections add 2 × 131,072.
    table = cifar_resnet_layers(20)
    assert _backbone_macs(table, projections=False) == 40_551_040
    assert _backbone_macs(table, projections=True) == 40_551_040 + 2 * 16 * 32 * 16 * 16


@pytest.mark.parametrize("depth, gated", [(8, 2), (14, 5), (20, 8), (38, 17), (74, 35), (110, 53)])
def test_gated_block_count_matches_the_reference_code(depth, gated):
    table = cifar_resnet_layers(depth)
    assert table.num_blocks == gated == 3 * (depth - 2) // 6 - 1


def test_hand_count_of_one_block_per_group():
    table = cifar_resnet_layers(38)
    by_name = {layer.name: layer for layer in table}
    # group 1, 16 ch at 32×32: two 3×3 convs of 16·16·9 MACs per output pixel
    assert by_name["group1.block1.conv1"].macs == 16 * 16 * 9 * 32 * 32
    assert table.block_macs(0) == 2 * 16 * 16 * 9 * 32 * 32
    # group 2, first block: 16→32 at stride 2 to 16×16, then 32→32; projection 1×1 16→32 at stride 2
    strided = by_name["group2.block0.conv1"].block
    assert table.block_macs(strided) == 16 * 32 * 9 * 16 * 16 + 32 * 32 * 9 * 16 * 16
    assert table.block_macs(strided, role="projection") == 16 * 32 * 16 * 16
    # group 3, a plain block: two 64→64 convs at 8×8
    assert by_name["group3.block3.conv2"].macs == 64 * 64 * 9 * 8 * 8
    assert by_name["fc"].macs == 64 * 10


def test_fixed_layers_run_at_full_precision_and_gates_are_listed():
    for options in (DFS_OPTIONS, SKIPNET_OPTIONS):
        table = cifar_resnet_layers(14, options=options)
        fp = len(options) - 1
        fixed = {layer.name for layer in table.fixed_layers()}
        assert {"stem", "group1.block0.conv1", "group1.block0.conv2", "fc"} <= fixed
        assert all(layer.fixed_option == fp for layer in table.fixed_layers())
        gates = [layer for layer in table if layer.kind == "gate"]
        assert len(gates) == 3 * table.num_blocks
        assert {layer.out_ch for layer in gates if layer.name.endswith(".fc")} == {len(options)}
        projections = [layer for layer in table if layer.role == "projection"]
        assert len(projections) == 2 and all(layer.fixed_option == fp for layer in projections)


def test_records_round_trip_and_hash_is_stable():
    table = cifar_resnet_layers(20)
    again = LayerTable.from_records(table.to_records())
    assert again == table and again.content_hash() == table.content_hash()
    assert cifar_resnet_layers(20, num_classes=100).content_hash() != table.content_hash()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"in_ch": 0}, "in_ch"),
        ({"kernel": 40}, "larger than the padded input"),
        ({"groups": 3}, "groups"),
        ({"kind": "pool"}, "kind"),
        ({"role": "projection", "block": None}, "projection"),
    ],
)
def test_impossible_shapes_are_rejected(change, message):
    record = dict(cifar_resnet_layers(8)[0].to_record(), **change)
    with pytest.raises(LayerTableError, match=message):
        ConvLayer(**record)


def test_bad_depths_and_tables():
    with pytest.raises(LayerTableError, match="6n\\+2"):
        cifar_resnet_layers(21)
    records = cifar_resnet_layers(8).to_records()
    with pytest.raises(LayerTableError, match="unknown keys"):
        LayerTable.from_records([dict(records[0], colour="red")])
    with pytest.raises(LayerTableError, match="duplicate layer names"):
        LayerTable.from_records(records + records[:1])
    with pytest.raises(LayerTableError, match="empty"):
        LayerTable([])
    with pytest.raises(LayerTableError, match="needs a fixed_option"):
        LayerTable.from_records([dict(records[0], fixed_option=None)])
    # a bare layer, as hardware people write it, is valid on its own
    assert ConvLayer(in_ch=64, out_ch=64, in_h=58, in_w=58, kernel=3).macs == 64 * 64 * 9 * 56 * 56


def test_static_tables_leave_out_the_gates():
    with_gates, without = cifar_resnet_layers(20), cifar_resnet_layers(20, gates=False)
    assert without.num_blocks == with_gates.num_blocks
    assert [layer for layer in with_gates if layer.kind != "gate"] == list(without)
    # by hand, ResNet-20's 8 gates: 1x1 conv to 10 on the previous block's output (16 ch for the gates of blocks
    # 1-3, 32 for 4-6, 64 for 7-8), LSTM(10, 10) = 4 x (10x10 + 10x10), Linear(10, 7)
    gate_macs = 10 * (3 * 16 + 3 * 32 + 2 * 64) + 8 * 800 + 8 * 70
    assert with_gates.total_macs - without.total_macs == gate_macs == 9680
