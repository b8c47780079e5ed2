"""Three-stage training on a tiny model: budgets move the computation, resume is exact, configs are validated."""

import dataclasses

import pytest
import torch

from dfs_sim.errors import ConfigError
from dfs_sim.model.checkpoint import load_checkpoint
from dfs_sim.model.config import (
    StageConfig,
    TrainConfig,
    config_from_dict,
    load_train_config,
)
from dfs_sim.model.data import load_split
from dfs_sim.model.infer import evaluate
from dfs_sim.model.training import main, train


def _tiny(tmp_path, **changes) -> TrainConfig:
    base = TrainConfig(
        model="dfs_resnet8",
        dataset="digits",
        out_dir=str(tmp_path),
        batch_size=16,
        augment="none",
        checkpoint_every=5,
        beta=0.05,
        device="cpu",
        backbone=StageConfig(30, 0.05),
        gate=StageConfig(10, 0.01),
        joint=StageConfig(40, 0.05),
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.slow
def test_a_30_percent_budget_lowers_computation_compared_with_100(tmp_path):
    test = load_split("digits", "test")
    backbone = train(_tiny(tmp_path / "bb", stages=("backbone",)), progress=False).checkpoints["backbone"]
    result = {}
    for budget in (30.0, 100.0):
        config = _tiny(tmp_path / f"b{budget:g}", stages=("gate", "joint"), budget=budget, init_from=str(backbone))
        run = train(config, progress=False)
        result[budget] = (run.metrics["joint"]["computation_pct"], evaluate(run.model, test).computation_pct)
    assert result[30.0][0] < result[100.0][0] - 10  # running computation % of the joint stage
    assert result[30.0][1] < result[100.0][1]  # and on the test split


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    config = _tiny(
        tmp_path / "full",
        stages=("backbone", "gate", "joint"),
        backbone=StageConfig(8, 0.05),
        gate=StageConfig(6, 0.01),
        joint=StageConfig(6, 0.05),
    )
    full = train(config, progress=False)
    part_config = dataclasses.replace(config, out_dir=str(tmp_path / "part"))
    part = train(part_config, stop_after=11, progress=False)  # stops inside the gate stage
    assert part.stopped_early
    record = load_checkpoint(part.last_checkpoint)
    assert (record["stage"], record["iteration"]) == ("gate", 3)
    resumed = train(part_config, resume=part.last_checkpoint, progress=False)
    for (name, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    final = load_checkpoint(resumed.checkpoints["joint"])
    assert final["config"]["seed"] == 0 and final["seed"] == 0 and "torch" in final["versions"]
    assert final["config"]["model"] == "dfs_resnet8" and "optimizer" in final and "stream" in final


def test_the_gate_stage_pushes_with_gate_beta_whatever_the_joint_beta(tmp_path):
    backbone = train(_tiny(tmp_path / "bb", stages=("backbone",), backbone=StageConfig(8, 0.05)), progress=False)
    gates = {}
    for name, beta, gate_beta in (("own", 0.05, None), ("fixed", 0.5, 0.05), ("joint_beta", 0.5, None)):
        config = _tiny(
            tmp_path / name,
            stages=("gate",),
            beta=beta,
            gate_beta=gate_beta,
            gate=StageConfig(6, 0.01),
            init_from=str(backbone.checkpoints["backbone"]),
        )
        model = train(config, progress=False).model
        gates[name] = torch.cat([p.detach().flatten() for p in model.gate_parameters()])
    assert torch.equal(gates["own"], gates["fixed"])  # the same push, whatever beta the joint stage would get
    assert not torch.allclose(gates["own"], gates["joint_beta"])


def test_config_validation_names_file_and_key(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('model = "dfs_resnet8"\nbogus = 1\n')
    with pytest.raises(ConfigError, match=r"c\.toml.*bogus"):
        load_train_config(path)
    path.write_text('model = "dfs_resnet8"\n[joint]\nlr = -1\n')
    with pytest.raises(ConfigError, match=r"c\.toml.*joint\.lr"):
        load_train_config(path)
    path.write_text("budget = 130\n")
    with pytest.raises(ConfigError, match="budget"):
        load_train_config(path)
    path.write_text('batch_size = "big"\n')
    with pytest.raises(ConfigError, match="batch_size"):
        load_train_config(path)
    with pytest.raises(ConfigError, match="unknown model"):
        config_from_dict({"model": "resnet50"})
    defaults = TrainConfig()
    assert (defaults.backbone.iterations, defaults.backbone.lr, defaults.backbone.milestones) == (
        64000,
        0.1,
        (32000, 48000),
    )
    assert (defaults.gate.iterations, defaults.gate.lr, defaults.beta, defaults.batch_size) == (2000, 0.01, 1e-5, 128)
    assert defaults.backbone.lr_at(31999) == 0.1 and defaults.backbone.lr_at(48000) == pytest.approx(0.001)


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.toml" in err
    assert (
        main(
            [
                "--model",
                "dfs_resnet8",
                "--dataset",
                "cifar10",
                "--data-path",
                str(tmp_path / "no"),
                "--out-dir",
                str(tmp_path / "o"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert main(["--resume", str(tmp_path / "nope.pt")]) == 2


def test_cli_trains_with_overrides(tmp_path, capsys):
    code = main(
        [
            "--model",
            "dfs_binary_resnet8",
            "--dataset",
            "digits",
            "--out-dir",
            str(tmp_path),
            "--batch-size",
            "8",
            "--set",
            "backbone.iterations=3",
            "--set",
            "gate.iterations=2",
            "--set",
            "joint.iterations=2",
            "--set",
            'augment="crop"',
            "--budget",
            "60",
            "--no-progress",
        ]
    )
    assert code == 0
    record = load_checkpoint(tmp_path / "joint.pt")
    assert record["config"]["budget"] == 60 and record["config"]["joint"]["iterations"] == 2
    assert record["model_name"] == "dfs_binary_resnet8"


def test_a_block_the_whole_batch_skips_still_gets_weight_decay(tmp_path, monkeypatch):
    """On the CPU path options nobody chose run without gradients; their weights must still get the zero gradient of
    the all-candidates reference, so that SGD applies weight decay to them exactly: w ← w·(1 − lr·wd) per step."""
    from dfs_sim.model.gate import GateController

    original = GateController.step

    def always_skip(self, feature, state):
        _, probs, state = original(self, feature, state)
        skip = torch.zeros_like(probs)
        skip[:, 0] = 1.0  # option 0 is skip
        return skip + probs - probs.detach(), probs, state

    monkeypatch.setattr(GateController, "step", always_skip)
    lr, decay, steps = 0.1, 0.1, 3
    config = _tiny(
        tmp_path,
        stages=("backbone", "joint"),
        validation_fraction=0.0,
        backbone=StageConfig(2, 0.05),
        joint=StageConfig(steps, lr, momentum=0.0, weight_decay=decay),
    )
    result = train(config, progress=False)
    before = load_checkpoint(result.checkpoints["backbone"])["model"]
    after = result.model.state_dict()
    assert result.model.options[0].is_skip
    for name in ("blocks.0.conv1.weight", "blocks.1.conv2.weight"):
        torch.testing.assert_close(after[name], before[name] * (1 - lr * decay) ** steps, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"budget": "50"}, "budget"),
        ({"validation_fraction": None}, "validation_fraction"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"seed": True}, "seed"),
        ({"stages": "backbone"}, "stages"),
        ({"joint": StageConfig(10, "0.1")}, "joint.lr"),
        ({"joint": StageConfig(10, 0.1, (5.5,))}, "joint.milestones"),
    ],
)
def test_a_config_built_in_python_is_type_checked(tmp_path, changes, key):
    with pytest.raises(ConfigError, match=rf"config: {key}: expected"):
        train(dataclasses.replace(_tiny(tmp_path), **changes), progress=False)


def test_keep_best_picks_the_most_accurate_evaluation_within_keep_within_of_the_budget():
    from dfs_sim.model.training import _score

    evaluations = {"at 2.3%": (93.1, 2.3), "at 1.2%": (92.0, 1.2), "at 6%": (94.0, 6.0)}

    def kept(config):
        return max(evaluations, key=lambda k: _score("joint", config, *evaluations[k]))

    assert kept(TrainConfig(budget=1.0)) == "at 2.3%"  # the default 2 points let 2.3% count as on budget
    assert kept(TrainConfig(budget=1.0, keep_within=0.5)) == "at 1.2%"
    assert kept(TrainConfig(budget=1.0, keep_within=0)) == "at 1.2%"  # none in range: the nearest
    with pytest.raises(ConfigError, match="keep_within"):
        config_from_dict({"keep_within": -1})


def test_a_joint_stage_kept_away_from_its_budget_is_warned_of():
    from dfs_sim.model.training import _budget_missed

    config = TrainConfig(budget=1.5, keep_within=0.5)
    assert _budget_missed("joint", config, 1.9) == ""
    said = _budget_missed("joint", config, 100.0)
    assert "100.0%" in said and "98.5 points from the budget 1.5%" in said and "keep_within 0.5" in said
    assert _budget_missed("gate", config, 100.0) == ""  # the gate stage has its own target
