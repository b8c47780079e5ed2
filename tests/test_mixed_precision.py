"""Per-layer mixed precision: the exact knapsack search against enumeration, and its assignment on a real preset."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from cost_models.budget import CostBasis, budget_costs
from cost_models.mixed_precision import search_widths, search_widths_reference
from dfs_sim.layer_table import cifar_resnet_layers
from dfs_sim.options import parse_options


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    blocks=st.integers(1, 5),
    options=st.integers(1, 4),
    fraction=st.floats(0.0, 1.0),
)
def test_the_search_finds_the_enumerated_optimum(seed, blocks, options, fraction):
    rng = np.random.default_rng(seed)
    costs = rng.uniform(0.01, 1.0, (blocks, options))
    sensitivity = rng.uniform(0.0, 1.0, (blocks, options))
    cheapest, dearest = costs.min(axis=1).mean(), costs.max(axis=1).mean()
    budget = (cheapest + fraction * (dearest - cheapest)) * 100
    found = search_widths(sensitivity, costs, budget, resolution=20_000)
    best = search_widths_reference(sensitivity, costs, budget)
    index = np.arange(blocks)
    assert costs[index, found].mean() * 100 <= budget * (1 + 1e-9)  # never over the budget
    # optimal up to the cost rounding: an assignment within blocks / 20,000 of the budget may be out of reach
    assert sensitivity[index, found].sum() <= sensitivity[index, best].sum() + 1e-9 or (
        costs[index, best].mean() * 100 >= budget * (1 - blocks / 20_000)
    )


def test_a_budget_below_the_cheapest_assignment_is_refused():
    with pytest.raises(ValueError, match="no assignment fits"):
        search_widths(np.zeros((2, 2)), np.array([[0.5, 1.0], [0.5, 1.0]]), 40.0)


def test_sensitive_blocks_keep_more_bits_on_bit_fusion_energy():
    """Two blocks of the same shape: the one that loses more at few bits keeps the wider width."""
    names = ["q2", "q4", "q8"]
    options = parse_options([*names, "fp"])
    layers = cifar_resnet_layers(8, num_classes=10, options=options, gates=False, input_size=28, in_channels=1)
    costs = budget_costs(layers, options, CostBasis("bitfusion_eyeriss", "energy"))[:, :3]
    sensitivity = np.zeros_like(costs)
    sensitivity[:, 0], sensitivity[:, 1] = 0.5, 0.1
    sensitivity[0] *= 10  # block 0 is ten times as sensitive
    budget = costs[:, 1].mean() * 100  # the cost of every block at q4
    codes = search_widths(sensitivity, costs, budget)
    assert costs[np.arange(len(codes)), codes].mean() * 100 <= budget + 1e-9
    assert codes[0] >= codes[1:].max()  # the sensitive block is never narrower than the others
