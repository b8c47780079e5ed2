"""What a computation budget is measured in: the paper's proxy, or an accelerator's own energy or latency.

A cost basis is ``None`` (the DFS paper's proxy, (bits/32)² per gated block) or a preset and a metric
(``"energy"``: compute + SRAM + DRAM energy; ``"latency"``: cycles). ``budget_costs`` gives, per gated block and
option, what one decision costs on that basis, normalised so that every gated block at full precision is 100%: the
mean of the chosen entries over blocks (and inputs) × 100 is the budget percentage, as the paper's computation
percentage is for the proxy. Only the gated blocks are budgeted; the always-run layers and the gates' own layers
cost the same whatever the gates choose, and replay reports them [our assumption; the normalisation follows the paper's,
where 100% is every gated block at full precision].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cost_models.block_costs import build_cost_table
from cost_models.preset import load_preset
from cost_models.pricing import METRICS
from dfs_sim.errors import ConfigError
from dfs_sim.layer_table import LayerTable
from dfs_sim.options import Option, full_precision_code, proxy_costs
from dfs_sim.traces import COST_BASIS_METRICS

__all__ = ["BUDGET_METRICS", "CostBasis", "budget_costs", "budget_pct"]

BUDGET_METRICS = COST_BASIS_METRICS
_ENERGY = [METRICS.index(name) for name in ("e_compute_pj", "e_sram_pj", "e_dram_pj")]
_CYCLES = METRICS.index("cycles")


@dataclass(frozen=True)
class CostBasis:
    """``preset`` None is the paper's proxy; else a shipped preset name or a preset TOML path, and a metric."""

    preset: str | None = None
    metric: str = "energy"

    @property
    def label(self) -> str:
        """``"proxy"`` or ``"<preset> <metric>"``, as traces and frames record it."""
        return "proxy" if self.preset is None else f"{self.preset} {self.metric}"

    def check(self, source: object = "cost") -> CostBasis:
        """This basis, or a one-line ``ConfigError`` naming ``source`` for an unknown preset or metric."""
        if self.metric not in BUDGET_METRICS:
            raise ConfigError(source, f"metric must be one of {', '.join(BUDGET_METRICS)}, got {self.metric!r}")
        if self.preset is not None:
            try:
                load_preset(self.preset)
            except ConfigError as error:
                raise ConfigError(source, f"preset: {error.problem}") from None
        return self

    @classmethod
    def from_meta(cls, value: object) -> CostBasis:
        """The basis a trace's ``cost_basis`` metadata or a saved config's ``cost`` records (absent, ``"proxy"`` or a
        null preset: the proxy)."""
        if value is None or value == "proxy" or (isinstance(value, dict) and value.get("preset") is None):
            return cls()
        if isinstance(value, dict) and isinstance(value.get("preset"), str):
            return cls(value["preset"], str(value.get("metric", "energy")))
        raise ValueError(f'cost_basis must be "proxy" or {{preset, metric}}, got {value!r}')

    def to_meta(self) -> str | dict:
        return "proxy" if self.preset is None else {"preset": self.preset, "metric": self.metric}


def budget_costs(layers: LayerTable, options: Sequence[Option], basis: CostBasis) -> np.ndarray:
    """(gated blocks × options) float64: each decision's cost on ``basis``, normalised so that the full-precision
    column sums to the number of blocks (every block at full precision is 100%)."""
    options = tuple(options)
    blocks = layers.num_blocks
    if basis.preset is None:
        return np.tile(np.asarray(proxy_costs(options), dtype=np.float64), (blocks, 1))
    table = build_cost_table(layers, basis.preset, options)
    raw = table.block[:, :, _ENERGY].sum(axis=2) if basis.metric == "energy" else table.block[:, :, _CYCLES]
    try:
        full = full_precision_code(options)
    except ValueError as error:
        raise ConfigError("options", str(error)) from None
    total = raw[:, full].sum()
    if not total > 0:
        raise ConfigError(basis.label, "every gated block at full precision costs nothing on this basis")
    return raw / total * blocks


def budget_pct(codes: np.ndarray, costs: np.ndarray) -> float:
    """The budget percentage of decisions ``codes`` (inputs × gated blocks) under ``budget_costs`` ``costs``."""
    codes = np.asarray(codes)
    if codes.size == 0:
        return 100.0
    return float(costs[np.arange(codes.shape[1]), codes].mean() * 100.0)
