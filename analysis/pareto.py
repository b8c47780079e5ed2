"""Pareto fronts as boolean masks aligned with a frame (one return type always)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_OBJECTIVES", "pareto_front", "pareto_mask"]

DEFAULT_OBJECTIVES: Mapping[str, str] = {"energy_pj_mean": "min", "accuracy": "max"}
_SIGN = {"min": 1.0, "max": -1.0}
_CHUNK = 512


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Rows of ``values`` (n × k, every objective to be minimised) that no other row dominates.

    Row j dominates row i when it is no worse in every objective and better in at least one. Equal rows do not
    dominate each other, so duplicates on the front are all kept. Rows with a NaN are never on the front.
    """
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values).all(axis=1)
    candidates = values[finite]
    on_front = np.ones(len(candidates), dtype=bool)
    for start in range(0, len(candidates), _CHUNK):
        block = candidates[start : start + _CHUNK, None, :]
        no_worse = (candidates[None, :, :] <= block).all(axis=2)
        better = (candidates[None, :, :] < block).any(axis=2)
        on_front[start : start + _CHUNK] = ~(no_worse & better).any(axis=1)
    mask = np.zeros(len(values), dtype=bool)
    mask[np.flatnonzero(finite)] = on_front
    return mask


def pareto_front(
    df: pd.DataFrame, objectives: Mapping[str, str] = DEFAULT_OBJECTIVES, by: str | Sequence[str] | None = None
) -> pd.Series:
    """A boolean Series, aligned with ``df.index``, that is True for rows on the Pareto front of their group.

    ``objectives`` maps column names to "min" or "max"; ``by`` names the columns whose groups get separate fronts
    (e.g. ``["preset", "method"]``).
    """
    unknown = [column for column in objectives if column not in df.columns]
    if unknown:
        raise KeyError(f"objective columns {unknown} are not in the frame; it has {list(df.columns)}")
    bad = {column: sense for column, sense in objectives.items() if sense not in _SIGN}
    if bad:
        raise ValueError(f"objectives must be 'min' or 'max', got {bad}")
    signs = np.array([_SIGN[sense] for sense in objectives.values()])
    values = df[list(objectives)].to_numpy(dtype=float) * signs
    if by is None or (not isinstance(by, str) and len(by) == 0):
        return pd.Series(pareto_mask(values), index=df.index, name="on_front")
    on_front = np.zeros(len(df), dtype=bool)
    keys = [by] if isinstance(by, str) else list(by)
    for positions in df.groupby(keys, sort=False, dropna=False).indices.values():
        on_front[positions] = pareto_mask(values[positions])
    return pd.Series(on_front, index=df.index, name="on_front")
