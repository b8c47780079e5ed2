"""Per-layer precision policies, HAQ-style: the weight and activation widths each layer of a network runs at.

A policy is a TOML file::

    default = "w8a8"          # layers that no rule names (optional; full precision when absent)

    [[rule]]
    layers = "stem"           # a glob on layer names (fnmatch); the first rule that matches a layer wins
    option = "fp"

    [[rule]]
    layers = "group1.*"
    option = "w4a8"           # fp, qN (N bits both) or wNaM (N-bit weights, M-bit activations)

or a CSV file with the header ``layers,option`` and one rule per row. A rule that matches no layer of the network is
an error (a misspelt name would otherwise leave its layers at the default unnoticed). Skipping is not a precision:
``skip`` is refused.

``policy_frame`` prices every layer at its width with the cost models; ``policy_run`` turns a policy into a static run
(one trace: every input takes the policy's options) that replays beside other traces, so that the two totals can be
checked against each other. A run's gated block takes one option per input, so a policy must give every main layer of
a gated block the same width.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
import pandas as pd

from cost_models.preset import load_preset
from cost_models.rows import cost_row
from dfs_sim._toml import read_toml
from dfs_sim.errors import ConfigError
from dfs_sim.layer_table import LayerTable
from dfs_sim.options import Option, canonical_name, options_to_meta, parse_options
from dfs_sim.traces import TraceRun

__all__ = ["PrecisionPolicy", "load_policy", "policy_frame", "policy_run"]


@dataclass(frozen=True)
class PrecisionPolicy:
    """``rules``: (layer-name glob, option name) pairs, first match wins; ``default`` for the layers none names."""

    rules: tuple[tuple[str, str], ...]
    default: str = "fp"
    source: str = "policy"

    def __post_init__(self) -> None:
        try:
            options = self.options()
        except ValueError as error:
            raise ConfigError(self.source, str(error)) from None
        if any(option.is_skip for option in options):
            raise ConfigError(self.source, "'skip' is not a precision; a policy names fp, qN or wNaM")

    def options(self) -> tuple[Option, ...]:
        """Every option the policy names, once each (one width named in two spellings, ``q8`` and ``w8a8``, is one
        option), full precision included (codes in order of appearance)."""
        first: dict[str, str] = {}  # the widths' one spelling -> the spelling the policy used first
        for name in [*(option for _, option in self.rules), self.default, "fp"]:
            first.setdefault(canonical_name(name), name)
        return parse_options(list(first.values()))

    def assign(self, layers: LayerTable) -> list[Option]:
        """The option of every layer of ``layers``, in order; ``ConfigError`` for a rule that matches no layer."""
        canonical = {canonical_name(option.name): option for option in self.options()}
        by_name = {name: canonical[canonical_name(name)] for name in [*(o for _, o in self.rules), self.default]}
        names = [layer.name for layer in layers]
        for pattern, _ in self.rules:
            if not any(fnmatchcase(name, pattern) for name in names):
                raise ConfigError(self.source, f"rule {pattern!r} matches no layer of the network")
        return [
            by_name[next((option for pattern, option in self.rules if fnmatchcase(name, pattern)), self.default)]
            for name in names
        ]


def load_policy(path: str | os.PathLike) -> PrecisionPolicy:
    """A policy from a TOML or CSV file; a malformed one is a ``ConfigError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, "no such policy file")
    if path.suffix.lower() == ".csv":
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise ConfigError(path, f"cannot read the CSV ({error})") from None
        if not rows or any(set(row) != {"layers", "option"} for row in rows):
            raise ConfigError(path, "a policy CSV has the header 'layers,option' and one rule per row")
        return PrecisionPolicy(tuple((row["layers"].strip(), row["option"].strip()) for row in rows), source=str(path))
    document = read_toml(path)
    unknown = sorted(set(document) - {"default", "rule"})
    if unknown:
        raise ConfigError(path, f"unknown keys {unknown}; a policy has 'default' and [[rule]] tables")
    rules = []
    for index, rule in enumerate(document.get("rule", [])):
        if not isinstance(rule, dict) or set(rule) != {"layers", "option"}:
            raise ConfigError(path, f"rule {index + 1}: needs exactly 'layers' (a name glob) and 'option'")
        if not isinstance(rule["layers"], str) or not isinstance(rule["option"], str):
            raise ConfigError(path, f"rule {index + 1}: 'layers' and 'option' are strings")
        rules.append((rule["layers"], rule["option"]))
    default = document.get("default", "fp")
    if not isinstance(default, str):
        raise ConfigError(path, f"'default' is an option name, got {default!r}")
    return PrecisionPolicy(tuple(rules), default, str(path))


def policy_frame(layers: LayerTable, preset, policy: PrecisionPolicy) -> pd.DataFrame:
    """One row per layer at the policy's option: its cycles, latency, energy and its parts, DRAM bits, and where they
    go (``cost_models.rows.cost_row``, less the columns that describe an option table rather than a policy)."""
    preset = load_preset(preset)
    rows = [cost_row(layer, option, preset) for layer, option in zip(layers, policy.assign(layers), strict=True)]
    return pd.DataFrame(rows).drop(columns=_OPTION_TABLE_COLUMNS)


# cost_row's columns that a per-layer policy frame leaves out
_OPTION_TABLE_COLUMNS = ["role", "fixed_option", "option", "stall_cycles", "dram_read_bits", "dram_write_bits"]


def policy_run(reference: TraceRun, policy: PrecisionPolicy, name: str | None = None) -> TraceRun:
    """A static run of ``reference``'s network under ``policy``: every always-run layer at its policy option, every
    gated block's code that of its main layers for every input. Its predictions are ``reference``'s (a policy has no
    accuracy of its own; export the network quantized that way for one); its costs are the policy's."""
    options = policy.options()
    assigned = policy.assign(reference.layers)
    layers = []
    block_options: dict[int, set[str]] = {}
    for layer, option in zip(reference.layers, assigned, strict=True):
        if layer.block is not None and layer.role == "main":
            block_options.setdefault(layer.block, set()).add(option.name)
            layers.append(layer)
        else:
            layers.append(dataclasses.replace(layer, fixed_option=option.code))
    by_name = {option.name: option for option in options}
    codes = []
    for block in range(reference.num_blocks):
        names = block_options.get(block, set())
        if len(names) != 1:
            raise ConfigError(
                policy.source,
                f"gated block {block} runs its layers at {sorted(names)}: a run gives one option per gated block",
            )
        codes.append(by_name[names.pop()].code)
    table = LayerTable(layers, source=policy.source)
    meta = dict(
        reference.meta,
        method="static",
        budget=None,
        options=options_to_meta(options),
        layers=table.to_records(),
        name=name or f"policy_{Path(policy.source).stem}",
        policy={"source": policy.source, "rules": [list(rule) for rule in policy.rules], "default": policy.default},
        predictions_from=reference.name,
    )
    for key in ("cost_basis", "alpha", "budget_pct", "computation_pct", "skipnet_computation_pct"):
        meta.pop(key, None)
    return TraceRun(
        meta=meta,
        codes=np.tile(np.array(codes, dtype=np.uint8), (reference.num_inputs, 1)),
        input_id=reference.input_id,
        label=reference.label,
        pred=reference.pred,
        confidence=reference.confidence,
    )
