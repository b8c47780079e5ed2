"""The pair kernel (compiled with the SLP vectoriser) equals its plain-numpy twin, on hand cases and on seeded random
ones, for option sets that are paired and for larger ones that are not."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from analysis.replay_kernel import code_bits, pair_tables, replay_presets, replay_presets_reference


def test_hand_case():
    # two blocks, two options, one preset: input 0 takes (1, 0), input 1 takes (1, 1)
    tables = np.array([[[1.0], [10.0]], [[100.0], [1000.0]]])
    codes = np.array([[1, 0], [1, 1]], dtype=np.uint8)
    np.testing.assert_array_equal(replay_presets(codes, tables, np.array([0.5])), [[110.5], [1010.5]])
    pairs = pair_tables(tables)
    assert pairs.shape == (1, 1, 64, 5) and pairs[0, 0, 1 << 3 | 1, 0] == 1010.0


def test_codes_that_are_not_options_cost_nothing_in_pair_rows():
    tables = np.arange(2 * 7 * 3, dtype=np.float64).reshape(2, 7, 3) + 1
    pairs = pair_tables(tables)[0]
    assert code_bits(7) == 3 and code_bits(2) == 3 and code_bits(9) == 4 and code_bits(16) == 4
    assert pairs.shape == (1, 64, 5)
    assert pairs[0, 6 << 3 | 5, 1] == tables[0, 6, 1] + tables[1, 5, 1]
    assert pairs[0, 7 << 3 | 5, 2] == tables[1, 5, 2] and pairs[0, 4 << 3 | 7, 0] == tables[0, 4, 0]
    assert not pairs[0, 7 << 3 | 7].any() and not pairs[0, :, 3:].any()


@settings(max_examples=60, deadline=None)
@given(
    blocks=st.integers(1, 37),
    options=st.integers(1, 24),
    presets=st.integers(1, 20),
    inputs=st.integers(0, 50),
    seed=st.integers(0, 2**16),
)
def test_matches_reference(blocks, options, presets, inputs, seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, options, size=(inputs, blocks), dtype=np.uint8)
    tables = rng.random((blocks, options, presets)) * 1e6
    fixed = rng.random(presets)
    np.testing.assert_allclose(
        replay_presets(codes, tables, fixed), replay_presets_reference(codes, tables, fixed), rtol=1e-12
    )


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


@settings(max_examples=30, deadline=None)
@given(blocks=st.integers(1, 12), options=st.integers(1, 16), inputs=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_unchecked_codes_stay_inside_the_tables(blocks, options, inputs, seed):
    """Without the range check, any uint8 code still reads inside the pair tables (masked to the code bits); codes
    that are options give the reference totals."""
    rng = np.random.default_rng(seed)
    tables, fixed = rng.random((blocks, options, 5)), rng.random(5)
    wild = rng.integers(0, 256, size=(inputs, blocks), dtype=np.uint8)
    assert np.isfinite(replay_presets(wild, tables, fixed, check_codes=False)).all()
    codes = wild % options
    np.testing.assert_allclose(
        replay_presets(codes, tables, fixed, check_codes=False),
        replay_presets_reference(codes, tables, fixed),
        rtol=1e-12,
    )


def test_read_only_codes_and_tables_as_a_trace_run_holds_them():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 7, size=(64, 17), dtype=np.uint8)
    tables, fixed = rng.random((17, 7, 5)), rng.random(5)
    for array in (codes, tables, fixed):
        array.flags.writeable = False
    np.testing.assert_allclose(
        replay_presets(codes, tables, fixed, check_codes=False),
        replay_presets_reference(codes, tables, fixed),
        rtol=1e-12,
    )


def test_codes_for_the_unpaired_kernel_are_checked_even_when_told_not_to():
    tables, fixed = np.zeros((3, 20, 5)), np.zeros(5)
    with pytest.raises(ValueError, match="codes must lie"):
        replay_presets(np.full((2, 3), 25, np.uint8), tables, fixed, check_codes=False)
