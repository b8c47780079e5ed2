"""The digits example replays to the stored golden frame (regenerate with ``python -m tests.golden_frames``)."""

import pandas as pd

from tests.golden_frames import GOLDEN, current_frame


def test_digits_example_matches_golden_frame():
    expected = pd.read_csv(GOLDEN)
    actual = current_frame().reset_index(drop=True)
    actual = pd.read_csv(pd.io.common.StringIO(actual.to_csv(index=False, float_format="%.12g")))
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-9)
