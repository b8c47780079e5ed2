"""Budgets measured on an accelerator: the cost basis, its normalisation, the training term, export and replay."""

import numpy as np
import pytest
import torch

from analysis.pipeline import replay
from cost_models import METRICS, build_cost_table
from cost_models.budget import CostBasis, budget_costs, budget_pct
from dfs_sim.layer_table import cifar_resnet_layers
from dfs_sim.model.config import config_from_dict
from dfs_sim.model.export import export
from dfs_sim.model.registry import create_model
from dfs_sim.model.training import apply_cost_basis, main, train
from dfs_sim.options import DFS_OPTIONS, proxy_costs
from dfs_sim.traces import read_trace
from tests.test_train import _tiny

LAYERS = cifar_resnet_layers(14)  # 5 gated blocks
ENERGY = [METRICS.index(name) for name in ("e_compute_pj", "e_sram_pj", "e_dram_pj")]


def test_the_proxy_basis_is_the_papers_cost_per_block():
    costs = budget_costs(LAYERS, DFS_OPTIONS, CostBasis())
    assert costs.shape == (5, 7) and np.allclose(costs, np.tile(proxy_costs(DFS_OPTIONS), (5, 1)))


@pytest.mark.parametrize(("metric", "columns"), [("energy", ENERGY), ("latency", [METRICS.index("cycles")])])
def test_a_preset_basis_is_its_cost_table_normalised_to_full_precision(metric, columns):
    basis = CostBasis("bitfusion_eyeriss", metric)
    costs = budget_costs(LAYERS, DFS_OPTIONS, basis)
    raw = build_cost_table(LAYERS, "bitfusion_eyeriss", DFS_OPTIONS).block[:, :, columns].sum(axis=2)
    assert budget_pct(np.full((3, 5), 6), costs) == pytest.approx(100.0)  # every block at full precision
    codes = np.array([[0, 1, 6, 3, 6], [6, 6, 2, 0, 5]])  # hand-made decisions of two inputs
    by_hand = sum(raw[block, code] for row in codes for block, code in enumerate(row)) / (2 * raw[:, 6].sum())
    assert budget_pct(codes, costs) == pytest.approx(100 * by_hand)
    assert not np.allclose(costs, budget_costs(LAYERS, DFS_OPTIONS, CostBasis()))  # not the proxy


def test_the_training_term_is_the_cost_tables_total_for_hand_made_masks():
    model = create_model("dfs_resnet14", num_classes=10)
    basis = CostBasis("stripes", "latency")
    apply_cost_basis(model, basis, 32)
    costs = budget_costs(cifar_resnet_layers(14), DFS_OPTIONS, basis)
    codes = torch.tensor([[0, 1, 6, 3, 6], [6, 6, 2, 0, 5]])
    masks = torch.nn.functional.one_hot(codes, 7).float()
    expected = sum(costs[block, code] for row in codes.tolist() for block, code in enumerate(row))
    assert model.computation_cost(masks).item() == pytest.approx(expected, rel=1e-6)
    assert model.computation_pct(masks).item() == pytest.approx(budget_pct(codes.numpy(), costs), rel=1e-6)
    full = torch.nn.functional.one_hot(torch.full((4, 5), 6), 7).float()
    assert model.computation_pct(full).item() == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("cost", "needle"),
    [
        ({"preset": "nope"}, "cost: preset: unknown preset"),
        ({"preset": "stripes", "metric": "power"}, "cost: metric must be one of energy, latency"),
        ("hardware", 'cost: expected "proxy" or a table'),
        ({"preset": "stripes", "scale": 2}, "cost.scale: unknown key"),
    ],
)
def test_a_bad_cost_basis_is_one_line(cost, needle):
    with pytest.raises(Exception, match=needle) as error:
        config_from_dict({"dataset": "digits", "cost": cost})
    assert "\n" not in str(error.value)


def test_the_command_line_takes_a_cost_basis_and_says_what_is_wrong(tmp_path, capsys):
    argv = ["--dataset", "digits", "--model", "dfs_resnet8", "--out-dir", str(tmp_path), "--stop-after", "0"]
    assert main([*argv, "--set", 'cost.preset="loom"', "--set", 'cost.metric="speed"']) == 2
    err = capsys.readouterr().err
    assert "cost: metric must be one of energy, latency, got 'speed'" in err and err.count("\n") == 1


@pytest.mark.slow
def test_a_hardware_budget_moves_the_realised_hardware_cost_and_is_recorded(tmp_path):
    backbone = train(_tiny(tmp_path / "bb", stages=("backbone",)), progress=False).checkpoints["backbone"]
    basis = CostBasis("bitfusion_eyeriss", "energy")
    realised = {}
    for budget in (30.0, 100.0):
        config = _tiny(
            tmp_path / f"b{budget:g}", stages=("gate", "joint"), budget=budget, cost=basis, init_from=str(backbone)
        )
        result = train(config, progress=False)
        trace = read_trace(export(result.checkpoints["joint"], tmp_path / f"dfs_b{budget:g}.parquet").path)
        assert trace.meta["cost_basis"] == {"preset": "bitfusion_eyeriss", "metric": "energy"}
        realised[budget] = trace.meta["budget_pct"]
        per_run = replay([trace], presets=["stripes"], out=None, progress=False).per_run.iloc[0]
        assert per_run["cost_basis"] == "bitfusion_eyeriss energy"
        assert per_run["budget_pct"] == pytest.approx(trace.meta["budget_pct"])
    assert realised[30.0] < realised[100.0] - 10, realised


def test_set_overrides_one_key_of_the_files_cost_table(tmp_path):
    from dfs_sim.model.config import load_train_config

    path = tmp_path / "run.toml"
    path.write_text('dataset = "digits"\n[cost]\npreset = "loom"\nmetric = "energy"\n')
    assert load_train_config(path, {"cost": {"metric": "latency"}}).cost == CostBasis("loom", "latency")
    assert load_train_config(path).cost == CostBasis("loom", "energy")
