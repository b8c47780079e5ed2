"""Cost tables (per gated block and option, plus the always-run layers), their disk cache, and the table CLI."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

import cost_models.block_costs as cost_table_module
from cost_models import METRICS, CostTable, LayerCost, build_cost_table, list_presets, load_preset, option_cost
from cost_models.haq import haq_table
from cost_models.pricing import layer_cost
from cost_models.table import main
from dfs_sim.errors import LayerTableError
from dfs_sim.importers import layer_table_from_scalesim as read_scalesim_topology
from dfs_sim.layer_table import ConvLayer, LayerTable, cifar_resnet_layers
from dfs_sim.options import DFS_OPTIONS, SKIPNET_OPTIONS

LAYERS = cifar_resnet_layers(14)  # 5 gated blocks, two of them strided with a projection


def _sum(layers, preset, option_of):
    return sum((option_cost(layer, preset, option_of(layer)) for layer in layers), LayerCost())


def test_block_costs_include_the_projection_and_fixed_sums_always_run_layers(tmp_path):
    preset = load_preset("bitfusion_eyeriss")
    table = build_cost_table(LAYERS, preset, cache_dir=tmp_path)
    assert isinstance(table, CostTable) and table.block.shape == (5, 7, len(METRICS))
    assert table.fixed.shape == (len(METRICS),)
    assert table.block.dtype == np.float64 and table.options == DFS_OPTIONS and table.preset == preset
    for block in range(LAYERS.num_blocks):
        layers = LAYERS.block_layers(block)
        projection = [layer for layer in layers if layer.role == "projection"]
        fixed_projection = _sum(projection, preset, lambda layer: DFS_OPTIONS[layer.fixed_option])
        for option in DFS_OPTIONS[1:]:
            main = [layer for layer in layers if layer.role == "main"]
            expected = _sum(main, preset, lambda layer, option=option: option) + fixed_projection
            np.testing.assert_allclose(table.block[block, option.code], expected.metrics())
        # a skipped block still pays its projection; without one it costs nothing (skip = "alias")
        np.testing.assert_allclose(table.block[block, 0], fixed_projection.metrics())
        assert (table.block[block, 0] > 0).any() == bool(projection)
    fixed = _sum(LAYERS.fixed_layers(), preset, lambda layer: DFS_OPTIONS[layer.fixed_option])
    np.testing.assert_allclose(table.fixed, fixed.metrics())


@pytest.mark.parametrize("name", list_presets())
def test_tables_grow_with_the_option_bits(tmp_path, name):
    table = build_cost_table(LAYERS, name, cache_dir=tmp_path)
    assert np.all(np.diff(table.block[:, :, :], axis=1) >= 0)  # skip < q8 < ... < q16 < fp in every metric
    cycles, compute, sram, dram, bits = (table.fixed[i] for i in range(5))
    assert cycles > 0 and compute > 0 and sram > 0 and dram > 0 and bits > 0


def test_skipnet_options_give_the_matching_dfs_entries(tmp_path):
    dfs = build_cost_table(LAYERS, "stripes", cache_dir=tmp_path)
    skipnet_layers = cifar_resnet_layers(14, options=SKIPNET_OPTIONS)
    skipnet = build_cost_table(skipnet_layers, "stripes", options=SKIPNET_OPTIONS, cache_dir=tmp_path)
    assert skipnet.block.shape == (5, 2, len(METRICS))
    np.testing.assert_array_equal(skipnet.block[:, 0], dfs.block[:, 0])
    np.testing.assert_array_equal(skipnet.block[:, 1], dfs.block[:, 6])
    assert np.all(skipnet.fixed <= dfs.fixed)  # the gates' last layer is 10 -> 2 instead of 10 -> 7


def test_second_build_comes_from_the_disk_cache(tmp_path, monkeypatch):
    first = build_cost_table(LAYERS, "loom", cache_dir=tmp_path)
    files = list(tmp_path.glob("loom-*.npz"))
    assert len(files) == 1 and first.key in files[0].name

    def fail(*args, **kwargs):
        raise AssertionError("rebuilt although cached")

    monkeypatch.setattr(cost_table_module, "_build", fail)
    second = build_cost_table(LAYERS, "loom", cache_dir=tmp_path)
    np.testing.assert_array_equal(first.block, second.block)
    np.testing.assert_array_equal(first.fixed, second.fixed)
    assert second.key == first.key


@pytest.mark.parametrize("damage", ["garbage", "truncate", "tamper"])
def test_corrupted_cache_is_rebuilt_not_trusted(tmp_path, damage):
    first = build_cost_table(LAYERS, "bitparallel16", cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    if damage == "garbage":
        path.write_bytes(b"not a numpy file")
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    else:
        with np.load(path) as data:
            stored = {key: data[key] for key in data.files}
        stored["block"] = stored["block"] * 2
        buffer = io.BytesIO()
        np.savez(buffer, **stored)
        path.write_bytes(buffer.getvalue())
    again = build_cost_table(LAYERS, "bitparallel16", cache_dir=tmp_path)
    np.testing.assert_array_equal(again.block, first.block)
    assert build_cost_table(LAYERS, "bitparallel16", cache_dir=tmp_path).block.tolist() == first.block.tolist()


def test_cache_key_changes_with_preset_values_and_env_dir(tmp_path, monkeypatch):
    preset = load_preset("stripes")
    a = build_cost_table(LAYERS, preset, cache_dir=tmp_path)
    b = build_cost_table(LAYERS, preset.replace(dram__pj_per_bit=20.0), cache_dir=tmp_path)
    assert a.key != b.key and b.fixed[3] > a.fixed[3]
    monkeypatch.setenv("DFS_SIM_CACHE", str(tmp_path / "env"))
    build_cost_table(LAYERS, preset)
    assert list((tmp_path / "env").glob("stripes-*.npz"))


def test_to_frame_is_tidy(tmp_path):
    table = build_cost_table(LAYERS, "bitfusion_stripes", cache_dir=tmp_path)
    frame = table.to_frame()
    assert list(frame.columns) == ["preset", "block", "option", "option_name", "metric", "value"]
    assert len(frame) == (5 * 7 + 1) * len(METRICS)
    row = frame[(frame.block == 3) & (frame.option == 2) & (frame.metric == "e_dram_pj")]
    assert row.value.item() == table.block[3, 2, METRICS.index("e_dram_pj")]
    assert set(frame[frame.block == -1].option_name) == {"fixed"}


def test_table_cli_prints_per_layer_csv(capsys):
    assert main(["--preset", "stripes", "--arch", "resnet8"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    layers = cifar_resnet_layers(8)
    assert len(frame) == len(layers) * len(DFS_OPTIONS)
    assert {
        "layer",
        "option_name",
        "cycles",
        "latency_us",
        "energy_pj",
        "e_compute_pj",
        "e_sram_pj",
        "e_dram_pj",
        "dram_bits",
    } <= set(frame.columns)
    stem = frame[(frame.layer == "stem") & (frame.option_name == "q8")].iloc[0]
    assert stem.cycles == layer_cost(layers[0], "stripes", 8, 8).cycles


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--preset", "nope", "--arch", "resnet8"], "bitfusion_eyeriss"),
        (["--preset", "stripes", "--arch", "vgg16"], "resnetN"),
        (["--preset", "stripes", "--arch", "resnet9"], "6n+2"),
        (["--preset", "stripes", "--options", "magic"], "skipnet"),
        (["--preset", "stripes", "--topology", "/no/such/file.csv"], "file.csv"),
    ],
)
def test_table_cli_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err


TOPOLOGY = """Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
Conv1, 34, 34, 3, 3, 3, 16, 1,
Conv2, 18, 18, 3, 3, 16, 32, 2,
FC, 1, 1, 1, 1, 64, 10, 1,
"""


def test_scalesim_topology_and_haq_table(tmp_path, capsys):
    path = tmp_path / "net.csv"
    path.write_text(TOPOLOGY)
    layers = read_scalesim_topology(path)
    assert [layer.name for layer in layers] == ["Conv1", "Conv2", "FC"]
    assert (layers[1].in_ch, layers[1].out_ch, layers[1].out_h, layers[1].padding) == (16, 32, 9, 1)  # ceil(17 / 2)
    table = haq_table(layers, "bitfusion_eyeriss", metric="cycles", max_bits=4)
    assert table.shape == (3, 4, 4)
    assert table[1, 3, 1] == layer_cost(layers[1], "bitfusion_eyeriss", 4, 2).cycles  # [layer, w-1, a-1]
    out = tmp_path / "haq.npy"
    assert (
        main(
            [
                "--preset",
                "bitfusion_eyeriss",
                "--topology",
                str(path),
                "--haq-out",
                str(out),
                "--haq-metric",
                "cycles",
                "--max-bits",
                "4",
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(np.load(out), table)
    assert len(pd.read_csv(io.StringIO(capsys.readouterr().out))) == 3 * len(DFS_OPTIONS)
    bad = tmp_path / "bad.csv"
    bad.write_text(TOPOLOGY.replace("Conv2, 18, 18, 3, 3", "Conv2, 18, 18, 3, 5"))
    with pytest.raises(LayerTableError, match="line 3"):
        read_scalesim_topology(bad)


def test_scalesim_rows_get_the_simulators_own_output_sizes(tmp_path):
    """SCALE-Sim v2/v3 size an output as ceil((ifmap - filter + stride) / stride); the padding that gives it is
    kept, name-only separator rows are skipped, a stride-width column must equal the stride."""
    path = tmp_path / "net.csv"
    path.write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
        "ResNet18,\n"
        "Conv1, 224, 224, 7, 7, 3, 64, 2, 2,\n"  # v2's Resnet18.csv: 110x110 out there, 109 unpadded
        "AlexConv1, 224, 224, 11, 11, 3, 96, 4,\n"  # 55 in v2, 54 unpadded
        "Conv2_1a, 56, 56, 3, 3, 64, 64, 1, 1:1,\n"  # exact: no padding; v3's sparsity column is ignored
    )
    layers = read_scalesim_topology(path)
    assert [layer.name for layer in layers] == ["Conv1", "AlexConv1", "Conv2_1a"]
    assert [(layer.out_h, layer.out_w) for layer in layers] == [(110, 110), (55, 55), (54, 54)]
    assert [layer.padding for layer in layers] == [1, 2, 0]
    assert layers[0].macs == 110 * 110 * 7 * 7 * 3 * 64
    path.write_text(path.read_text().replace("7, 7, 3, 64, 2, 2,", "7, 7, 3, 64, 2, 1,"))
    with pytest.raises(LayerTableError, match="line 3: only equal strides"):
        read_scalesim_topology(path)


def test_the_table_breaks_down_cycles_utilisation_and_buffer_energy():
    from cost_models import layer_costs as layer_frame

    layers = LayerTable([ConvLayer(16, 16, 8, 8, 3, 1, 1, name="small", fixed_option=6)])
    frame = layer_frame(layers, "bitfusion_eyeriss", DFS_OPTIONS).set_index("option_name")
    np.testing.assert_allclose(frame[["e_ibuf_pj", "e_wbuf_pj", "e_obuf_pj"]].sum(axis=1), frame["e_sram_pj"])
    # 16 input channels on 16 rows of Fusion Units at 8 bits, 16 of 32 columns: half the array works
    assert frame.loc["q8", "utilisation"] == pytest.approx(0.5)
    assert np.isnan(frame.loc["skip", "utilisation"])
    assert (frame["compute_cycles"] + frame["fill_drain_cycles"] <= frame["cycles"] + frame["mem_cycles"]).all()


def test_a_scalesim_topology_can_mark_gated_blocks_for_a_gated_cost_table(tmp_path):
    path = tmp_path / "net.csv"
    path.write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
        "Conv1, 32, 32, 3, 3, 3, 16, 1,\n"
        "Res1_a, 32, 32, 3, 3, 16, 16, 1,\n"
        "Res1_b, 32, 32, 3, 3, 16, 16, 1,\n"
        "Res2_a, 32, 32, 3, 3, 16, 32, 2,\n"
        "Res2_b, 16, 16, 3, 3, 32, 32, 1,\n"
        "Res2_shortcut, 32, 32, 1, 1, 16, 32, 2,\n"
        "FC, 1, 1, 1, 1, 32, 10, 1,\n"
    )
    layers = read_scalesim_topology(path, gated=r"Res\d")
    assert layers.num_blocks == 2
    assert [(layer.block, layer.role) for layer in layers] == [
        (None, "main"),
        (0, "main"),
        (0, "main"),
        (1, "main"),
        (1, "main"),
        (1, "projection"),
        (None, "main"),
    ]
    table = build_cost_table(layers, "stripes", DFS_OPTIONS)
    assert table.block.shape[:2] == (2, len(DFS_OPTIONS))
    # skipping the strided block still pays its shortcut
    shortcut = option_cost(layers[5], "stripes", DFS_OPTIONS[-1])
    assert table.block[1, 0, 0] == shortcut.cycles
