"""Layer tables from networks you already have: one home for every importer, one convention.

Each is ``layer_table_from_<source>(source, ..., gated=None, options=DFS_OPTIONS)``: ``gated`` marks the gateable
units (a regular expression or a callable; ``dfs_sim.layer_table.gated_unit_finder`` says how each source's names are
matched), rows are placed in units by ``dfs_sim.layer_table.UnitNumbering`` (blocks in order of appearance, shortcuts
as projections), and every other row always runs at the full-precision option of ``options``.

- ``layer_table_from_onnx(path)``: an ONNX file, from its static shapes (the ``onnx`` extra; no torch);
- ``layer_table_from_scalesim(path)``: a SCALE-Sim topology CSV;
- ``layer_table_from_module(module, input_shape)`` and ``layer_table_from_factory("package.module:factory",
  input_shape)``: a torch module, traced on one forward pass (torch needed; they live in ``dfs_sim.model.from_torch``
  with the rest of the torch code, and are imported from there on first use).
"""

import importlib

from dfs_sim.importers.from_onnx import layer_table_from_onnx
from dfs_sim.importers.from_scalesim import layer_table_from_scalesim

__all__ = ["layer_table_from_factory", "layer_table_from_module", "layer_table_from_onnx", "layer_table_from_scalesim"]

_TORCH = ("layer_table_from_module", "layer_table_from_factory")


def __getattr__(name: str):
    if name in _TORCH:  # imported on first use: torch is an optional dependency
        return getattr(importlib.import_module("dfs_sim.model.from_torch"), name)
    raise AttributeError(f"module 'dfs_sim.importers' has no attribute {name!r}")
