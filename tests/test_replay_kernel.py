"""The Numba replay kernel against its plain-numpy twin, on hand cases and seeded random ones."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.replay_kernel import (
    _replay_kernel,
    replay_costs,
    replay_reference,
    split_presets,
    split_presets_reference,
    tally_decisions,
    tally_decisions_reference,
)


def test_hand_case():
    table = np.zeros((2, 3, 2))
    table[0, :, 0] = [0, 10, 20]
    table[1, :, 0] = [0, 1, 2]
    table[0, :, 1] = [0, 100, 200]
    table[1, :, 1] = [5, 6, 7]
    fixed = np.array([1000.0, 0.5])
    codes = np.array([[0, 0], [1, 2], [2, 1]], dtype=np.uint8)
    expected = np.array([[1000, 5.5], [1012, 107.5], [1021, 206.5]])
    np.testing.assert_array_equal(replay_reference(codes, table, fixed), expected)
    np.testing.assert_array_equal(_replay_kernel(codes, table, fixed), expected)
    np.testing.assert_array_equal(replay_costs(codes, (table, fixed)), expected)


@pytest.mark.parametrize("seed", range(5))
def test_kernel_equals_reference_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    blocks, options, metrics = rng.integers(1, 40), rng.integers(1, 8), rng.integers(1, 6)
    n = rng.integers(0, 300)
    table = rng.random((blocks, options, metrics)) * 1e6
    fixed = rng.random(metrics)
    codes = rng.integers(0, options, size=(n, blocks), dtype=np.uint8)
    np.testing.assert_allclose(replay_costs(codes, (table, fixed)), replay_reference(codes, table, fixed), rtol=1e-12)


def test_accepts_a_cost_table_object_and_other_integer_dtypes():
    class Table:
        block = np.arange(12, dtype=np.float64).reshape(2, 3, 2)
        fixed = np.array([1.0, 2.0])

    codes = np.array([[2, 1]], dtype=np.int64)
    np.testing.assert_array_equal(replay_costs(codes, Table()), [[1 + 4 + 8, 2 + 5 + 9]])


@pytest.mark.parametrize(
    "codes, table, fixed, match",
    [
        (np.zeros((3, 2), np.uint8), np.zeros((3, 2, 2)), np.zeros(2), "blocks"),
        (np.full((1, 2), 3, np.uint8), np.zeros((2, 3, 2)), np.zeros(2), "0..2"),
        (np.full((1, 2), -1, np.int64), np.zeros((2, 3, 2)), np.zeros(2), "0..2"),
        (np.zeros(2, np.uint8), np.zeros((2, 3, 2)), np.zeros(2), "2-D"),
        (np.zeros((1, 2), np.uint8), np.zeros((2, 3)), np.zeros(2), "3-D"),
        (np.zeros((1, 2), np.uint8), np.zeros((2, 0, 2)), np.zeros(2), "options >= 1"),
        (np.zeros((1, 2), np.uint8), np.zeros((2, 3, 2)), np.zeros(3), "fixed"),
        (np.zeros((1, 2), np.float64), np.zeros((2, 3, 2)), np.zeros(2), "integers"),
    ],
)
def test_bad_shapes_and_codes_are_value_errors(codes, table, fixed, match):
    with pytest.raises(ValueError, match=match):
        replay_costs(codes, (table, fixed))


@pytest.mark.parametrize("seed", range(3))
def test_decision_tally_equals_its_reference(seed):
    rng = np.random.default_rng(seed)
    blocks, options, n = rng.integers(1, 30), rng.integers(1, 9), rng.integers(1, 500)
    codes = rng.integers(0, options, size=(n, blocks), dtype=np.uint8)
    costs = rng.random((blocks, options))
    counts = np.zeros((blocks, options), dtype=np.int64)
    gathered = np.empty((n, blocks))
    tally_decisions(codes, costs, counts, gathered)
    expected_counts, expected_gathered = tally_decisions_reference(codes, costs)
    np.testing.assert_array_equal(counts, expected_counts)
    np.testing.assert_array_equal(gathered, expected_gathered)
    assert counts.sum() == codes.size
    # a second chunk adds to the counts
    tally_decisions(codes, costs, counts, gathered)
    np.testing.assert_array_equal(counts, 2 * expected_counts)


def test_split_presets_equals_its_reference_bit_for_bit():
    rng = np.random.default_rng(7)
    presets, metrics, n = 3, 5, 1000
    padded = rng.random((n, presets * metrics + 2)) * 1e9  # the kernel's padded lanes: a strided view
    costs = padded[:, : presets * metrics]
    us_per_cycle = rng.random(presets)
    lanes = np.array([0, 1, 2, 3])
    by_metric, energy, latency = np.empty((presets, metrics, n)), np.empty((presets, n)), np.empty((presets, n))
    split_presets(costs, us_per_cycle, lanes, by_metric, energy, latency)
    expected = split_presets_reference(costs, us_per_cycle, lanes, metrics)
    for actual, wanted in zip((by_metric, energy, latency), expected, strict=True):
        np.testing.assert_array_equal(actual, wanted)
