"""Hardware cost models: what a layer costs at a chosen (weight bits, activation bits) on an accelerator preset.

Presets are TOML files (``cost_models/presets``); kinds ``bitfusion``, ``bitserial`` (Stripes, Loom) and
``bitparallel`` are dispatched by a registry. ``layer_cost`` / ``option_cost`` cost one layer; ``layer_costs`` a
whole layer table per layer and option, as a tidy DataFrame; ``build_cost_table`` per gated block and option, cached
on disk. See docs/design.md §3 and docs/hardware.md.
"""

from cost_models.block_costs import CostTable, build_cost_table, default_cache_dir
from cost_models.preset import Preset, list_presets, load_preset
from cost_models.pricing import METRICS, LayerCost, layer_cost, option_cost, skip_cost
from cost_models.rows import layer_costs

__all__ = [
    "CostTable",
    "LayerCost",
    "METRICS",
    "Preset",
    "build_cost_table",
    "default_cache_dir",
    "layer_cost",
    "layer_costs",
    "list_presets",
    "load_preset",
    "option_cost",
    "skip_cost",
]
