"""Per-layer precision policies: the table command's totals equal a replay of the same policy as a static run."""

import io

import numpy as np
import pandas as pd
import pytest

from analysis.pipeline import replay
from cost_models.policy import PrecisionPolicy, load_policy, policy_frame, policy_run
from cost_models.table import main
from dfs_sim.errors import ConfigError
from dfs_sim.layer_table import cifar_resnet_layers
from dfs_sim.traces import read_trace
from tests.golden_frames import EXAMPLE

REFERENCE = EXAMPLE / "static_r38_fp.parquet"
POLICY = """default = "w8a8"

[[rule]]
layers = "stem"
option = "fp"

[[rule]]
layers = "group1.*"
option = "w4a8"

[[rule]]
layers = "group3.block[0-4].*"
option = "q12"
"""


@pytest.fixture()
def policy_file(tmp_path):
    path = tmp_path / "widths.toml"
    path.write_text(POLICY)
    return path


def test_rules_first_match_wins_and_the_default_covers_the_rest(policy_file):
    policy = load_policy(policy_file)
    layers = cifar_resnet_layers(38)
    assigned = {layer.name: option.name for layer, option in zip(layers, policy.assign(layers), strict=True)}
    assert assigned["stem"] == "fp"
    assert assigned["group1.block3.conv2"] == "w4a8"
    assert assigned["group3.block2.conv1"] == "q12" and assigned["group3.block5.conv1"] == "w8a8"
    assert assigned["gate4.fc"] == "w8a8"
    assert [option.name for option in policy.options()] == ["fp", "w4a8", "q12", "w8a8"]


def test_table_totals_equal_a_replay_of_the_policy_as_a_static_run(policy_file, tmp_path, capsys):
    trace = tmp_path / "traces" / "policy_widths.parquet"
    trace.parent.mkdir()
    command = ["--preset", "bitfusion_eyeriss", "--reference", str(REFERENCE), "--policy", str(policy_file)]
    assert main([*command, "--policy-trace", str(trace)]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    total = table[table["layer"] == "total"].iloc[0]
    assert total["energy_pj"] == pytest.approx(table.loc[table["layer"] != "total", "energy_pj"].sum())
    replayed = replay(trace.parent, presets=["bitfusion_eyeriss"], out=None, progress=False).per_input
    np.testing.assert_allclose(replayed["energy_pj"], total["energy_pj"], rtol=1e-12)
    np.testing.assert_allclose(replayed["cycles"], total["cycles"], rtol=1e-12)
    run = read_trace(trace)
    assert run.method == "static" and run.meta["predictions_from"] == "static_r38_fp"
    assert main([*command, "--policy-trace", str(trace)]) == 2  # never overwritten
    assert "exists" in capsys.readouterr().err


def test_csv_and_toml_policies_agree(policy_file, tmp_path):
    csv = tmp_path / "widths.csv"
    csv.write_text("layers,option\nstem,fp\ngroup1.*,w4a8\ngroup3.block[0-4].*,q12\n*,w8a8\n")
    layers = cifar_resnet_layers(38)
    toml_frame = policy_frame(layers, "stripes", load_policy(policy_file))
    csv_frame = policy_frame(layers, "stripes", load_policy(csv))
    pd.testing.assert_frame_equal(toml_frame, csv_frame)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[[rule]]\nlayers = "no_such_layer*"\noption = "q8"\n', "matches no layer"),
        ('[[rule]]\nlayers = "stem"\noption = "skip"\n', "not a precision"),
        ('[[rule]]\nlayers = "stem"\noption = "q40"\n', "bits must be"),
        ('[[rule]]\nlayers = "stem"\n', "exactly 'layers'"),
        ('colour = "red"\n', "unknown keys"),
    ],
)
def test_bad_policies_are_one_line_errors(tmp_path, capsys, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["--preset", "stripes", "--arch", "resnet20", "--policy", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err and "bad.toml" in err


def test_a_block_split_between_two_widths_cannot_be_a_run():
    policy = PrecisionPolicy((("group2.block1.conv1", "q8"),), default="q16")
    with pytest.raises(ConfigError, match="gated block"):
        policy_run(read_trace(REFERENCE), policy)
