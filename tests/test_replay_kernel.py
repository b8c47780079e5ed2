"""The Numba replay kernel against its plain-numpy twin, on hand cases and seeded random ones."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.replay_kernel import _replay_kernel, replay_costs, replay_reference


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
