"""The many-presets pair kernel equals its plain-numpy twin, on hand cases and on seeded random ones."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from analysis.replay_kernel import pair_tables, replay_presets, replay_presets_reference


def test_hand_case():
    # two blocks, two options, one preset: input 0 takes (1, 0), input 1 takes (1, 1)
    tables = np.array([[[1.0], [10.0]], [[100.0], [1000.0]]])
    codes = np.array([[1, 0], [1, 1]], dtype=np.uint8)
    np.testing.assert_array_equal(replay_presets(codes, tables, np.array([0.5])), [[110.5], [1010.5]])
    pairs = pair_tables(tables)
    assert pairs.shape == (1, 4, 5) and pairs[0, 1 * 2 + 1, 0] == 1010.0


@settings(max_examples=60, deadline=None)
@given(blocks=st.integers(1, 37), options=st.integers(1, 9), presets=st.integers(1, 20), inputs=st.integers(0, 50),
       seed=st.integers(0, 2**16))
def test_matches_reference(blocks, options, presets, inputs, seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, options, size=(inputs, blocks), dtype=np.uint8)
    tables = rng.random((blocks, options, presets)) * 1e6
    fixed = rng.random(presets)
    np.testing.assert_allclose(replay_presets(codes, tables, fixed), replay_presets_reference(codes, tables, fixed),
                               rtol=1e-12)


def test_reused_output_buffer_and_bad_input():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 7, size=(100, 35), dtype=np.uint8)
    tables, fixed = rng.random((35, 7, 5)), rng.random(5)
    first = replay_presets(codes, tables, fixed)
    again = replay_presets(codes, tables * 2, fixed * 2, out=first.base)
    np.testing.assert_allclose(again, replay_presets_reference(codes, tables * 2, fixed * 2))
    with pytest.raises(ValueError, match="codes must lie"):
        replay_presets(codes + 7, tables, fixed)
    with pytest.raises(ValueError):
        replay_presets(codes[:, :3], tables, fixed)
