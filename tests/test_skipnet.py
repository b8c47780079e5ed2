"""SkipNet as its authors train it: the threshold gate, the REINFORCE term, the two computation definitions, the
phases' configuration, export, and a short digits run whose skip ratio follows alpha."""

import numpy as np
import pytest
import torch

from analysis.pipeline import replay
from dfs_sim.errors import ConfigError
from dfs_sim.model.config import StageConfig, TrainConfig, config_from_dict
from dfs_sim.model.export import export
from dfs_sim.model.gate import SkipGateController
from dfs_sim.model.registry import create_model
from dfs_sim.model.training import skipnet_reinforce_loss, train
from dfs_sim.options import skipnet_computation_pct
from dfs_sim.traces import FORMAT_VERSION, TraceFormatError, _content_hash, read_trace, write_trace
from tests.factories import make_run, raw_columns, write_raw
from tests.test_train import _tiny


def test_reinforce_term_matches_a_hand_computed_gradient():
    # one input, two gates: gate 0 skipped (P(execute) 0.25), gate 1 executed (P(execute) 0.8); alpha 0.4, CE 0.5.
    # Rewards: 0.4 / 2 for the skip, 0 for the execution, -0.5 at the end; rewards-to-go R0 = -0.3, R1 = -0.5.
    # loss = -(R0 log(1 - p0) + R1 log p1): d/dp0 = R0 / (1 - p0) = -0.4, d/dp1 = -R1 / p1 = 0.625
    execute = torch.tensor([0.25, 0.8], requires_grad=True)
    probs = torch.stack([1 - execute, execute], dim=1).unsqueeze(0)  # 1 × 2 gates × (skip, execute)
    masks = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    loss = skipnet_reinforce_loss(masks, probs, torch.tensor([0.5]), alpha=0.4)
    assert loss.item() == pytest.approx(-(-0.3 * np.log(0.75) + -0.5 * np.log(0.8)))
    loss.backward()
    assert execute.grad.tolist() == pytest.approx([-0.4, 0.625])


def test_reinforce_term_sums_over_the_batch_and_ignores_the_decisions_gradient():
    execute = torch.tensor([[0.5], [0.5]], requires_grad=True)
    probs = torch.stack([1 - execute, execute], dim=2)
    masks = torch.tensor([[[0.0, 1.0]], [[0.0, 1.0]]], requires_grad=True)
    one = skipnet_reinforce_loss(masks[:1], probs[:1], torch.tensor([1.0]), alpha=0.1)
    two = skipnet_reinforce_loss(masks, probs, torch.tensor([1.0, 1.0]), alpha=0.1)
    assert two.item() == pytest.approx(2 * one.item())  # summed, not averaged, as in the authors' code
    two.backward()
    assert masks.grad is None or torch.all(masks.grad == 0)


def test_threshold_gate_forward_is_p_above_half_and_backward_is_the_sigmoids():
    torch.manual_seed(0)
    gate = SkipGateController(4)
    feature = torch.randn(64, 4)
    mask, probs, _ = gate.step(feature, None)
    execute = probs[:, 1]
    assert torch.equal(mask[:, 1].detach(), (execute > 0.5).float())
    assert torch.allclose(mask.sum(1), torch.ones(64)) and torch.allclose(probs.sum(1), torch.ones(64))
    assert 0 < mask[:, 1].sum() < 64  # both decisions occur at initialization
    mask[:, 1].sum().backward()  # straight-through: d mask / d logit = p (1 - p)
    assert gate.fc.bias.grad.item() == pytest.approx((execute * (1 - execute)).sum().item(), rel=1e-5)


def test_sampled_decisions_follow_the_probability_without_gradient():
    torch.manual_seed(0)
    gate = SkipGateController(4)
    with torch.no_grad():
        gate.fc.weight.zero_()
        gate.fc.bias.fill_(np.log(0.3 / 0.7))  # P(execute) = 0.3 for every input
    mask, probs, _ = gate.step(torch.randn(20000, 4), None, sample=True)
    assert not mask.requires_grad and probs.requires_grad
    assert probs[:, 1].detach().numpy() == pytest.approx(0.3)
    assert mask[:, 1].mean().item() == pytest.approx(0.3, abs=0.015)


def test_the_two_computation_definitions_on_a_hand_made_trace():
    # ResNet-14, 5 gated blocks; input 0 executes 4 of them, input 1 executes 1
    codes = np.array([[1, 1, 0, 1, 1], [0, 0, 1, 0, 0]], dtype=np.uint8)
    run = make_run("skipnet", depth=14, codes=codes, budget=None)
    # paper's proxy: executed decisions / all decisions = 5 / 10; SkipNet's: ((4 + 1) / 6 + (1 + 1) / 6) / 2 = 7 / 12
    assert skipnet_computation_pct(codes, 0) == pytest.approx(100 * 7 / 12)
    frame = replay([run], presets=["bitfusion_eyeriss"], out=None, progress=False).per_run
    assert frame.loc[0, "computation_pct"] == pytest.approx(50.0)
    assert frame.loc[0, "skipnet_computation_pct"] == pytest.approx(100 * 7 / 12)
    dfs = make_run("dfs", depth=14, n=4, seed=1)
    replayed = replay([dfs], presets=["bitfusion_eyeriss"], out=None, progress=False).per_run
    assert np.isnan(replayed.loc[0, "skipnet_computation_pct"])


def test_a_version_1_skipnet_trace_reads_as_the_binary_dfs_ablation(tmp_path):
    # version 1 called the two-option DFS model "skipnet" (softmax gate, two outputs)
    run = make_run("dfs_binary", depth=8, n=10, seed=2)
    meta = {**run.meta, "format_version": 1, "method": "skipnet"}
    meta["content_hash"] = _content_hash(meta, run.input_id, run.label, run.pred, run.confidence, run.codes)
    read = read_trace(write_raw(tmp_path / "old.parquet", raw_columns(run), meta))
    assert read.method == "dfs_binary" and read.meta["format_version"] == FORMAT_VERSION
    assert read.meta["upgraded_from_format"] == 1
    again = read_trace(write_trace(tmp_path / "again.parquet", read))  # an upgraded run writes a valid new trace
    assert again.method == "dfs_binary" and np.array_equal(again.codes, run.codes)
    unknown = FORMAT_VERSION + 1  # a version this dfs_sim does not know
    with pytest.raises(TraceFormatError, match=f"format_version {unknown}"):
        read_trace(write_raw(tmp_path / "new.parquet", raw_columns(run), {**meta, "format_version": unknown}))


def test_skipnet_trains_its_own_phases_and_dfs_models_theirs():
    assert config_from_dict({"model": "skipnet_resnet8", "dataset": "digits"}).stages == ("backbone", "sp", "hrl")
    assert config_from_dict({"model": "dfs_binary_resnet8", "dataset": "digits"}).stages == (
        "backbone",
        "gate",
        "joint",
    )
    with pytest.raises(ConfigError, match="skipnet_resnet8 trains the stages"):
        config_from_dict({"model": "skipnet_resnet8", "dataset": "digits", "stages": ["backbone", "joint"]})
    with pytest.raises(ConfigError, match="dfs_resnet8 trains the stages"):
        config_from_dict({"model": "dfs_resnet8", "dataset": "digits", "stages": ["backbone", "hrl"]})
    with pytest.raises(ConfigError, match="alpha"):
        config_from_dict({"model": "skipnet_resnet8", "dataset": "digits", "alpha": -1})
    with pytest.raises(ConfigError, match="sigmoid"):  # only SkipNet's gate samples its decisions
        create_model("dfs_resnet8", num_classes=10).train()(torch.zeros(2, 3, 32, 32), sample_gates=True)


def _skipnet_config(folder, **changes) -> TrainConfig:
    """test_train's tiny config as a SkipNet run (its gate and joint stages are not SkipNet's and do not run)."""
    skipnet = {
        "model": "skipnet_resnet8",
        "batch_size": 32,
        "checkpoint_every": 1000,
        "backbone": StageConfig(60, 0.05),
        "sp": StageConfig(20, 0.05),
        "hrl": StageConfig(40, 0.05),
    }
    return _tiny(folder, **{**skipnet, **changes})


@pytest.mark.slow
def test_skipnet_skips_more_as_alpha_grows_and_exports_both_definitions(tmp_path):
    supervised = train(_skipnet_config(tmp_path / "sp", stages=("backbone", "sp")), progress=False).checkpoints["sp"]
    computation = {}
    for alpha in (0.0, 20.0):
        config = _skipnet_config(tmp_path / f"a{alpha:g}", stages=("hrl",), alpha=alpha, init_from=str(supervised))
        result = train(config, progress=False)
        computation[alpha] = result.metrics["hrl"]["computation_pct"]
        trace = read_trace(export(result.checkpoints["hrl"], tmp_path / f"skipnet_a{alpha:g}.parquet").path)
        assert trace.method == "skipnet" and trace.budget is None and trace.meta["alpha"] == alpha
        assert trace.meta["skipnet_computation_pct"] == pytest.approx(skipnet_computation_pct(trace.codes, 0))
        assert trace.meta["computation_pct"] == pytest.approx(100 * np.mean(trace.codes == 1))
    assert computation[20.0] < computation[0.0] - 10, computation
