"""Traces that the tests make themselves (never shipped as an example)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dfs_sim.layer_table import cifar_resnet_layers
from dfs_sim.options import options_for_method
from dfs_sim.traces import METADATA_KEY, TraceRun, arrow_columns as raw_columns, make_meta, write_trace


def make_run(
    method: str = "dfs",
    *,
    depth: int = 8,
    n: int = 50,
    seed: int = 0,
    budget: float | None = 50.0,
    num_classes: int = 10,
    codes: np.ndarray | None = None,
    static_code: int | None = None,
    name: str = "run",
) -> TraceRun:
    """A random but valid run: codes, labels and predictions drawn from a seeded generator.

    ``static_code`` gives every input and every gated block that one option code (``n`` inputs), as a static
    baseline does; ``codes`` gives the code matrix itself. Neither draws from the generator."""
    known = method in ("dfs", "dfs_binary", "skipnet", "static")
    options = options_for_method(method if known else "dfs")  # a method the project does not know: DFS's options
    gate_outputs = 1 if method == "skipnet" else None  # SkipNet's sigmoid gate has one output
    layers = cifar_resnet_layers(depth, num_classes=num_classes, options=options, gate_outputs=gate_outputs)
    rng = np.random.default_rng(seed)
    if static_code is not None:
        if codes is not None:
            raise ValueError("give codes or static_code, not both")
        codes = np.full((n, layers.num_blocks), static_code, np.uint8)
    if codes is None:
        codes = rng.integers(0, len(options), size=(n, layers.num_blocks), dtype=np.uint8)
    n = codes.shape[0]
    meta = make_meta(
        method=method,
        budget=None if method == "static" else budget,
        model={
            "arch": "cifar_resnet",
            "depth": depth,
            "dataset": "synthetic",
            "num_classes": num_classes,
            "input_size": [3, 32, 32],
        },
        options=options,
        layers=layers,
        seed=seed,
        command="tests",
        name=name,
    )
    label = rng.integers(0, num_classes, size=n)
    pred = np.where(rng.random(n) < 0.7, label, rng.integers(0, num_classes, size=n))
    return TraceRun(
        meta=meta,
        codes=codes,
        input_id=np.arange(n) * 3 + 7,
        label=label,
        pred=pred,
        confidence=rng.random(n).astype(np.float32),
    )


def write_raw(path: Path, columns: dict[str, pa.Array], meta: dict | bytes | None) -> Path:
    """Write a Parquet file without any validation, to build malformed traces."""
    table = pa.table(columns)
    if meta is not None:
        raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
        table = table.replace_schema_metadata({METADATA_KEY: raw})
    pq.write_table(table, path)
    return path


def write_runs(folder: Path, runs: dict[str, TraceRun]) -> Path:
    """Write each run as ``folder / filename`` (the folder must exist); returns the folder."""
    for filename, run in runs.items():
        write_trace(folder / filename, run)
    return folder


__all__ = ["make_run", "write_raw", "write_runs", "raw_columns"]
