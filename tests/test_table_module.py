"""``python -m cost_models.table --module package.module:factory``: the cost table of any torch model; its errors."""

import io

import pandas as pd
import pytest

from cost_models.table import main
from dfs_sim.model.from_torch import layer_table_from_module
from dfs_sim.options import DFS_OPTIONS
from tests.test_from_torch import BasicBlock, ResNet


def cifar_resnet18():
    """A factory as ``--module`` takes it: no arguments, returns an ``nn.Module``."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes=10, cifar=True)


def not_a_module():
    return "resnet"


def broken():
    raise RuntimeError("weights missing\nsecond line")


def test_module_table_has_every_layer_at_every_option_with_its_macs(capsys):
    argv = ["--preset", "stripes", "--module", "tests.test_table_module:cifar_resnet18", "--input-shape", "3,32,32"]
    argv += ["--gated", r"layer\d\.\d+$"]
    assert main(argv) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    table = layer_table_from_module(cifar_resnet18(), (3, 32, 32), gated=r"layer\d\.\d+$")
    assert len(frame) == len(table) * len(DFS_OPTIONS)
    per_layer = frame.drop_duplicates("layer")
    assert per_layer["layer"].tolist() == [layer.name for layer in table]
    # CIFAR ResNet-18 by hand: the 3×3 stem, layer1's four 64→64 convs at 32×32, and three stages that each cost
    # 2**27 MACs (a strided 3×3, three more 3×3 and a 1×1 projection), then the classifier
    by_hand = 32 * 32 * 64 * 3 * 9 + 4 * 32 * 32 * 64 * 64 * 9 + 3 * 2**27 + 512 * 10
    assert per_layer["macs"].sum() == table.total_macs == by_hand == 555_422_720
    assert sorted(set(per_layer["block"])) == list(range(-1, 8))  # eight gated blocks, -1 for always-run layers
    q8 = frame[frame.option_name == "q8"].set_index("layer")
    fp = frame[frame.option_name == "fp"].set_index("layer")
    assert (q8.loc["layer1.0.conv1", "cycles"] < fp.loc["layer1.0.conv1", "cycles"]).all()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--module", "tests.test_table_module", "--input-shape", "3,8,8"], "expected package.module:factory"),
        (["--module", "tests.no_such_module:f", "--input-shape", "3,8,8"], "cannot load tests.no_such_module:f"),
        (["--module", "tests.test_table_module:missing", "--input-shape", "3,8,8"], "cannot load"),
        (["--module", "tests.test_table_module:not_a_module", "--input-shape", "3,8,8"], "not a torch.nn.Module"),
        (["--module", "tests.test_table_module:broken", "--input-shape", "3,8,8"], "broken() failed: RuntimeError"),
        (["--module", "tests.test_table_module:cifar_resnet18"], "--input-shape"),
        (["--module", "tests.test_table_module:cifar_resnet18", "--input-shape", "3,x"], "positive integers"),
        (["--module", "tests.test_table_module:cifar_resnet18", "--input-shape", "1,32,32"], "forward pass failed"),
    ],
)
def test_module_errors_are_one_line_and_exit_2(capsys, extra, needle):
    assert main(["--preset", "stripes", *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1, err


def test_onnx_table_equals_the_module_table(tmp_path, capsys):
    from tests.test_onnx_import import _export

    path = _export(cifar_resnet18().eval(), (1, 3, 32, 32), tmp_path / "resnet18.onnx")
    argv = ["--preset", "stripes", "--gated", r"layer\d\.\d+"]
    assert main([*argv, "--onnx", str(path)]) == 0
    from_onnx = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert main([*argv, "--module", "tests.test_table_module:cifar_resnet18", "--input-shape", "3,32,32"]) == 0
    from_module = pd.read_csv(io.StringIO(capsys.readouterr().out))
    compared = ["block", "role", "option", "macs", "cycles", "energy_pj"]
    assert from_onnx[compared].equals(from_module[compared])  # same rows in the same order, named differently


def test_a_file_that_is_not_onnx_is_one_line(tmp_path, capsys):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x00not a model")
    assert main(["--preset", "stripes", "--onnx", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and err.count("\n") == 1


def test_arch_tables_follow_the_methods_options_and_gate(capsys):
    assert main(["--preset", "stripes", "--arch", "resnet8", "--options", "skipnet"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert set(frame["option_name"]) == {"skip", "fp"}
    assert set(frame.loc[frame["block"] == -1, "fixed_option"]) == {1}  # full precision is code 1 of (skip, fp)
    gate_fc = frame[frame["layer"] == "gate0.fc"].iloc[0]
    assert gate_fc["macs"] == 10  # SkipNet's gate ends in Linear(10, 1)


def test_option_names_several_presets_and_integer_columns(capsys):
    """For architects: any widths by name (fp added), several presets in one table, whole numbers printed whole."""
    assert main(["--preset", "bitfusion_eyeriss", "stripes", "--arch", "resnet8", "--options", "q4,w8a4"]) == 0
    text = capsys.readouterr().out
    frame = pd.read_csv(io.StringIO(text))
    assert set(frame["preset"]) == {"bitfusion_eyeriss", "stripes"}
    assert set(frame["option_name"]) == {"q4", "w8a4", "fp"}
    header, first = text.splitlines()[:2]
    row = dict(zip(header.split(","), first.split(","), strict=True))
    assert row["cycles"].isdigit() and row["macs"].isdigit() and row["block"] == "-1"
    assert main(["--preset", "stripes", "--options", "q4,q17"]) == 2
    assert "--options" in capsys.readouterr().err


def test_a_policy_may_name_one_width_in_two_spellings(tmp_path, capsys):
    policy = tmp_path / "widths.toml"
    policy.write_text('default = "w8a8"\n[[rule]]\nlayers = "group1.*"\noption = "q8"\n')
    assert main(["--preset", "stripes", "--arch", "resnet8", "--policy", str(policy)]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    gated = frame[frame["block"] >= 0]
    assert set(gated["option_name"]) == {"q8"}  # w8a8 and q8 are the same option, spelled as the rules first name it
